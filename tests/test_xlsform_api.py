"""XLSForm import through its three doors: the API (who may, what it answers), the admin
upload page and ``manage.py import_xlsform``; and a property: whatever a cell holds, the
API answers 201 or a 400 naming the cell, never a server error, and a 400 stores nothing."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import translation
from hypothesis import example, given
from hypothesis import strategies as st

from surveys.models import Questionnaire, QuestionnaireVersion
from tests.support.hostile_input import ANY_CHARACTER, PROPERTY
from tests.support.xlsform import EN, VI, with_raw_cell_text, workbook

URL = "/api/v1/questionnaires/xlsform/"
PASSWORD = "a-long-password-1"


def small_form(code: str = "nho", label_en: Any = "Satisfied?") -> bytes:
    return workbook(
        {
            "survey": [
                ["type", "name", VI, EN, "relevant", "sipas_type"],
                ["select_one yn", "used", "Đã dùng?", "Used?", None, "yesno"],
                ["select_one s3", "sat", "Hài lòng?", label_en, "${used} = 'yes'", "scale"],
            ],
            "choices": [
                ["list_name", "name", VI, EN],
                ["yn", "yes", "Có", "Yes"],
                ["yn", "no", "Không", "No"],
                ["s3", 1, "Không", "No"],
                ["s3", 2, "Vừa", "So so"],
                ["s3", 3, "Có", "Yes"],
            ],
            "settings": [["form_id", "form_title"], [code, "Phiếu nhỏ"]],
        }
    )


def make_user(username: str, *, staff: bool, perms: tuple[str, ...] = ()) -> Any:
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    return user


def importer() -> Any:
    return make_user(
        "designer", staff=True, perms=("add_questionnaire", "add_questionnaireversion")
    )


def post(client: Client, content: bytes, name: str = "form.xlsx", language: str = "en") -> Any:
    return client.post(
        URL, {"file": SimpleUploadedFile(name, content)}, HTTP_ACCEPT_LANGUAGE=language
    )


def stored() -> tuple[int, int]:
    return Questionnaire.objects.count(), QuestionnaireVersion.objects.count()


@pytest.mark.django_db
def test_only_staff_who_may_add_questionnaires_import() -> None:
    assert post(Client(), small_form()).status_code == 401
    cases = [
        (make_user("citizen", staff=False), 403),
        (make_user("staff", staff=True), 403),
        (make_user("half", staff=True, perms=("add_questionnaireversion",)), 403),
        (
            make_user(
                "not-staff", staff=False, perms=("add_questionnaire", "add_questionnaireversion")
            ),
            403,
        ),
    ]
    for user, expected in cases:
        client = Client()
        client.force_login(user)
        assert post(client, small_form()).status_code == expected, user.username
    assert stored() == (0, 0)

    client = Client()
    client.force_login(importer())
    response = post(client, small_form())
    assert response.status_code == 201
    assert response.json() == {"questionnaire": "nho", "version": 1, "status": "draft"}
    version = QuestionnaireVersion.objects.get(questionnaire__code="nho")
    assert version.status == "draft"
    assert version.questions.get(code="sat").show_if_values == [True]
    # The same questionnaire again: its next draft.
    assert post(client, small_form()).json()["version"] == 2


@pytest.mark.django_db
def test_a_token_of_such_staff_imports_too() -> None:
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=importer())
    response = Client().post(
        URL,
        {"file": SimpleUploadedFile("f.xlsx", small_form())},
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 201


@pytest.mark.django_db
def test_a_refused_form_answers_400_listing_every_problem_and_stores_nothing() -> None:
    client = Client()
    client.force_login(importer())
    content = workbook(
        {
            "survey": [
                ["type", "name", VI, "relevant"],
                ["begin repeat", "r", "Lặp"],
                ["integer", "n", "Số", "${n} > 2"],
                ["end repeat"],
            ],
            "settings": [["form_id"], ["bi-tu-choi"]],
        }
    )
    response = post(client, content)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_xlsform"
    assert body["errors"] == [
        {"sheet": "survey", "row": 2, "column": "type", "message": "Repeats are not supported."},
        {
            "sheet": "survey",
            "row": 3,
            "column": "relevant",
            "message": body["errors"][1]["message"],
        },
        {"sheet": "survey", "row": 4, "column": "type", "message": "Repeats are not supported."},
    ]
    assert body["fields"]["file"][0] == "survey, row 2, column type: Repeats are not supported."
    assert stored() == (0, 0)
    # In Vietnamese (the default language) too.
    body = post(client, content, language="vi").json()
    assert body["detail"] == "XLSForm chưa được nhập: có 3 lỗi."
    assert body["fields"]["file"][0] == (
        "survey, dòng 2, cột type: Không hỗ trợ nhóm lặp (repeat)."
    )

    for bad in (b"not a workbook", b""):
        response = post(client, bad)
        assert response.status_code == 400
        assert response.json()["fields"]["file"]
    assert client.post(URL, {}).status_code == 400  # no file
    assert stored() == (0, 0)


@pytest.mark.django_db
def test_an_oversized_upload_is_refused_before_it_is_read(settings: Any) -> None:
    from surveys.xlsform import MAX_FILE_BYTES

    client = Client()
    client.force_login(importer())
    response = post(client, b"x" * (MAX_FILE_BYTES + 1))
    assert response.status_code == 400
    assert "MB" in response.json()["fields"]["file"][0]


@pytest.mark.django_db
def test_admin_upload_page_imports_or_lists_the_problems() -> None:
    editor = make_user(
        "editor",
        staff=True,
        perms=(
            "add_questionnaire",
            "add_questionnaireversion",
            "view_questionnaireversion",
            "change_questionnaireversion",
        ),
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(editor)
    changelist = client.get("/admin/surveys/questionnaireversion/")
    assert changelist.status_code == 200
    page = "/admin/surveys/questionnaireversion/import-xlsform/"
    assert page.encode() in changelist.content

    assert client.get(page).status_code == 200
    bad = workbook(
        {
            "survey": [["type", "name", VI], ["calculate", "c", "C"], ["geopoint", "g", "G"]],
            "settings": [["form_id"], ["qua-admin"]],
        }
    )
    response = client.post(page, {"file": SimpleUploadedFile("bad.xlsx", bad)})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="xlsform-problems"' in text
    assert "<td>survey</td><td>2</td><td>type</td><td>Calculations are not supported.</td>" in text
    assert "<td>survey</td><td>3</td><td>type</td>" in text
    assert stored() == (0, 0)

    response = client.post(page, {"file": SimpleUploadedFile("ok.xlsx", small_form("qua-admin"))})
    version = QuestionnaireVersion.objects.get(questionnaire__code="qua-admin")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/surveys/questionnaireversion/{version.pk}/change/"
    assert version.status == "draft"
    # Its page links the XLSForm export.
    change = client.get(response["Location"])
    assert b"/api/v1/questionnaires/qua-admin/versions/1/xlsform.xlsx" in change.content


@pytest.mark.django_db
def test_admin_upload_page_needs_the_add_permissions() -> None:
    staff = make_user(
        "viewer",
        staff=True,
        perms=("view_questionnaireversion", "add_questionnaireversion"),
    )
    client = Client()
    client.force_login(staff)
    changelist = client.get("/admin/surveys/questionnaireversion/")
    assert changelist.status_code == 200
    assert b"import-xlsform" not in changelist.content
    page = "/admin/surveys/questionnaireversion/import-xlsform/"
    assert client.get(page).status_code == 403
    assert client.post(page, {"file": SimpleUploadedFile("f.xlsx", small_form())}).status_code == (
        403
    )
    assert stored() == (0, 0)


@pytest.mark.django_db
def test_the_command_imports_or_prints_every_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.xlsx"
    good.write_bytes(small_form("lenh"))
    out = io.StringIO()
    call_command("import_xlsform", str(good), stdout=out)
    assert "imported as draft version 1 of lenh (new questionnaire)" in out.getvalue()

    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(
        workbook(
            {
                "survey": [["type", "name", VI], ["calculate", "c", "C"], ["integer", "n", ""]],
                "settings": [["form_id"], ["lenh-2"]],
            }
        )
    )
    err = io.StringIO()
    with translation.override("en"), pytest.raises(CommandError, match="not imported, 2 problem"):
        call_command("import_xlsform", str(bad), stderr=err)
    assert err.getvalue().splitlines() == [
        "survey, row 2, column type: Calculations are not supported.",
        f"survey, row 3, column {VI}: Give the Vietnamese label.",
    ]
    assert not Questionnaire.objects.filter(code="lenh-2").exists()
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_xlsform", str(tmp_path / "missing.xlsx"))


# --- Property -------------------------------------------------------------------------------

TEXTS = st.text(ANY_CHARACTER, max_size=30) | st.sampled_from(
    ["ab\x00cd", "a\ud800b", "\udfff", "1e400", "NaN", "1" + "0" * 400, "${used} = 'yes'"]
)
NUMBERS = (
    st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from([10**400, -(10**400), 2**63, 2**53 + 1, math.inf, -math.inf])
)
# The cells of ``small_form`` a value may land in: (sheet, row, column), 1-based.
CELLS = st.sampled_from(
    [("survey", r, c) for r in (1, 2, 3) for c in range(1, 7)]
    + [("choices", r, c) for r in (1, 2, 4) for c in range(1, 5)]
    + [("settings", 2, c) for c in (1, 2)]
)


def with_cell(value: Any, where: tuple[str, int, int]) -> bytes:
    """``small_form`` with one cell replaced by ``value``, written into the XML itself: text
    openpyxl refuses to write (NUL, control characters, lone surrogates) as character
    references, numbers (even beyond a float) as numeric cells."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(small_form("tinh-chat")))
    sheet, row, column = where
    marker = "HYPOTHESIS-MARKER"
    book[sheet].cell(row, column).value = marker
    out = io.BytesIO()
    book.save(out)
    if isinstance(value, str):
        written = "".join(
            ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else f"&#{ord(ch)};"
            for ch in escape(value)
        )
        return with_raw_cell_text(out.getvalue(), marker, written.encode().decode("latin-1"))
    return with_raw_cell_text(
        out.getvalue(), f't="inlineStr"><is><t>{marker}</t></is>', f"><v>{value!r}</v>"
    )


@pytest.mark.django_db
@PROPERTY
@given(value=TEXTS | NUMBERS, where=CELLS)
@example(value="Câu\x00hỏi", where=("survey", 3, 4))
@example(value="\ud800", where=("choices", 2, 3))
@example(value=10**400, where=("choices", 4, 2))
@example(value=10**15, where=("choices", 4, 2))  # a scale point beyond the bounds' digits
@example(value="²", where=("choices", 4, 2))
@example(value=". >= 1e400", where=("survey", 3, 5))
def test_property_any_cell_gives_201_or_a_400_naming_it(
    value: Any, where: tuple[str, int, int]
) -> None:
    client = Client()
    user = get_user_model().objects.filter(username="designer").first() or importer()
    client.force_login(user)
    before = stored()
    response = post(client, with_cell(value, where))
    assert response.status_code in (201, 400), response.content[:500]
    if response.status_code == 400:
        assert stored() == before
        body = response.json()
        assert body["errors"] and body["fields"]["file"]
        unstorable = isinstance(value, str) and any(
            ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF for ch in value
        )
        if unstorable:
            sheet, row, _column = where
            assert any(e["sheet"] == sheet and e["row"] == row for e in body["errors"]), body
    else:
        assert stored()[1] == before[1] + 1
