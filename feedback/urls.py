"""Public pages where citizens answer (mounted at the site root)."""

from django.urls import path

app_name = "feedback"
urlpatterns: list = []
