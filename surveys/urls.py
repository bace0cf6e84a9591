"""Public pages of the survey frame."""

from django.urls import path

from surveys import views

app_name = "surveys"
urlpatterns = [
    path("", views.home, name="home"),
]
