"""Top-level URLs: admin, health, the API under /api/v1/ with its schema and docs, languages."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from config import api_docs, health
from config.api_router import urlpatterns as api_urlpatterns

urlpatterns = [
    # The API first: the most requested paths, resolved without trying the others.
    path("api/v1/", include((api_urlpatterns, "api"), namespace="v1")),
    path("admin/", admin.site.urls),
    path("health/", health.health, name="health"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", api_docs.SchemaView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="swagger-ui",
    ),
    path(
        "api/redoc/",
        # Redoc's search runs in a worker it makes from a blob: URL (made by its own script,
        # which the nonce admits); no other page may start a worker.
        csp_override(settings.SECURE_CSP | {"worker-src": [CSP.SELF, "blob:"]})(
            SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")
        ),
        name="redoc",
    ),
    path("api/redoc/redoc.standalone.js", api_docs.redoc_bundle, name="redoc-bundle"),
    path("api/auth/", include("rest_framework.urls", namespace="rest_framework")),
    path("results/", include("results.dashboard.urls")),
    path("plans/", include("plans.urls")),
    path("open311/v2/", include("feedback.open311.urls")),
    path("openrosa/", include("feedback.openrosa.urls")),
    path("", include("surveys.urls")),
    path("", include("feedback.urls")),
]

handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
