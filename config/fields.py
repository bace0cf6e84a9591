"""Serializer fields shared by the API's input serializers."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class ClientIdField(serializers.UUIDField):
    """An idempotency key: a UUID written as text, nothing else.

    DRF's ``UUIDField`` also takes a number (``0``, and so ``false``) as the UUID of that
    value, which would let unrelated clients share the key 00000000-…; a key must be a
    string such as ``6f1c0f9e-4c1b-4f0e-9a57-0b5b8f8e1a01``.
    """

    default_error_messages = {
        "invalid": _(
            "Must be a UUID written as text, such as 6f1c0f9e-4c1b-4f0e-9a57-0b5b8f8e1a01."
        )
    }

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
