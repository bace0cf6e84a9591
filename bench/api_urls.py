"""URLs of the API benchmark's server: the service's own, plus a bare Django view."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as service_urlpatterns


def bare(request: HttpRequest) -> JsonResponse:
    """The baseline: a plain Django view returning a small JSON document, no database."""
    return JsonResponse({"round": "sipas-2022", "indicator": "SIPAS", "value": 80.08})


urlpatterns = [path("bench/bare/", bare), *service_urlpatterns]
