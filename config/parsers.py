"""The API's parsers: DRF's, refusing input the database cannot store (``config.input_guard``).

A body holding a NUL character, a lone surrogate (anywhere: a value, a key, a nested answer),
a number too large for a float or (in a URL-encoded form) bytes that are not UTF-8 is a 400
naming the field, before any view sees it.
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from config.input_guard import encoded_form_problems, unstorable_fields


def refuse_unstorable(data: Any) -> Any:
    """``data`` unchanged, or a DRF ``ValidationError`` naming each field that cannot be stored."""
    if errors := unstorable_fields(data):
        raise ValidationError(errors)
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            parsed = super().parse(stream, media_type, parser_context)
        except ParseError as error:
            # DRF's detail quotes Python's English message; say where, in the user's language.
            if not isinstance(problem := error.__context__, json.JSONDecodeError):
                raise
            raise ParseError(
                _("The body is not valid JSON (line %(line)d, column %(column)d).")
                % {"line": problem.lineno, "column": problem.colno}
            ) from problem
        return refuse_unstorable(parsed)


class FormParser(parsers.FormParser):
    """A URL-encoded form; bytes that are not UTF-8 are refused too, as Django would read
    them as U+FFFD."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read()
        form = super().parse(io.BytesIO(raw), media_type, parser_context)
        if errors := encoded_form_problems(raw, form):
            raise ValidationError(errors)
        return form


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        refuse_unstorable(parsed.data)  # file names are cleaned by Django (printable only)
        return parsed
