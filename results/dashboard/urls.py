"""Routes of the public dashboard, mounted under /results/."""

from django.urls import URLPattern

app_name = "dashboard"
urlpatterns: list[URLPattern] = []
