"""XLSForm import from hand-written workbooks (written here with openpyxl, as a survey team
would in Excel, not by our exporter): each supported feature, each refused one with its
sheet, row and column, both languages, and hostile files."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import translation

from surveys.models import Indicator, Question, Questionnaire, QuestionnaireVersion
from surveys.xlsform import XlsformRefused, import_xlsform
from surveys.xlsform.workbook import MAX_COLUMNS, MAX_ROWS
from tests.support.xlsform import EN, VI, shared_strings_workbook, with_raw_cell_text, workbook

HINT_VI, HINT_EN = "hint::Tiếng Việt (vi)", "hint::English (en)"
SURVEY_HEADER = [
    "type",
    "name",
    VI,
    EN,
    HINT_VI,
    HINT_EN,
    "required",
    "relevant",
    "constraint",
    "constraint_message",
    "appearance",
    "sipas_type",
    "sipas_indicator",
    "sipas_satisfied",
    "sipas_excluded",
    "sipas_personal_data",
]


def survey_row(kind: str, name: str = "", vi: str = "", en: str = "", **columns: Any) -> list[Any]:
    row = dict.fromkeys(SURVEY_HEADER)
    row.update({"type": kind, "name": name or None, VI: vi or None, EN: en or None})
    for key, value in columns.items():
        row[{"hint_vi": HINT_VI, "hint_en": HINT_EN}.get(key, key)] = value
    return [row[column] for column in SURVEY_HEADER]


CHOICES = [
    ["list_name", "name", VI, EN],
    ["yes_no", "yes", "Có", "Yes"],
    ["yes_no", "no", "Không", "No"],
    ["agree5", 1, "Rất không hài lòng", "Very dissatisfied"],
    ["agree5", 2, "Không hài lòng", "Dissatisfied"],
    ["agree5", 3, "Bình thường", "Neutral"],
    ["agree5", 4, "Hài lòng", "Satisfied"],
    ["agree5", 5, "Rất hài lòng", "Very satisfied"],
    ["channels", "web", "Trang web", "Website"],
    ["channels", "office", "Bộ phận một cửa", "One-stop office"],
    ["channels", "other", "Khác", "Other"],
    ["gender", "f", "Nữ", "Female"],
    ["gender", "m", "Nam", "Male"],
    ["unused", "x", "X", "X"],
]
SETTINGS = [
    ["form_id", "form_title", "version", "default_language"],
    ["ho-gia-dinh", "Khảo sát hộ gia đình", "2024-05", "Tiếng Việt (vi)"],
]


def full_form() -> bytes:
    """Every supported feature, in the way survey teams write them."""
    survey = [
        SURVEY_HEADER,
        survey_row("begin group", "intro", "Giới thiệu", "Introduction", appearance="field-list"),
        survey_row("note", "welcome", "Xin chào ông/bà.", "Hello."),
        survey_row(
            "select_one yes_no",
            "used",
            "Ông/bà có dùng dịch vụ không?",
            "Did you use the service?",
            required="yes",
            sipas_type="yesno",
            sipas_excluded="yes",
        ),
        survey_row(
            "select_one agree5",
            "sat",
            "Mức độ hài lòng?",
            "How satisfied?",
            hint_vi="Chọn một mức.",
            hint_en="Choose one level.",
            relevant="${used} = 'yes'",
            appearance="likert",
            sipas_type="scale",
            sipas_indicator="SAT",
            sipas_satisfied="4 5",
        ),
        survey_row(
            "select_multiple channels",
            "ch",
            "Qua kênh nào?",
            "Through which channels?",
            constraint="count-selected(.) >= 1 and count-selected(.) <= 2",
            constraint_message="Chọn 1 hoặc 2.",
        ),
        survey_row(
            "text",
            "ch_other",
            "Kênh khác",
            "Other channel",
            relevant="selected(${ch}, 'other') or selected(${ch}, 'web')",
        ),
        survey_row("end group"),
        survey_row("begin group", "about", "Về ông/bà", "About you"),
        survey_row(
            "integer", "age", "Tuổi", "Age", required=True, constraint=". >= 18 and . <= 120"
        ),
        survey_row("decimal", "income", "Thu nhập", "Income", constraint=". >= 0.5"),
        survey_row("date", "day", "Ngày làm thủ tục", "Day of the procedure"),
        survey_row(
            "text",
            "comments",
            "Góp ý",
            "Comments",
            appearance="multiline",
            constraint="string-length(.) <= 2000",
        ),
        survey_row("select one gender", "sex", "Giới tính", "Sex", appearance="minimal"),
        survey_row(
            "select_one yes_no",
            "consent",
            "Đồng ý để lại số điện thoại?",
            "Agree to leave a phone number?",
            sipas_type="yesno",
        ),
        survey_row(
            "text",
            "phone",
            "Số điện thoại",
            "Phone number",
            relevant='${consent} = "yes"',
            sipas_personal_data="yes",
            sipas_excluded="yes",
        ),
        survey_row("end group"),
        survey_row("integer", "household", "Số người trong hộ", "People in the household"),
    ]
    return workbook({"survey": survey, "choices": CHOICES, "settings": SETTINGS})


def problems_of(content: bytes) -> set[tuple[str, int | None, str | None]]:
    with pytest.raises(XlsformRefused) as refused:
        import_xlsform(content)
    return {(p.sheet, p.row, p.column) for p in refused.value.problems}


@pytest.mark.django_db
def test_every_supported_feature_becomes_the_draft_it_describes() -> None:
    imported = import_xlsform(full_form())
    version = imported.version
    assert imported.created_questionnaire
    assert version.status == QuestionnaireVersion.Status.DRAFT
    assert (version.questionnaire.code, version.questionnaire.title_vi) == (
        "ho-gia-dinh",
        "Khảo sát hộ gia đình",
    )
    assert (version.number, version.label) == (1, "2024-05")

    sections = list(version.sections.order_by("position"))
    assert [(s.code, s.title_vi, s.title_en) for s in sections] == [
        ("intro", "Giới thiệu", "Introduction"),
        ("about", "Về ông/bà", "About you"),
        ("section_3", "Khảo sát hộ gia đình", ""),  # the questions outside any group
    ]
    assert (sections[0].intro_vi, sections[0].intro_en) == ("Xin chào ông/bà.", "Hello.")
    questions = {q.code: q for q in version.questions.all()}
    assert [q.code for q in sections[0].questions.order_by("position")] == [
        "used",
        "sat",
        "ch",
        "ch_other",
    ]
    assert "welcome" not in questions  # a note is shown, not answered

    used, sat, ch, other = (questions[c] for c in ("used", "sat", "ch", "ch_other"))
    assert (used.type, used.required, used.excluded_from_indices) == ("yesno", True, True)
    assert list(used.choices.all()) == []
    assert (sat.type, sat.min_value, sat.max_value) == ("scale", 1, 5)
    assert (sat.label_vi, sat.label_en) == ("Mức độ hài lòng?", "How satisfied?")
    assert (sat.help_vi, sat.help_en) == ("Chọn một mức.", "Choose one level.")
    assert [(c.code, c.label_vi, c.label_en) for c in sat.choices.order_by("position")][3:] == [
        ("4", "Hài lòng", "Satisfied"),
        ("5", "Rất hài lòng", "Very satisfied"),
    ]
    assert (sat.show_if_question, sat.show_if_values) == (used, [True])
    assert sat.indicator.code == "SAT"
    assert sat.satisfied_values == [4, 5]
    assert (sat.indicator.kind, sat.indicator.aggregation) == ("item", "share")
    assert sat.indicator.name_en == "How satisfied?"
    assert (ch.type, ch.min_value, ch.max_value) == ("multiple", 1, 2)
    assert [c.code for c in ch.choices.order_by("position")] == ["web", "office", "other"]
    assert (other.type, other.show_if_question, other.show_if_values) == (
        "text",
        ch,
        ["other", "web"],
    )

    age, income, day, comments, sex, phone = (
        questions[c] for c in ("age", "income", "day", "comments", "sex", "phone")
    )
    assert (age.type, age.required, age.min_value, age.max_value) == ("number", True, 18, 120)
    assert (income.type, income.min_value, income.max_value) == ("number", Decimal("0.5"), None)
    assert day.type == "date"
    assert (comments.type, comments.max_length) == ("longtext", 2000)
    assert (sex.type, [c.code for c in sex.choices.all()]) == ("single", ["f", "m"])
    assert phone.personal_data and phone.show_if_values == [True]
    assert questions["household"].section.code == "section_3"
    assert Indicator.objects.filter(version=version).count() == 1


@pytest.mark.django_db
def test_a_form_in_one_language_uses_plain_label_and_hint_as_vietnamese() -> None:
    content = workbook(
        {
            "survey": [
                ["type", "name", "label", "hint"],
                ["integer", "n", "Số lần", "Trong năm qua"],
                ["select_one ab", "ab", "A hay B", None],
            ],
            "choices": [["list_name", "name", "label"], ["ab", "a", "A"], ["ab", "b", "B"]],
            "settings": [["form_id"], ["mot-ngon-ngu"]],
        }
    )
    version = import_xlsform(content).version
    n = version.questions.get(code="n")
    assert (n.label_vi, n.label_en, n.help_vi, n.help_en) == ("Số lần", "", "Trong năm qua", "")
    assert version.questionnaire.title_vi == "mot-ngon-ngu"
    assert [c.label_vi for c in version.questions.get(code="ab").choices.all()] == ["A", "B"]


@pytest.mark.django_db
def test_a_form_of_an_existing_questionnaire_is_its_next_draft(sipas: Any) -> None:
    content = workbook(
        {
            "survey": [["type", "name", VI, EN], ["text", "note_1", "Ghi chú", "Remark"]],
            "settings": [["form_id", "form_title"], ["sipas", "Another title, not applied"]],
        }
    )
    imported = import_xlsform(content)
    assert not imported.created_questionnaire
    assert imported.version.number == sipas.number + 1
    assert imported.version.questionnaire.title_vi == sipas.questionnaire.title_vi


@pytest.mark.django_db
def test_each_unsupported_feature_is_refused_with_its_sheet_row_and_column() -> None:
    survey = [
        [*SURVEY_HEADER, "calculation", "choice_filter", "label::Français (fr)"],
        survey_row("begin repeat", "members", "Thành viên") + [None] * 3,  # 2
        survey_row("text", "member", "Tên") + [None] * 3,  # 3
        survey_row("end repeat") + [None] * 3,  # 4
        [*survey_row("calculate", "total"), "1 + 1", None, None],  # 5
        survey_row("integer", "a", "A", relevant="${a} > 3") + [None] * 3,  # 6: self, other op
        survey_row("integer", "b", "B", constraint="regex(., '^[0-9]+$')") + [None] * 3,  # 7
        [*survey_row("select_one gender", "c", "C"), None, "sex = 'f'", None],  # 8
        survey_row("select_one gender or_other", "d", "D") + [None] * 3,  # 9
        survey_row("geopoint", "where", "Ở đâu") + [None] * 3,  # 10
        [*survey_row("text", "e", "E"), None, None, "Quelle?"],  # 11
        survey_row("begin group", "g1", "G1") + [None] * 3,  # 12
        survey_row("begin group", "g2", "G2") + [None] * 3,  # 13: nested
        survey_row("end group") + [None] * 3,  # 14
        survey_row("end group") + [None] * 3,  # 15
        survey_row("text", "f", "F", relevant="${later} = 'x'") + [None] * 3,  # 16
        survey_row("select_multiple gender", "m", "M") + [None] * 3,  # 17
        survey_row("text", "h", "H", relevant="${m} = 'f'") + [None] * 3,  # 18: = on multiple
        survey_row("text", "i", "I", relevant="${c} = 'z'") + [None] * 3,  # 19: no such choice
        survey_row("text", "j", "J", relevant="${c} = 'f' or ${m} = 'f'") + [None] * 3,  # 20
        survey_row("select_one gender", "k", "K", sipas_type="yesno") + [None] * 3,  # 21
        survey_row("select_one nolist", "l", "L") + [None] * 3,  # 22
        survey_row("date", "n", "N", constraint=". >= 2020") + [None] * 3,  # 23
        survey_row("integer", "o", "O", constraint=". >= 1e400") + [None] * 3,  # 24
        survey_row("integer", "p", "P", constraint=". >= 99999999999999999999") + [None] * 3,
        survey_row("text", "later", "Later", required="maybe") + [None] * 3,  # 26
        survey_row("text", "a", "Again") + [None] * 3,  # 27: name used twice
        survey_row("integer", "q", "Q", sipas_indicator="IND", sipas_excluded="yes")
        + [None] * 3,  # 28
    ]
    choices = [
        ["list_name", "name", VI, "media::image"],
        ["gender", "f", "Nữ", None],
        ["gender", "m", "Nam", "m.png"],  # 3: media
        ["gender", "f", "Nữ lần nữa", None],  # 4: twice
        ["other", "bad name", "X", None],  # 5: not a code
    ]
    content = workbook(
        {
            "survey": survey,
            "choices": choices,
            "settings": SETTINGS,
            "external_choices": [["list_name", "name"], ["x", "y"]],
        }
    )
    before = (Questionnaire.objects.count(), QuestionnaireVersion.objects.count())
    found = problems_of(content)
    assert (Questionnaire.objects.count(), QuestionnaireVersion.objects.count()) == before

    assert found == {
        ("survey", 2, "type"),  # begin repeat
        ("survey", 4, "type"),  # end repeat
        ("survey", 5, "type"),  # calculate
        ("survey", 5, "calculation"),
        ("survey", 6, "relevant"),
        ("survey", 7, "constraint"),
        ("survey", 8, "choice_filter"),
        ("survey", 9, "type"),
        ("survey", 10, "type"),
        ("survey", 11, "label::Français (fr)"),
        ("survey", 13, "type"),
        ("survey", 15, "type"),  # closes no group (the nested one was refused)
        ("survey", 16, "relevant"),
        ("survey", 18, "relevant"),
        ("survey", 19, "relevant"),
        ("survey", 20, "relevant"),
        ("survey", 21, "type"),
        ("survey", 22, "type"),
        ("survey", 23, "constraint"),
        ("survey", 24, "constraint"),
        ("survey", 25, "constraint"),
        ("survey", 26, "required"),
        ("survey", 27, "name"),
        ("survey", 28, "sipas_indicator"),  # excluded, and feeds an indicator
        ("survey", 28, "sipas_satisfied"),  # an indicator without satisfied values
        ("choices", 3, "media::image"),
        ("choices", 4, "name"),
        ("choices", 5, "name"),
        ("external_choices", None, None),
    }


@pytest.mark.django_db
def test_problems_found_on_the_whole_version_name_their_rows() -> None:
    """Rules checked on the stored draft (``version_errors``): scoring a text, personal data
    without a consent question, an item indicator no question feeds."""
    content = workbook(
        {
            "survey": [
                ["type", "name", VI, "sipas_indicator", "sipas_satisfied", "sipas_personal_data"],
                ["text", "t", "Văn bản", "I1", "tốt", None],
                ["text", "phone", "Điện thoại", None, None, "yes"],
                ["select_one ab", "single", "Một lựa chọn", None, None, None],
            ],
            "choices": [["list_name", "name", VI], ["ab", "a", "A"]],
            "settings": [["form_id"], ["kiem-tra"]],
            "sipas_indicators": [
                ["code", "parent", "kind", "aggregation", VI],
                ["ROOT", None, "index", "mean", "Chỉ số"],
                ["I1", "ROOT", "item", "share", "Mục 1"],
                ["I2", "ROOT", "item", "share", "Mục 2"],
            ],
        }
    )
    assert problems_of(content) == {
        ("survey", 2, None),
        ("survey", 3, None),
        ("survey", 4, None),  # one choice only
        ("sipas_indicators", 4, None),
    }
    assert not Questionnaire.objects.filter(code="kiem-tra").exists()


@pytest.mark.django_db
def test_indicator_sheets_are_checked_row_by_row() -> None:
    content = workbook(
        {
            "survey": [["type", "name", VI], ["integer", "x", "X"]],
            "settings": [["form_id"], ["chi-so"]],
            "sipas_indicators": [
                ["code", "parent", "kind", "aggregation", "weight", "policy_group", VI],
                ["A", "B", "field", "mean", 1, None, "A"],  # parent not earlier
                ["B", None, "sector", "mean", 1, None, "B"],  # kind
                ["C", None, "item", "median", -1, "G9", None],  # 4 problems
            ],
            "sipas_policy_groups": [["code", VI], ["G1", "Nhóm 1"], ["G1", "Again"]],
        }
    )
    assert problems_of(content) == {
        ("sipas_indicators", 2, "parent"),
        ("sipas_indicators", 3, "kind"),
        ("sipas_indicators", 4, "aggregation"),
        ("sipas_indicators", 4, "weight"),
        ("sipas_indicators", 4, "policy_group"),
        ("sipas_indicators", 4, VI),
        ("sipas_policy_groups", 3, "code"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sheets", "expected"),
    [
        ({"survey": [["type", "name", "label"], ["text", "t", "T"]]}, {("settings", None, None)}),
        ({"settings": [["form_id"], ["x"]]}, {("survey", None, None)}),
        (
            {"survey": [["type", "name", "label"]], "settings": [["form_title"], ["Tên"]]},
            {("settings", 2, "form_id"), ("survey", None, None)},
        ),
        (
            {
                "survey": [["type", "name", "label"], ["text", "t", "T"]],
                "settings": [["form_id", "public_key"], ["bad id", "abc"]],
            },
            {("settings", 2, "form_id"), ("settings", 2, "public_key")},
        ),
    ],
)
def test_missing_sheets_and_bad_settings(sheets: dict[str, Any], expected: set[Any]) -> None:
    assert problems_of(workbook(sheets)) == expected


@pytest.mark.django_db
def test_a_file_that_is_no_workbook_is_refused() -> None:
    for content in (b"", b"type,name,label\ntext,t,T\n", b"PK\x03\x04 not really a zip"):
        with translation.override("en"), pytest.raises(XlsformRefused) as refused:
            import_xlsform(content)
        assert [str(p) for p in refused.value.problems] == [
            "The file is not an Excel workbook (.xlsx)."
        ]


@pytest.mark.django_db
def test_sheets_beyond_the_row_and_column_limits_are_refused() -> None:
    rows = [["type", "name", "label"]] + [["text", f"t{n}", "T"] for n in range(MAX_ROWS)]
    assert problems_of(workbook({"survey": rows, "settings": [["form_id"], ["x"]]})) == {
        ("survey", MAX_ROWS + 1, None)
    }
    wide = [["type", "name", "label"] + [f"c{n}" for n in range(MAX_COLUMNS)]]
    found = problems_of(workbook({"survey": wide, "settings": [["form_id"], ["x"]]}))
    assert ("survey", 1, None) in found


HOSTILE_TEXTS = ["&#0;", "&#xD800;", "\x00", "\udcff", "&#x1;"]


@pytest.mark.django_db
@pytest.mark.parametrize("raw", HOSTILE_TEXTS)
def test_unreadable_characters_in_a_cell_are_refused_naming_it(raw: str) -> None:
    """A NUL, a lone surrogate or a control character in a cell (as a character reference
    or raw in the file, which XML cannot carry) is refused at its sheet, row and column."""
    content = workbook(
        {
            "survey": [["type", "name", VI, EN], ["text", "t", "Câu hỏi", "MARKER-EN"]],
            "settings": [["form_id"], ["x"]],
        }
    )
    encoded = raw.encode("utf-8", errors="surrogatepass")
    hostile = with_raw_cell_text(content, "MARKER-EN", "Question" + encoded.decode("latin-1"))
    with pytest.raises(XlsformRefused) as refused:
        import_xlsform(hostile)
    [problem] = refused.value.problems
    assert (problem.sheet, problem.row, problem.column) == ("survey", 2, EN)
    assert "NUL" in problem.message
    assert not Questionnaire.objects.filter(code="x").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["&#0;", "&#xD800;"])
def test_unreadable_shared_strings_are_refused_at_each_cell_using_them(raw: str) -> None:
    """Excel keeps text in a shared string table: a bad string is named at every cell."""
    sheets = {
        "survey": [["type", "name", VI, EN], ["text", "t", "Câu hỏi", "BAD"], ["text", "u", "BAD"]],
        "choices": [["list_name", "name", VI]],
        "settings": [["form_id"], ["x"]],
    }
    hostile = shared_strings_workbook(sheets, {"BAD": f"Question{raw}"})
    assert {(p.sheet, p.row, p.column) for p in _problems(hostile)} == {
        ("survey", 2, "D"),
        ("survey", 3, "C"),
    }
    clean = shared_strings_workbook(sheets, {})
    assert [q.code for q in import_xlsform(clean).version.questions.all()] == ["t", "u"]


def _problems(content: bytes) -> list[Any]:
    with pytest.raises(XlsformRefused) as refused:
        import_xlsform(content)
    return refused.value.problems


@pytest.mark.django_db
def test_a_declared_sheet_size_of_a_million_rows_is_not_believed() -> None:
    content = workbook(
        {"survey": [["type", "name", VI], ["text", "t", "T"]], "settings": [["form_id"], ["x"]]}
    )
    hostile = with_raw_cell_text(
        content, '<dimension ref="A1:C2" />', '<dimension ref="A1:XFD1048576" />'
    )
    assert hostile != content
    version = import_xlsform(hostile).version
    assert [q.code for q in version.questions.all()] == ["t"]


@pytest.mark.django_db
def test_a_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    import zipfile
    from io import BytesIO

    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (60 * 1024 * 1024))
    with translation.override("en"), pytest.raises(XlsformRefused) as refused:
        import_xlsform(out.getvalue())
    assert "unpacks to more than" in str(refused.value)


def test_question_types_are_those_of_the_model() -> None:
    assert {"scale", "single", "multiple", "yesno", "number", "text", "longtext", "date"} == set(
        Question.Type.values
    )
