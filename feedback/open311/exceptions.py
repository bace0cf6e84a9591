"""Every Open311 error in the specification's format: ``[{"code": 404, "description": …}]``
(``<errors><error>…`` in XML), with the HTTP status as ``code``.

The views' exception handler, in place of the REST API's (``config.exceptions``): DRF's
errors, the services' ``ValidationError`` keyed by field and their domain errors each become
one or more descriptions, a field error written ``parameter: message``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.abuse import RequestTooLarge
from config.errors import DomainError

API_KEY_REFUSED = "api_key missing or not valid"
# The specification's words for the errors whose detail would say more (or less) than this.
DESCRIPTIONS: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: API_KEY_REFUSED,  # no api_key
    exceptions.AuthenticationFailed: API_KEY_REFUSED,  # an unknown key, an inactive account
    exceptions.PermissionDenied: API_KEY_REFUSED,  # an account without the permission
    exceptions.Throttled: "too many requests; try again later",
    RequestTooLarge: "request body too large",
}
# The services' field names → the GeoReport v2 parameter a client sent.
PARAMETERS = {
    "category": "service_code",
    "unit": "jurisdiction_id",
    "agency": "attribute[agency]",
    "address": "address_string",
    "contact_name": "first_name",
    "contact_email": "email",
    "contact_phone": "phone",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The error as the specification's list of ``{code, description}``; None (a 500) for an
    exception that is no client error."""
    exc = _as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data["detail"]
    described = next((text for kind, text in DESCRIPTIONS.items() if isinstance(exc, kind)), None)
    response.data = [
        {"code": response.status_code, "description": text}
        for text in descriptions(described or detail)
    ]
    return response


def _as_api_exception(exc: Exception) -> Exception:
    """A service's error as DRF's: a domain error with its status, a ``ValidationError``
    naming the GeoReport parameters."""
    if isinstance(exc, DomainError):
        error = exceptions.APIException(exc.detail)
        error.status_code = exc.status_code
        return error
    if isinstance(exc, DjangoValidationError):
        if not hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.messages)
        fields = exc.message_dict
        return exceptions.ValidationError({PARAMETERS.get(f, f): fields[f] for f in fields})
    return exc


def descriptions(detail: Any) -> list[str]:
    """Each message of an error's detail; a field's written ``name: message``."""
    if isinstance(detail, dict):
        return [f"{name}: {text}" for name, value in detail.items() for text in descriptions(value)]
    if isinstance(detail, list):
        return [text for item in detail for text in descriptions(item)]
    return [str(detail)]
