"""A questionnaire version as an XLSForm (``survey``, ``choices``, ``settings`` sheets).

Each section is a ``begin group``/``end group`` (appearance ``field-list``: one screen, as
our web form shows a section per step) whose introduction is a ``note`` in front of its
questions. Types: scale → ``select_one`` with ``sipas_type`` ``scale`` and its bounds as a
constraint; single → ``select_one``; multiple → ``select_multiple`` (bounds on the number
chosen as ``count-selected``); yes/no → ``select_one`` of ``yes``/``no`` with
``sipas_type`` ``yesno``; number → ``integer`` (our numbers are whole); text →
``text`` (long text with appearance ``multiline``, a maximum length as ``string-length``);
date → ``date``. Display conditions become ``relevant``, scoring tags the ``sipas_*``
columns, and the indicator tree two sheets of our own that pyxform ignores.
Identical choice lists are written once and shared.
"""

from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook

from surveys.models import Indicator, PolicyGroup, Question, QuestionnaireVersion
from surveys.selectors import version_sections
from surveys.xlsform import common
from surveys.xlsform.common import number_text, translated, value_text, xml_name

Row = dict[str, str]

SURVEY_COLUMNS = [
    "type",
    "name",
    *(translated("label", lang) for lang in common.LANGUAGES),
    *(translated("hint", lang) for lang in common.LANGUAGES),
    *common.SURVEY_RULE_COLUMNS,
]
CHOICES_COLUMNS = ["list_name", "name", *(translated("label", lang) for lang in common.LANGUAGES)]
INDICATORS_SHEET_COLUMNS = [
    *common.INDICATORS_COLUMNS,
    *(translated("label", lang) for lang in common.LANGUAGES),
]
POLICY_GROUPS_COLUMNS = ["code", *(translated("label", lang) for lang in common.LANGUAGES)]

SHEET_COLUMNS = {
    common.SURVEY: SURVEY_COLUMNS,
    common.CHOICES: CHOICES_COLUMNS,
    common.SETTINGS: list(common.SETTINGS_COLUMNS),
    common.INDICATORS: INDICATORS_SHEET_COLUMNS,
    common.POLICY_GROUPS: POLICY_GROUPS_COLUMNS,
}


def _labels(obj: object, field: str, column: str = "label") -> Row:
    return {translated(column, lang): getattr(obj, f"{field}_{lang}") for lang in common.LANGUAGES}


def _bounds(subject: str, low: object, high: object) -> str:
    parts = []
    if low is not None:
        parts.append(f"{subject} >= {number_text(low)}")  # type: ignore[arg-type]
    if high is not None:
        parts.append(f"{subject} <= {number_text(high)}")  # type: ignore[arg-type]
    return " and ".join(parts)


def _constraint(question: Question) -> str:
    match question.type:
        case Question.Type.SCALE | Question.Type.NUMBER:
            return _bounds(".", question.min_value, question.max_value)
        case Question.Type.MULTIPLE:
            return _bounds("count-selected(.)", question.min_value, question.max_value)
        case Question.Type.TEXT | Question.Type.LONGTEXT:
            if question.max_length is not None:
                return f"string-length(.) <= {question.max_length}"
    return ""


def _relevant(question: Question) -> str:
    condition = question.show_if_question
    if condition is None:
        return ""
    name = xml_name(condition.code)
    terms = []
    for value in question.show_if_values:
        text = value_text(condition.type, value)
        # XPath has no escapes: a value holding ' is quoted with " (both: " dropped).
        quoted = f"'{text}'" if "'" not in text else '"{}"'.format(text.replace('"', ""))
        if condition.type == Question.Type.MULTIPLE:
            terms.append(f"selected(${{{name}}}, {quoted})")
        else:
            terms.append(f"${{{name}}} = {quoted}")
    return " or ".join(terms)


def _type(question: Question, list_name: str) -> tuple[str, str, str]:
    """(XLSForm type, appearance, sipas_type) of a question."""
    match question.type:
        case Question.Type.SCALE:
            return f"select_one {list_name}", "", "scale"
        case Question.Type.YESNO:
            return f"select_one {common.YESNO_LIST}", "", "yesno"
        case Question.Type.SINGLE:
            return f"select_one {list_name}", "", ""
        case Question.Type.MULTIPLE:
            return f"select_multiple {list_name}", "", ""
        case Question.Type.NUMBER:
            return "integer", "", ""
        case Question.Type.LONGTEXT:
            return "text", "multiline", ""
        case Question.Type.DATE:
            return "date", "", ""
    return "text", "", ""


def _indicator_rows(version: QuestionnaireVersion) -> list[Row]:
    """The indicator tree, parents before children, siblings in order."""
    nodes = list(
        Indicator.objects.filter(version=version)
        .select_related("parent", "policy_group")
        .order_by("position", "code")
    )
    children: dict[int | None, list[Indicator]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node)
    rows: list[Row] = []

    def walk(parent_id: int | None) -> None:
        for node in children.get(parent_id, []):
            rows.append(
                {
                    "code": node.code,
                    "parent": node.parent.code if node.parent else "",
                    "kind": node.kind,
                    "aggregation": node.aggregation,
                    "weight": number_text(node.weight),
                    "policy_group": node.policy_group.code if node.policy_group else "",
                    **_labels(node, "name"),
                }
            )
            walk(node.pk)

    walk(None)
    return rows


def xlsform_sheets(version: QuestionnaireVersion) -> dict[str, list[Row]]:
    """The XLSForm of a version: sheet name → rows, each a column → text mapping.

    Sheets ``survey``, ``choices``, ``settings``, ``sipas_indicators`` and
    ``sipas_policy_groups``; every row of a sheet has every column of that sheet (empty
    text where there is nothing), in the order of ``SHEET_COLUMNS``.
    """
    questionnaire = version.questionnaire
    sections = list(version_sections(version_id=version.pk))
    names = {xml_name(q.code) for s in sections for q in s.questions.all()}
    names |= {xml_name(s.code) for s in sections}

    survey: list[Row] = []
    choices: list[Row] = []
    lists: dict[tuple[tuple[str, str, str], ...], str] = {}
    list_names: set[str] = set()
    uses_yesno = False

    for section in sections:
        group = xml_name(section.code)
        survey.append(
            {
                "type": "begin group",
                "name": group,
                **_labels(section, "title"),
                "appearance": "field-list",
            }
        )
        if section.intro_vi or section.intro_en:
            note = f"{group}_intro"
            while note in names:
                note += "_"
            names.add(note)
            survey.append({"type": "note", "name": note, **_labels(section, "intro")})
        for question in section.questions.all():
            list_name = ""
            if question.type in Question.CHOICE_TYPES:
                content = tuple((c.code, c.label_vi, c.label_en) for c in question.choices.all())
                list_name = lists.get(content, "")
                if not list_name:
                    list_name = question.code
                    while list_name in list_names or list_name == common.YESNO_LIST:
                        list_name += "_"
                    list_names.add(list_name)
                    lists[content] = list_name
                    choices.extend(
                        {
                            "list_name": list_name,
                            "name": code,
                            translated("label", "vi"): label_vi,
                            translated("label", "en"): label_en,
                        }
                        for code, label_vi, label_en in content
                    )
            uses_yesno |= question.type == Question.Type.YESNO
            kind, appearance, sipas_type = _type(question, list_name)
            survey.append(
                {
                    "type": kind,
                    "name": xml_name(question.code),
                    **_labels(question, "label"),
                    **_labels(question, "help", "hint"),
                    "required": common.YES if question.required else "",
                    "relevant": _relevant(question),
                    "constraint": _constraint(question),
                    "appearance": appearance,
                    common.SIPAS_TYPE: sipas_type,
                    common.SIPAS_INDICATOR: question.indicator.code if question.indicator else "",
                    common.SIPAS_SATISFIED: " ".join(
                        value_text(question.type, v) for v in question.satisfied_values
                    ),
                    common.SIPAS_EXCLUDED: common.YES if question.excluded_from_indices else "",
                    common.SIPAS_PERSONAL_DATA: common.YES if question.personal_data else "",
                }
            )
        survey.append({"type": "end group"})

    if uses_yesno:
        for value in (common.YES, common.NO):
            label_vi, label_en = common.YESNO_LABELS[value]
            choices.append(
                {
                    "list_name": common.YESNO_LIST,
                    "name": value,
                    translated("label", "vi"): label_vi,
                    translated("label", "en"): label_en,
                }
            )

    settings = {
        "form_id": questionnaire.code,
        "form_title": questionnaire.title_vi,
        "version": str(version.number),
        "default_language": common.DEFAULT_LANGUAGE,
        common.SIPAS_LABEL: version.label,
        common.SIPAS_TITLE_EN: questionnaire.title_en,
    }
    groups = [
        {"code": g.code, **_labels(g, "name")}
        for g in PolicyGroup.objects.filter(version=version).order_by("position", "code")
    ]
    sheets = {
        common.SURVEY: survey,
        common.CHOICES: choices,
        common.SETTINGS: [settings],
        common.INDICATORS: _indicator_rows(version),
        common.POLICY_GROUPS: groups,
    }
    return {
        sheet: [{column: row.get(column, "") for column in SHEET_COLUMNS[sheet]} for row in rows]
        for sheet, rows in sheets.items()
    }


def export_xlsform(version: QuestionnaireVersion) -> bytes:
    """The version's XLSForm as an ``.xlsx`` file."""
    workbook = Workbook(write_only=True)
    for sheet, rows in xlsform_sheets(version).items():
        worksheet = workbook.create_sheet(sheet)
        worksheet.append(SHEET_COLUMNS[sheet])
        for row in rows:
            worksheet.append([row[column] or None for column in SHEET_COLUMNS[sheet]])
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()
