"""Serializer fields for query-string parameters, and the validation of a request's parameters
or body, shared by every app's API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty


class QueryChoiceField(serializers.ChoiceField):
    """One of ``choices``; present but empty (``?state=``) is an invalid choice, not absent.

    DRF reads a blank optional value of a form or query string as "not given", so a value
    outside the documented enum would pass silently.
    """

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, empty)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> Any:
    """``data`` (a query string or a request body) as ``serializer_class`` validates it; an
    invalid field is a 400 naming it."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
