"""Path converters: a code in a URL matches ``surveys.models.code_validator`` or is a 404."""

from __future__ import annotations

from django.urls import register_converter


class CodeConverter:
    regex = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(CodeConverter, "code")
