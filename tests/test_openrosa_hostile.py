"""Property: whatever an ODK client sends to ``/openrosa/submission`` (any text in any
field of the instance, NUL and lone surrogates, huge numbers, odd dates, DTDs and entity
declarations, broken XML), the answer is a 201 or an OpenRosa 4xx, never a server error,
and a refused submission stores nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedback.models import Response
from tests.support import hostile_input
from tests.support.openrosa import basic, make_enumerator, message

pytestmark = [pytest.mark.django_db]
PROPERTY = settings(hostile_input.PROPERTY, max_examples=60)
ANY_CHARACTER = hostile_input.ANY_CHARACTER
ODD = st.sampled_from(
    [
        "ab\x00cd",
        "a\ud800b",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "1" + "0" * 400,
        "9" * 5000,
        "4.5",
        "0001-01-01",
        "2026-02-30",
        "+99999-01-01",
        " ",
        "yes no",
        "\u202e",
    ]
)
TEXT = st.text(ANY_CHARACTER, max_size=30) | ODD
FIELDS = st.sampled_from(["USED", "SAT", "sipas_unit", "sipas_agency", "sipas_psu", "id", "iid"])
BOMB = (
    '<?xml version="1.0"?><!DOCTYPE data [<!ENTITY a "{v}"><!ENTITY b "&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;">]><data id="swap"><sipas_unit>01</sipas_unit>'
    "<MAIN><USED>&c;</USED></MAIN><meta><instanceID>uuid:{u}</instanceID></meta></data>"
)


def xml_text(value: str) -> str:
    """``value`` in an XML document: markup escaped, each character as a character reference
    (so NUL and lone surrogates reach the parser as written, which must refuse them)."""
    return "".join(f"&#{ord(c)};" for c in value)


def instance(field: str, value: str) -> bytes:
    values = {"USED": "yes", "SAT": "4", "sipas_unit": "01", "sipas_agency": "", "sipas_psu": ""}
    form_id, instance_id = "swap", f"uuid:{uuid.uuid4()}"
    if field == "id":
        form_id = value
    elif field == "iid":
        instance_id = value
    else:
        values[field] = value
    body = "".join(
        f"<{name}>{xml_text(text)}</{name}>"
        for name, text in values.items()
        if name.startswith("sipas_")
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><data id="{xml_text(form_id)}">{body}'
        f"<MAIN><USED>{xml_text(values['USED'])}</USED><SAT>{xml_text(values['SAT'])}</SAT>"
        f"</MAIN><meta><instanceID>{xml_text(instance_id)}</instanceID></meta></data>"
    ).encode("utf-8", "surrogatepass")


@PROPERTY
@given(field=FIELDS, value=TEXT, raw=st.booleans())
@example(field="SAT", value="9" * 5000, raw=False)
@example(field="USED", value="a\ud800b", raw=False)
@example(field="USED", value="\x00", raw=True)
@example(field="sipas_unit", value="0" * 100, raw=False)
@example(field="iid", value="", raw=False)
@example(field="bomb", value="x" * 50, raw=False)
def test_any_instance_is_stored_or_refused_never_a_server_error(
    agency_round: Any, field: str, value: str, raw: bool
) -> None:
    user, password = _account()
    if field == "bomb":
        xml = BOMB.format(v=value, u=uuid.uuid4()).encode()
    elif raw:  # the text itself in the document, not as character references
        xml = instance("USED", "yes").replace(b"yes", value.encode("utf-8", "surrogatepass"), 1)
    else:
        xml = instance(field, value)
    before = Response.objects.count()
    client = Client(raise_request_exception=False)
    answer = client.post(
        "/openrosa/submission",
        {"xml_submission_file": SimpleUploadedFile("s.xml", xml, "text/xml")},
        **basic(user.username, password),
    )
    assert answer.status_code in (201, 400, 403, 404, 409), answer.content
    text = message(answer)
    if answer.status_code == 201:
        assert Response.objects.count() == before + 1
    else:
        assert Response.objects.count() == before
        assert text
    if field == "bomb":
        assert answer.status_code == 400 and "DTD" in text


_ACCOUNTS: dict[str, Any] = {}


def _account() -> tuple[Any, str]:
    """One enumerator per test database (hypothesis runs many examples in one test)."""
    from django.contrib.auth import get_user_model

    existing = get_user_model().objects.filter(username="hostile").first()
    if existing is None or "hostile" not in _ACCOUNTS:
        if existing is not None:
            existing.delete()
        _ACCOUNTS["hostile"] = make_enumerator("hostile")
    return _ACCOUNTS["hostile"]
