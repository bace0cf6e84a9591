"""Shared pieces of the OpenAPI schema: the error body every endpoint uses, and its codes."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


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
