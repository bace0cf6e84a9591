"""Hostile input for the property tests of write endpoints: any text, number or date a field
may receive, bodies that carry it (JSON, URL-encoded), and the check that it was handled.

JSON carries a lone surrogate as the escape ``\\ud800``; a form carries its UTF-8-like bytes,
which are not UTF-8.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
FEWER_EXAMPLES = settings(PROPERTY, max_examples=25)

# Any code point, lone surrogates (category Cs, which st.characters() leaves out) and NUL.
ANY_CHARACTER = st.characters() | st.characters(categories=["Cs"]) | st.just("\x00")
TEXT = st.text(ANY_CHARACTER, max_size=40) | st.text(ANY_CHARACTER, min_size=300, max_size=6000)
ODD_STRINGS = st.sampled_from(
    [
        "ab\x00cd",
        "a\ud800b",
        "\udfff",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "1" + "0" * 400,
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "2026-02-30",
        " ",
        "\u202e\x00x",
    ]
)
STRINGS = TEXT | ODD_STRINGS


class Raw(str):
    """A JSON number written as it is (``1e400``), which ``json.dumps`` cannot produce."""


NUMBERS = (
    st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 2**53 + 1])
    | st.sampled_from([Raw("1e400"), Raw("-1e400"), Raw("1e-400"), Raw("123456789e999")])
)
JSON_VALUES = STRINGS | NUMBERS | st.booleans() | st.none() | st.lists(STRINGS, max_size=3)
FORM_VALUES = STRINGS | NUMBERS.map(str)


def json_body(data: dict[str, Any]) -> str:
    """``data`` as JSON; a lone surrogate becomes the escape ``\\ud800``, a ``Raw`` number
    is written unquoted."""
    raws: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(str(value))
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(data))
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@raw{index}@@"', raw)
    return text


def form_body(data: dict[str, Any]) -> str:
    """``data`` URL-encoded as UTF-8; a lone surrogate's bytes go as they are (not UTF-8)."""

    def encoded(value: Any) -> str:
        return quote_plus(str(value).encode("utf-8", "surrogatepass"))

    return "&".join(f"{encoded(k)}={encoded(v)}" for k, v in data.items())


def post_json(client: Client, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, json_body(data), content_type="application/json")


def post_form(client: Client, path: str, data: dict[str, Any]) -> Any:
    form = "application/x-www-form-urlencoded"
    return client.post(path, form_body(data), content_type=form)


def error_names(node: Any) -> set[str]:
    """Every key of a JSON error body's ``fields``, at any depth."""
    if not isinstance(node, dict):
        return set()
    return set(node) | {name for value in node.values() for name in error_names(value)}


def assert_handled(response: Any, *names: str) -> None:
    """2xx, 3xx or 4xx; a 400 names one of ``names``."""
    assert response.status_code < 500, (response.status_code, response.content[:500])
    if response.status_code != 400:
        return
    if response["Content-Type"].startswith("application/json"):
        body = response.json()
        if isinstance(body, list):  # Open311: [{"code": 400, "description": "lat: …"}]
            text = " ".join(error["description"] for error in body)
            assert any(name in text for name in names), (names, body)
        else:
            assert error_names(body.get("fields")) & set(names), (names, body)
    else:
        page = response.content.decode()
        assert any(name in page for name in names), (names, page[-1500:])


def fresh_limits() -> None:
    """Hypothesis sends many requests from one address: start each example unthrottled."""
    cache.clear()
