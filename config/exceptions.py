"""One API exception handler: every error is JSON with a stable ``code`` and field names.

DRF's handler renders ``APIException``s; this one also turns Django's ``ValidationError``
(raised by services, keyed by field) into a 400, and wraps every body in
``{"code": ..., "detail": ..., "fields": {...}}`` so that clients can rely on one shape.
"""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError


def _field_errors(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {str(k): v for k, v in detail.items() if k != "non_field_errors"}
    return {}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"code": exc.code, "detail": exc.detail}
        if exc.fields:
            body["fields"] = exc.fields
        return Response(body, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(detail=detail)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    data = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    body: dict[str, Any] = {"code": code}
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        body["detail"] = data["detail"]
    else:
        if response.status_code == status.HTTP_400_BAD_REQUEST:
            body["detail"] = str(exceptions.ValidationError.default_detail)  # translated
        elif isinstance(data, dict) and isinstance(exc, exceptions.APIException):
            body["detail"] = str(exc.default_detail)  # e.g. a 404 naming the parameter
        else:
            body["detail"] = str(exc)
        fields = _field_errors(data)
        if fields:
            body["fields"] = fields
        if isinstance(data, dict) and "non_field_errors" in data:
            body["errors"] = data["non_field_errors"]
        elif isinstance(data, list):
            body["errors"] = data
    response.data = body
    return response
