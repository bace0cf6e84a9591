"""One guard for input on its way to the database: text PostgreSQL cannot store is refused.

PostgreSQL's ``text`` and ``jsonb`` cannot hold the character U+0000 (NUL), and a lone
UTF-16 surrogate (U+D800–U+DFFF, which JSON can carry as ``"\\ud800"``) cannot be encoded
in UTF-8 at all: either one reaching a query is a server error, and quietly removing it
would store something the client did not send. JSON can also carry a number too large for
a float (``1e400`` parses as infinity), which ``jsonb`` refuses too.

Every channel refuses such input with a 4xx naming the field, through the functions here:
the API's parsers (``config.parsers``, Open311's forms among them),
``UnstorableInputMiddleware`` (URL paths, query strings and form fields of the other views),
Open311's query strings and the answer validation shared by every channel
(``feedback.validation``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored, or ``None`` when it can."""
    if "\x00" in value:
        return _("The text contains a NUL character (U+0000), which is not allowed.")
    if UNSTORABLE.search(value):
        return _("The text contains an unpaired surrogate character, which is not allowed.")
    return None


def printable(value: str) -> str:
    """``value`` with each unstorable character written as an escape, safe to echo back."""
    return UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", value)


def validate_storable_text(value: Any) -> None:
    """A Django validator: ``ValidationError`` when a string cannot be stored."""
    if isinstance(value, str) and (problem := text_problem(value)):
        raise ValidationError(problem, code="unstorable_text")


def unstorable_fields(data: Any) -> dict[str, Any]:
    """Errors for every string (key or value) and every non-finite number in ``data``.

    ``data`` is parsed JSON or a form: the errors follow its shape (``{"answers": {"A08":
    [message]}}``), a key that cannot be stored is reported in its escaped form, and a
    value that is not a mapping is reported under ``non_field_errors``.
    """
    if isinstance(data, dict) or hasattr(data, "lists"):
        return _mapping_errors(data)
    problems = _value_errors(data)
    return {"non_field_errors": problems} if problems else {}


def _mapping_errors(data: Any) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    items: Iterable[tuple[Any, Any]] = data.lists() if hasattr(data, "lists") else data.items()
    for key, value in items:
        name = printable(key) if isinstance(key, str) else str(key)
        if isinstance(key, str) and (problem := text_problem(key)):
            errors[name] = [_("The field name is not allowed: %(problem)s") % {"problem": problem}]
            continue
        problems = _value_errors(value)
        if problems:
            errors[name] = problems
    return errors


def _value_errors(value: Any) -> Any:
    """The errors of one value: a list of messages, or nested errors for a mapping or list."""
    if isinstance(value, str):
        problem = text_problem(value)
        return [problem] if problem else []
    if isinstance(value, float) and not math.isfinite(value):
        return [_("The number is too large.")]
    if isinstance(value, dict):
        return _mapping_errors(value)
    if isinstance(value, list | tuple):
        nested = {str(i): errors for i, item in enumerate(value) if (errors := _value_errors(item))}
        if nested and all(isinstance(e, list) for e in nested.values()):
            # A list of plain values (a multiple choice, a form field sent twice): one message.
            return sorted({message for messages in nested.values() for message in messages})
        return nested
    return []


def undecodable_fields(raw: bytes) -> dict[str, list[str]]:
    """Errors for each name or value of a URL-encoded query or form that is not UTF-8.

    Django decodes such bytes as U+FFFD, which would store something the client did not
    send; the raw bytes tell a broken encoding from a replacement character really sent.
    """
    errors: dict[str, list[str]] = {}
    for pair in raw.split(b"&"):
        name, _sep, value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(name.replace(b"+", b" "))
        try:
            text = name_bytes.decode()
        except UnicodeDecodeError:
            text = name_bytes.decode(errors="backslashreplace")
            errors[printable(text)] = [_("The field name is not valid UTF-8 text.")]
            continue
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode()
        except UnicodeDecodeError:
            errors[printable(text)] = [_("The text is not valid UTF-8.")]
    return errors


# A query string of ASCII characters whose percent-escapes all stand for bytes 01–7F decodes
# to ASCII text with no NUL: nothing in it can be refused, so it is not parsed here.
RISKY_ESCAPE = re.compile(r"%(?:00|[89a-fA-F][0-9a-fA-F])|\x00")


def query_problems(request: HttpRequest) -> dict[str, Any]:
    """Errors of the query string's names and values, by parameter."""
    raw = request.META.get("QUERY_STRING", "")
    if isinstance(raw, str) and raw.isascii() and not RISKY_ESCAPE.search(raw):
        return {}
    raw_bytes = raw.encode("iso-8859-1", "replace") if isinstance(raw, str) else raw
    return undecodable_fields(raw_bytes) | unstorable_fields(request.GET)


def form_problems(request: HttpRequest) -> dict[str, Any]:
    """Errors of a posted form's fields (a multipart form's bytes are decoded by Django)."""
    if request.content_type == FORM_TYPES[0]:
        return encoded_form_problems(request.body, request.POST)
    return unstorable_fields(request.POST)


def encoded_form_problems(raw: bytes, form: Any) -> dict[str, Any]:
    """Errors of a URL-encoded form's fields: ``raw``, its body, and ``form``, as parsed."""
    return undecodable_fields(raw) | unstorable_fields(form)


def checks_own_input[View: Callable[..., Any]](view: View) -> View:
    """Mark a view that checks its query string itself and reports problems in its own
    format (Open311); ``UnstorableInputMiddleware`` then checks only its path."""
    view.checks_own_input = True  # type: ignore[attr-defined]
    return view
