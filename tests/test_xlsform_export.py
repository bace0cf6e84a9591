"""XLSForm export of a questionnaire version: what pyxform makes of it, and who may fetch it."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from openpyxl import load_workbook
from pyxform.xls2xform import convert

from surveys.services import start_draft
from surveys.xlsform import XLSX_CONTENT_TYPE, xlsform_sheets

URL = "/api/v1/questionnaires/{code}/versions/{number}/xlsform.xlsx"


def xform_of(content: bytes) -> tuple[str, list[str]]:
    warnings: list[str] = []
    result = convert(content, warnings=warnings, file_type=".xlsx")
    return result.xform, warnings


def rows_by_name(sheets: dict[str, list[dict[str, str]]]) -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in sheets["survey"] if row["name"]}


@pytest.mark.django_db
def test_published_version_is_public_and_pyxform_converts_it_without_warnings(
    sipas: Any, client: Client
) -> None:
    response = client.get(URL.format(code="sipas", number=sipas.number))
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX_CONTENT_TYPE
    assert response["Content-Disposition"] == f'attachment; filename="sipas-v{sipas.number}.xlsx"'

    xform, warnings = xform_of(response.content)
    assert warnings == []
    # A scale with its bounds, shown only when the screener is answered yes.
    assert (
        '<bind nodeset="/data/B5/S01" type="string" relevant=" /data/B3/Q8_4  = \'yes\'" '
        'constraint=". &gt;= 1 and . &lt;= 5"/>'
    ) in xform
    text_bind = '<bind nodeset="/data/A/A08" type="string" constraint="string-length(.) &lt;= 100"'
    assert text_bind in xform
    assert '<translation lang="English (en)">' in xform
    assert '<translation lang="Tiếng Việt (vi)" default="true()">' in xform

    workbook = load_workbook(BytesIO(response.content), read_only=True)
    assert workbook.sheetnames == [
        "survey",
        "choices",
        "settings",
        "sipas_indicators",
        "sipas_policy_groups",
    ]


@pytest.mark.django_db
def test_sheets_carry_types_bounds_conditions_and_scoring_tags(sipas: Any) -> None:
    sheets = xlsform_sheets(sipas)
    expected = {
        "Q1_1": {
            "type": "select_one Q1_1",
            "sipas_type": "scale",
            "constraint": ". >= 1 and . <= 3",
            "sipas_indicator": "Q1_1",
            "sipas_satisfied": "3",
        },
        "Q1_2": {"type": "select_one Q1_1"},  # the same scale: one shared list
        "Q8_4": {"type": "select_one sipas_yes_no", "sipas_type": "yesno", "required": "yes"},
        "Q2": {
            "type": "select_multiple Q2",
            "hint::English (en)": "You may choose several answers.",
        },
        "A01": {"sipas_excluded": "yes"},
        "Q11": {"appearance": "multiline", "constraint": "string-length(.) <= 4000"},
        "P06": {"relevant": "${Q8_2} = 'yes'"},
        "A": {"type": "begin group", "label::English (en)": "Part A. About the respondent"},
        "A_intro": {"type": "note"},
    }
    rows = rows_by_name(sheets)
    shown = {
        name: {column: rows[name][column] for column in cells} for name, cells in expected.items()
    }
    assert shown == expected
    scale = [c for c in sheets["choices"] if c["list_name"] == "Q1_1"]
    assert [(c["name"], c["label::English (en)"]) for c in scale] == [
        ("1", "Not interested"),
        ("2", "Somewhat interested"),
        ("3", "Very interested"),
    ]
    assert sheets["settings"][0]["form_id"] == "sipas"
    assert sheets["settings"][0]["version"] == str(sipas.number)
    indicators = {row["code"]: row for row in sheets["sipas_indicators"]}
    assert indicators["SIPAS"]["parent"] == ""
    assert indicators["P06"]["parent"] == "POL.C"
    assert indicators["P06"]["policy_group"] == "G2"
    assert [g["code"] for g in sheets["sipas_policy_groups"]][:2] == ["G1", "G2"]


@pytest.mark.django_db
def test_a_draft_is_exported_only_to_staff_who_may_view_versions(sipas: Any) -> None:
    draft = start_draft(version_id=sipas.pk)
    url = URL.format(code="sipas", number=draft.number)
    assert Client().get(url).status_code == 401

    users = get_user_model().objects
    citizen = users.create_user("citizen", password="pw-123456789")
    staff = users.create_user("editor", password="pw-123456789", is_staff=True)
    viewer = users.create_user("viewer", password="pw-123456789", is_staff=True)
    not_staff = users.create_user("outsider", password="pw-123456789")
    view = Permission.objects.get(codename="view_questionnaireversion")
    viewer.user_permissions.add(view)
    not_staff.user_permissions.add(view)

    for user, expected in ((citizen, 403), (staff, 403), (not_staff, 403), (viewer, 200)):
        client = Client()
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == expected, user.username
    assert response["Cache-Control"] == "private, no-store"
    _xform, warnings = xform_of(response.content)
    assert warnings == []


@pytest.mark.django_db
def test_unknown_versions_are_404(sipas: Any, client: Client) -> None:
    assert client.get(URL.format(code="sipas", number=99)).status_code == 404
    assert client.get(URL.format(code="nope", number=1)).status_code == 404
    assert client.get(URL.format(code="sipas", number=10**30)).status_code == 404
