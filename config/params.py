"""Serializer fields for query-string parameters, shared by every app's API."""

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
