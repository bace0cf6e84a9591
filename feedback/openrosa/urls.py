"""OpenRosa endpoints, mounted at ``/openrosa/`` (the server URL given to ODK Collect)."""

from django.urls import path

from feedback.openrosa import views

app_name = "openrosa"
urlpatterns = [
    path("formList", views.form_list, name="form_list"),
    path("forms/<str:code>/form.xml", views.form_xml, name="form"),
    path("submission", views.submission, name="submission"),
]
