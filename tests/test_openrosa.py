"""The OpenRosa server as ODK Collect uses it: form list, form download, ``HEAD`` then
``POST`` of submissions with HTTP Basic and Digest, and every refusal in the OpenRosa
format. Digest is driven by two independent client implementations (``requests`` and the
standard library's ``urllib``) against the live server."""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.request
import uuid
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from feedback.models import Answer, Response, ResponseAttachment
from feedback.openrosa import auth
from surveys.models import Round
from tests.support.openrosa import (
    ACCOUNT_PASSWORD,
    basic,
    instance_xml,
    make_enumerator,
    message,
)

pytestmark = pytest.mark.django_db
FORMS_NS = "{http://openrosa.org/xforms/xformsList}"


def stored_answers(response: Response) -> dict[str, Any]:
    return {
        code: value
        for code, value in Answer.objects.filter(response=response).values_list(
            "question__code", "value"
        )
    }


def post(client: Client, xml: bytes, credentials: dict[str, str], **files: bytes) -> Any:
    data: dict[str, Any] = {"xml_submission_file": SimpleUploadedFile("s.xml", xml, "text/xml")}
    data |= {
        name: SimpleUploadedFile(name, content, "image/jpeg") for name, content in files.items()
    }
    return client.post("/openrosa/submission", data, **credentials)


@pytest.fixture
def enumerator(agency_round: Round) -> tuple[Any, str]:
    return make_enumerator()


def test_form_list_and_form(client: Client, agency_round: Round, enumerator: Any) -> None:
    user, password = enumerator
    now = timezone.now()
    Round.objects.create(  # closed: not listed
        code="old",
        name_vi="Cũ",
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 6, 30),
        opens_at=now - dt.timedelta(days=60),
        closes_at=now - dt.timedelta(days=30),
        version=agency_round.version,
    )
    listed = client.get("/openrosa/formList", **basic(user.username, password))
    assert listed.status_code == 200
    assert listed["X-OpenRosa-Version"] == "1.0"
    assert listed["Content-Type"].startswith("text/xml")
    forms = ElementTree.fromstring(listed.content).findall(f"{FORMS_NS}xform")
    assert [f.findtext(f"{FORMS_NS}formID") for f in forms] == ["swap"]
    url = forms[0].findtext(f"{FORMS_NS}downloadUrl")
    assert url == "http://testserver/openrosa/forms/swap/form.xml"

    form = client.get("/openrosa/forms/swap/form.xml", **basic(user.username, password))
    assert form.status_code == 200
    assert forms[0].findtext(f"{FORMS_NS}hash") == "md5:" + hashlib.md5(form.content).hexdigest()
    xform = form.content.decode()
    assert '<data id="swap"' in xform
    # The unit is a question whose choices are the round's units, the agency one filtered
    # by the unit chosen.
    units = ElementTree.fromstring(form.content).findall(
        ".//{http://www.w3.org/2002/xforms}instance[@id='sipas_units']//"
        "{http://www.w3.org/2002/xforms}name"
    )
    assert sorted(u.text for u in units) == sorted(
        agency_round.units.values_list("code", flat=True)
    )
    assert "instance('sipas_agencies')/root/item[unit= /data/sipas_unit ]" in xform
    assert "<sipas_psu/>" in xform
    assert "relevant=\" /data/MAIN/USED  = 'yes'\"" in xform

    closed = client.get("/openrosa/forms/old/form.xml", **basic(user.username, password))
    assert closed.status_code == 404
    assert "old" in message(closed)


def test_unauthenticated_wrong_password_and_no_permission(
    client: Client, agency_round: Round, enumerator: Any
) -> None:
    user, password = enumerator
    for credentials in ({}, basic(user.username, "wrong"), basic("nobody", password)):
        refused = client.get("/openrosa/formList", **credentials)
        assert refused.status_code == 401
        challenges = [v for k, v in refused.items() if k.lower() == "www-authenticate"]
        assert [c.split()[0] for c in challenges] == ["Digest", "Digest", "Basic"]
        assert "algorithm=MD5" in challenges[0] and "algorithm=SHA-256" in challenges[1]
        assert 'qop="auth"' in challenges[0]
    wrong = post(client, instance_xml({"USED": "yes"}), basic(user.username, "wrong"))
    assert wrong.status_code == 401
    assert Response.objects.count() == 0

    _other, other_password = make_enumerator("visitor", permitted=False)
    forbidden = post(
        client,
        instance_xml({"USED": "yes"}),
        basic("visitor", other_password) | {"HTTP_ACCEPT_LANGUAGE": "en"},
    )
    assert forbidden.status_code == 403
    assert "submit" in message(forbidden)
    assert client.get("/openrosa/formList", **basic("visitor", other_password)).status_code == 403
    assert Response.objects.count() == 0


def test_head_then_post_with_basic(client: Client, agency_round: Round, enumerator: Any) -> None:
    user, password = enumerator
    head = client.head("/openrosa/submission", **basic(user.username, password))
    assert head.status_code == 204
    assert int(head["X-OpenRosa-Accept-Content-Length"]) >= 10 * 1024 * 1024
    # The account's own password works over Basic too (never over Digest).
    instance_id = f"uuid:{uuid.uuid4()}"
    xml = instance_xml(
        {"USED": "yes", "SAT": "4"}, unit="19", psu="19-TanCuong", instance_id=instance_id
    )
    stored = post(client, xml, basic(user.username, ACCOUNT_PASSWORD))
    assert stored.status_code == 201, stored.content
    assert stored["X-OpenRosa-Version"] == "1.0"
    response = Response.objects.get()
    assert "Receipt" in message(stored) or response.receipt in message(stored)
    assert response.channel == Response.Channel.ODK
    assert response.submitted_by == user
    assert response.client_id == uuid.UUID(instance_id[5:])
    assert (response.unit.code, response.psu, response.agency) == ("19", "19-TanCuong", None)
    assert stored_answers(response) == {"USED": True, "SAT": 4}


def test_digest_with_two_client_implementations(
    live_server: Any, agency_round: Round, enumerator: Any
) -> None:
    user, password = enumerator
    url = f"{live_server.url}/openrosa/submission"
    # requests: HEAD then POST, answering the challenge (it takes the SHA-256 one).
    digest = requests.auth.HTTPDigestAuth(user.username, password)
    head = requests.head(url, auth=digest, timeout=10)
    assert head.status_code == 204
    assert head.headers["X-OpenRosa-Accept-Content-Length"]
    xml = instance_xml({"USED": "no"}, unit="01")
    stored = requests.post(
        url, auth=digest, files={"xml_submission_file": ("s.xml", xml, "text/xml")}, timeout=10
    )
    assert stored.status_code == 201, stored.text
    assert 'algorithm="SHA-256"' in stored.request.headers["Authorization"]

    # urllib answers the first challenge only: MD5.
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, live_server.url, user.username, password)
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(manager))
    with opener.open(f"{live_server.url}/openrosa/formList", timeout=10) as listed:
        assert listed.status == 200
        assert b"<formID>swap</formID>" in listed.read()
    boundary = "sipas-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
            f'filename="s.xml"\r\nContent-Type: text/xml\r\n\r\n'
        ).encode()
        + instance_xml({"USED": "yes", "SAT": "2"}, unit="02")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with opener.open(request, timeout=10) as posted:
        assert posted.status == 201
    assert sorted(Response.objects.values_list("unit__code", "submitted_by")) == [
        ("01", user.pk),
        ("02", user.pk),
    ]

    # The account's own password is no Digest secret; a wrong one is refused.
    for secret in (ACCOUNT_PASSWORD, "wrong"):
        refused = requests.head(
            url, auth=requests.auth.HTTPDigestAuth(user.username, secret), timeout=10
        )
        assert refused.status_code == 401


def test_stale_nonce_gets_a_fresh_challenge(
    client: Client, agency_round: Round, enumerator: Any
) -> None:
    user, password = enumerator
    nonce = auth.new_nonce(now=timezone.now().timestamp() - 3600)
    ha1 = auth.ha1("MD5", user.username, password)
    ha2 = hashlib.md5(b"HEAD:/openrosa/submission").hexdigest()
    answer = hashlib.md5(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}".encode()).hexdigest()
    header = (
        f'Digest username="{user.username}", realm="SIPAS", nonce="{nonce}", '
        f'uri="/openrosa/submission", qop=auth, nc=00000001, cnonce="abc", response="{answer}"'
    )
    refused = client.head("/openrosa/submission", HTTP_AUTHORIZATION=header)
    assert refused.status_code == 401
    assert "stale=true" in refused["WWW-Authenticate"]
    fresh = auth.new_nonce()
    answer = hashlib.md5(f"{ha1}:{fresh}:00000001:abc:auth:{ha2}".encode()).hexdigest()
    accepted = client.head(
        "/openrosa/submission",
        HTTP_AUTHORIZATION=header.replace(nonce, fresh).split(", response=")[0]
        + f', response="{answer}"',
    )
    assert accepted.status_code == 204


def test_duplicate_and_conflicting_instances(
    client: Client, agency_round: Round, enumerator: Any
) -> None:
    user, password = enumerator
    credentials = basic(user.username, password)
    instance_id = f"uuid:{uuid.uuid4()}"
    xml = instance_xml({"USED": "yes", "SAT": "5"}, instance_id=instance_id)
    first = post(client, xml, credentials)
    assert first.status_code == 201
    again = post(client, xml, credentials)
    assert again.status_code == 202  # ODK Collect counts it sent
    assert Response.objects.get().receipt in message(again)
    other = post(
        client, instance_xml({"USED": "yes", "SAT": "1"}, instance_id=instance_id), credentials
    )
    assert other.status_code == 409
    assert "instanceID" in message(other)
    response = Response.objects.get()
    assert stored_answers(response) == {"USED": True, "SAT": 5}


def test_hidden_answer_discarded_and_invalid_value_named(
    client: Client, agency_round: Round, enumerator: Any
) -> None:
    user, password = enumerator
    credentials = basic(user.username, password)
    hidden = post(client, instance_xml({"USED": "no", "SAT": "5"}), credentials)
    assert hidden.status_code == 201
    assert stored_answers(Response.objects.get()) == {"USED": False}

    for answers, named in (
        ({"USED": "yes", "SAT": "9"}, "SAT"),
        ({"USED": "maybe"}, "USED"),
        ({"USED": "yes", "SAT": "4", "NOPE": "1"}, "NOPE"),
        ({"SAT": "4"}, "USED"),  # required
    ):
        refused = post(client, instance_xml(answers), credentials)
        assert refused.status_code == 400, answers
        assert message(refused).startswith(named), message(refused)
    wrong_agency = post(
        client, instance_xml({"USED": "no"}, unit="01", agency="19-TTPVHCC"), credentials
    )
    assert wrong_agency.status_code == 400
    assert message(wrong_agency).startswith("sipas_agency")
    assert Response.objects.count() == 1


def test_attachments_stored_limited_and_served_to_staff_only(
    client: Client, agency_round: Round, enumerator: Any, settings: Any, django_user_model: Any
) -> None:
    settings.OPENROSA_MAX_ATTACHMENT_BYTES = 1000
    user, password = enumerator
    credentials = basic(user.username, password)
    too_big = post(client, instance_xml({"USED": "no"}), credentials, **{"paper.jpg": b"x" * 1001})
    assert too_big.status_code == 413
    assert "paper.jpg" in message(too_big)
    assert Response.objects.count() == 0

    instance_id = f"uuid:{uuid.uuid4()}"
    xml = instance_xml({"USED": "no"}, instance_id=instance_id)
    photo = b"\xff\xd8\xff<script>alert(1)</script>"
    assert post(client, xml, credentials, **{"paper.jpg": photo}).status_code == 201
    # ODK Collect sends a large submission's files in several requests with the instance.
    second = post(client, xml, credentials, **{"paper.jpg": photo, "back.jpg": b"\xff\xd8b"})
    assert second.status_code == 202
    response = Response.objects.get()
    files = dict(ResponseAttachment.objects.values_list("name", "size"))
    assert files == {"paper.jpg": len(photo), "back.jpg": 3}

    attachment = ResponseAttachment.objects.get(name="paper.jpg")
    url = f"/admin/feedback/response/{response.pk}/attachments/{attachment.pk}/"
    assert client.get(url).status_code == 302  # to the login page
    staff = django_user_model.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_response"))
    client.force_login(staff)
    page = client.get(f"/admin/feedback/response/{response.pk}/change/")
    assert url in page.content.decode()
    download = client.get(url)
    assert download.status_code == 200
    assert download.content == photo
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith('attachment; filename="paper.jpg"')


def test_closed_round_and_unknown_form(
    client: Client, agency_round: Round, enumerator: Any
) -> None:
    user, password = enumerator
    credentials = basic(user.username, password)
    Round.objects.filter(pk=agency_round.pk).update(
        closes_at=timezone.now() - dt.timedelta(hours=1)
    )
    closed = post(client, instance_xml({"USED": "no"}), credentials)
    assert closed.status_code == 403
    assert "swap" in message(closed)
    unknown = post(client, instance_xml({"USED": "no"}, form_id="nope"), credentials)
    assert unknown.status_code == 404
    assert Response.objects.count() == 0


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<data id="swap"><sipas_unit>01</sipas_unit><MAIN><USED>&b;</USED></MAIN></data>',
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<data id="swap"><MAIN><USED>&x;</USED></MAIN></data>',
        b'<data id="swap"><MAIN><USED>&#0;</USED></MAIN></data>',
        b"<data id='swap'><MAIN><USED>yes</USED></MAIN>",
        b"",
    ],
)
def test_hostile_xml_refused(
    client: Client, agency_round: Round, enumerator: Any, xml: bytes
) -> None:
    user, password = enumerator
    refused = post(client, xml, basic(user.username, password))
    assert refused.status_code == 400
    assert message(refused).startswith("xml_submission_file")
    assert Response.objects.count() == 0


def test_missing_instance_file(client: Client, agency_round: Round, enumerator: Any) -> None:
    user, password = enumerator
    refused = client.post("/openrosa/submission", {"other": "x"}, **basic(user.username, password))
    assert refused.status_code == 400
    assert "xml_submission_file" in message(refused)
