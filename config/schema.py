"""Shared pieces of the OpenAPI schema: the error body every endpoint uses, and its codes."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from config.pagination import PageNumberPagination


class ErrorSerializer(serializers.Serializer):
    """``{"code", "detail", "fields"}``, rendered by ``config.exceptions``."""

    code = serializers.CharField(help_text=_("Stable error code, e.g. invalid, not_found."))
    detail = serializers.CharField()
    fields = serializers.DictField(
        required=False, help_text=_("Errors per parameter or field name.")
    )
    errors = serializers.ListField(required=False)


ERROR_DESCRIPTIONS = {
    400: _("Invalid parameters or body; `fields` names each one."),
    401: _("Authentication needed (a token or a session)."),
    403: _("Not allowed for this user."),
    404: _("Not found."),
    409: _("Conflict."),
    413: _("Request body too large."),
    429: _("Too many requests: see Retry-After."),
}
ERROR_EXAMPLES = {
    400: OpenApiExample(
        "Bad parameter",
        value={"code": "invalid", "detail": "Invalid input.", "fields": {"round": ["Required."]}},
        status_codes=["400"],
    ),
    429: OpenApiExample(
        "Throttled",
        value={"code": "throttled", "detail": "Request was throttled."},
        status_codes=["429"],
    ),
}


def error_responses(*codes: int) -> dict[int, Any]:
    """The error responses of an operation, each with the common error body."""
    return {
        code: OpenApiResponse(
            ErrorSerializer,
            description=ERROR_DESCRIPTIONS[code],
            examples=[ERROR_EXAMPLES[code]] if code in ERROR_EXAMPLES else [],
        )
        for code in codes
    }


def document_paging_and_traps(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Postprocessing hook: what the shared pieces answer, on every operation that has them.

    Every paginated list answers 400 for a ``page`` or ``page_size`` that is not a whole number
    in range and 404 for a page past the last (``config.pagination``); the petition form's
    ``website`` is a trap for robots that must stay empty (a filled one is a 400); and any
    request whose URL is longer than the HTTP server takes (gunicorn: 4,094 bytes of request
    line) is answered 414 by that server, before the application.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            operation["responses"].setdefault(
                "414", {"description": str(_("Request URL too long (the HTTP server's limit)."))}
            )
            query = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
            for name in ("page", "page_size"):
                if name in query:
                    query[name]["schema"]["minimum"] = 1
            if "page_size" in query:
                query["page_size"]["schema"]["maximum"] = PageNumberPagination.max_page_size
            if "page" in query:
                for code in (400, 404):
                    operation["responses"].setdefault(
                        str(code),
                        {
                            "description": str(ERROR_DESCRIPTIONS[code]),
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        },
                    )
    for name, component in result.get("components", {}).get("schemas", {}).items():
        website = component.get("properties", {}).get("website")
        if name.startswith("Petition") and website is not None:
            website["maxLength"] = 0
    return result
