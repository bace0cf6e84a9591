"""Routes of the results API, mounted under /api/v1/ by ``config.api_router``."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
