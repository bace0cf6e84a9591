"""All /api/v1/ routes, collected from each app's ``api`` package."""

from django.urls import path

from surveys.api import views as survey_views

urlpatterns = [
    path("", survey_views.ApiRootView.as_view(), name="root"),
    path("me/", survey_views.MeView.as_view(), name="me"),
]
