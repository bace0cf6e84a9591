"""Helpers of the OpenRosa tests: an enumerator account with an ODK password, instances
written as an ODK client writes them, and the OpenRosa message of a response."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from xml.etree import ElementTree

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from feedback.openrosa.auth import issue_password

ACCOUNT_PASSWORD = "enumerator-own-password-1"
RESPONSE_NS = "{http://openrosa.org/http/response}"


def make_enumerator(username: str = "enum1", *, permitted: bool = True) -> tuple[Any, str]:
    """An account (permitted: with ``feedback.submit_on_behalf``) and its ODK password."""
    user = get_user_model().objects.create_user(username, password=ACCOUNT_PASSWORD)
    if permitted:
        user.user_permissions.add(
            Permission.objects.get(codename="submit_on_behalf", content_type__app_label="feedback")
        )
    return user, issue_password(user)


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def instance_xml(
    answers: dict[str, str],
    *,
    unit: str = "01",
    agency: str = "",
    psu: str = "",
    instance_id: str | None = None,
    form_id: str = "swap",
    group: str = "MAIN",
) -> bytes:
    """An instance of the round's form as ODK Collect sends it: every field present, the
    unanswered ones empty, ``meta/instanceID`` last."""
    instance_id = instance_id or f"uuid:{uuid.uuid4()}"
    root = ElementTree.Element(
        "data",
        {"id": form_id, "version": "1", "xmlns:orx": "http://openrosa.org/xforms"},
    )
    for name, value in (("sipas_unit", unit), ("sipas_agency", agency), ("sipas_psu", psu)):
        ElementTree.SubElement(root, name).text = value or None
    section = ElementTree.SubElement(root, group)
    for code, value in answers.items():
        ElementTree.SubElement(section, code).text = value or None
    meta = ElementTree.SubElement(root, "meta")
    ElementTree.SubElement(meta, "instanceID").text = instance_id
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def message(response: Any) -> str:
    """The text of an OpenRosa response's message."""
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{RESPONSE_NS}OpenRosaResponse"
    return root.find(f"{RESPONSE_NS}message").text or ""
