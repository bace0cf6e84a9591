"""An XLSForm as a new draft questionnaire version, or every reason it cannot be one.

The workbook is read (``workbook.read_sheets``), turned into the questionnaire
description the YAML loader reads (``surveys.loaders``), and stored by the loader's
``_load_content`` in a new draft; the whole draft is then checked by ``version_errors``,
the rules a version must meet to be published. Problems of every stage are gathered, each
with its sheet, row and column, and the draft is kept only when there is none: otherwise
``XlsformRefused`` lists them all and nothing is stored.

What an XLSForm may hold is documented in docs/xlsform.md: groups (sections), the types
``select_one``, ``select_multiple``, ``integer``, ``decimal``, ``text``, ``date`` and
``note``, labels and hints in Vietnamese and English, ``required``, bounds as
``constraint``, display conditions as ``relevant`` on one earlier question, and our
``sipas_*`` columns and sheets for scoring. Anything else is refused.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from surveys.loaders import _load_content
from surveys.models import (
    Indicator,
    Question,
    Questionnaire,
    QuestionnaireVersion,
    code_validator,
)
from surveys.validation import version_errors
from surveys.xlsform.common import (
    CHOICES,
    INDICATORS,
    INDICATORS_COLUMNS,
    POLICY_GROUPS,
    SETTINGS,
    SETTINGS_COLUMNS,
    SIPAS_EXCLUDED,
    SIPAS_INDICATOR,
    SIPAS_LABEL,
    SIPAS_PERSONAL_DATA,
    SIPAS_SATISFIED,
    SIPAS_TITLE_EN,
    SIPAS_TYPE,
    SURVEY,
    SURVEY_RULE_COLUMNS,
    WHOLE_NUMBER,
    code_of,
    value_of,
)
from surveys.xlsform.workbook import Problem, Sheet, XlsformRefused, read_sheets

# Sheets of the XLSForm standard we do not support: refused when present.
UNSUPPORTED_SHEETS = ("external_choices", "entities")
CODE_MAX = 32  # codes of sections, questions, choices, indicators (surveys.models)
TITLE_MAX = 300  # section titles, choice labels, indicator names
GROUP_NAME_MAX = 200  # policy group names, questionnaire titles
LABEL_MAX = 64  # the version's label
BOUND_LIMIT = Decimal(10) ** 10  # min_value / max_value: 14 digits, 4 after the point
MAX_TEXT_LENGTH = 100_000

# constraint_message and required_message are read and not kept: our messages are our own.
SURVEY_TRANSLATABLE = frozenset({"label", "hint", "constraint_message", "required_message"})
SURVEY_COLUMNS = {"type", "name", *SURVEY_RULE_COLUMNS}
CHOICES_COLUMNS = {"list_name", "name"}
# pyxform's older names of the settings columns are read too.
SETTINGS_ALIASES = {*SETTINGS_COLUMNS, "id_string", "title"}
POLICY_GROUPS_COLUMNS = {"code"}
# Display hints of selects that change nothing in what is answered: accepted, not kept.
IGNORED_SELECT_APPEARANCES = {
    "minimal",
    "quick",
    "horizontal",
    "horizontal-compact",
    "likert",
    "compact",
    "columns",
    "columns-pack",
    "columns-flex",
    "autocomplete",
}
TRUE_WORDS = {"yes", "true", "true()", "1"}
FALSE_WORDS = {"no", "false", "false()", "0"}
LANGUAGE = re.compile(r"^(?:.*\()?\s*(?P<code>[A-Za-z-]+)\s*\)?$")

NUMBER = r"-?\d+(?:\.\d+)?"
BOUND = re.compile(
    rf"^\s*(?P<subject>\.|count-selected\(\s*\.\s*\))\s*(?P<op><=|>=)\s*(?P<n>{NUMBER})\s*$"
)
LENGTH = re.compile(r"^\s*string-length\(\s*\.\s*\)\s*<=\s*(?P<n>\d+)\s*$")
REFERENCE = r"\$\{\s*(?P<name>[A-Za-z_][\w.\-]*)\s*\}"
VALUE = rf"(?:'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<num>{NUMBER}))"
EQUALS = re.compile(rf"^\s*{REFERENCE}\s*=\s*{VALUE}\s*$")
SELECTED = re.compile(rf"^\s*selected\(\s*{REFERENCE}\s*,\s*{VALUE}\s*\)\s*$")
OR = re.compile(r"\s+or\s+")


@dataclass
class ParsedQuestion:
    """A question read from the survey sheet, with the row it came from."""

    row: int
    spec: dict[str, Any]
    list_name: str = ""


@dataclass
class Parse:
    """What the sheets say, gathered row by row, and the problems found."""

    problems: list[Problem] = field(default_factory=list)
    question_rows: dict[str, int] = field(default_factory=dict)
    indicator_rows: dict[str, int] = field(default_factory=dict)

    def add(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(sheet, row, column, message))


@dataclass(frozen=True)
class ImportedVersion:
    version: QuestionnaireVersion
    created_questionnaire: bool


# --- Columns and cells ----------------------------------------------------------------------


def _columns(
    sheet: Sheet, known: set[str], parse: Parse, translatable: frozenset[str] = frozenset({"label"})
) -> dict[str, str]:
    """Column name in the file → our key (``label:vi``, ``type``...), for the known ones.

    Translatable columns: ``label::Tiếng Việt (vi)``, ``label::vi`` or plain ``label``
    (Vietnamese, the default language). An unknown or unsupported column is refused when
    any row has something in it, at each such cell.
    """
    keys: dict[str, str] = {}
    seen: dict[str, str] = {}
    for column in sheet.columns:
        base, _sep, language = column.partition("::")
        base = base.strip().lower()
        key = None
        if base in translatable:
            match = LANGUAGE.match(language.strip()) if language else None
            code = match.group("code").lower() if match else ("vi" if not language else "")
            if code in ("vi", "en"):
                key = f"{base}:{code}"
        elif not language and base in known:
            key = base
        if key is None:
            continue
        if key in seen:
            message = _("The columns %(a)s and %(b)s say the same thing; keep one.") % {
                "a": seen[key],
                "b": column,
            }
            parse.add(sheet.name, 1, column, message)
            continue
        seen[key] = column
        keys[column] = key
    for number, values in sheet.rows:
        for column in values:
            if column not in keys:
                parse.add(sheet.name, number, column, _unsupported_column(column))
    return keys


def _unsupported_column(column: str) -> str:
    base = column.partition("::")[0].strip().lower()
    reasons = {
        "calculation": _("Calculations are not supported."),
        "choice_filter": _("Cascading selects (choice_filter) are not supported."),
        "repeat_count": _("Repeats are not supported."),
        "default": _("Default answers are not supported."),
        "read_only": _("Read-only questions are not supported."),
        "trigger": _("Triggers are not supported."),
    }
    if base in reasons:
        return reasons[base]
    if "::" in column and base in SURVEY_TRANSLATABLE:
        return _(
            "The column %(c)s is not supported: labels and hints are read in Vietnamese (vi) "
            "and English (en) only."
        ) % {"c": column}
    return _("The column %(c)s is not supported.") % {"c": column}


def _rows(sheet: Sheet, keys: dict[str, str]) -> list[tuple[int, dict[str, str]]]:
    """Rows with our keys; the file's column name of each key is in ``Columns``."""
    return [
        (number, {keys[c]: v for c, v in values.items() if c in keys})
        for number, values in sheet.rows
    ]


class Columns:
    """The file's own column name of each of our keys, for messages."""

    def __init__(self, keys: dict[str, str]) -> None:
        self._names = {key: column for column, key in keys.items()}

    def __call__(self, key: str) -> str:
        return self._names.get(key, key.replace(":", "::"))


def _flag(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS or not lowered:
        return False
    return None


def _code_problem(code: str) -> str | None:
    if len(code) > CODE_MAX:
        return _("%(code)s is longer than %(n)s characters.") % {"code": code, "n": CODE_MAX}
    try:
        code_validator(code)
    except ValidationError:
        return _(
            "%(code)s is not a valid code: use letters, digits, '_', '.' or '-', starting "
            "with a letter or digit."
        ) % {"code": code}
    return None


def _too_long(text: str, limit: int) -> str | None:
    if len(text) > limit:
        return _("The text is longer than %(n)s characters.") % {"n": limit}
    return None


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or abs(value) >= BOUND_LIMIT or -value.as_tuple().exponent > 4:
        return None
    return value


# --- Settings -------------------------------------------------------------------------------


def _settings(sheet: Sheet | None, parse: Parse) -> dict[str, str]:
    if sheet is None:
        parse.add(SETTINGS, None, None, _("The settings sheet is missing (it names the form_id)."))
        return {}
    keys = _columns(sheet, SETTINGS_ALIASES, parse, frozenset())
    names = Columns(keys)
    rows = _rows(sheet, keys)
    if not rows:
        parse.add(SETTINGS, 2, names("form_id"), _("Give the form_id: the questionnaire's code."))
        return {}
    for number, _values in rows[1:]:
        parse.add(SETTINGS, number, None, _("The settings sheet has one row under its header."))
    number, values = rows[0]
    if "form_id" in values and "id_string" in values:
        parse.add(SETTINGS, number, names("id_string"), _("Give form_id or id_string, not both."))
    values.setdefault("form_id", values.pop("id_string", ""))
    values.setdefault("form_title", values.pop("title", ""))
    code = values.get("form_id", "")
    if not code:
        parse.add(
            SETTINGS, number, names("form_id"), _("Give the form_id: the questionnaire's code.")
        )
    elif problem := _code_problem(code):
        parse.add(SETTINGS, number, names("form_id"), problem)
    for key, limit in (("form_title", GROUP_NAME_MAX), (SIPAS_TITLE_EN, GROUP_NAME_MAX)):
        if problem := _too_long(values.get(key, ""), limit):
            parse.add(SETTINGS, number, names(key), problem)
    label_key = SIPAS_LABEL if SIPAS_LABEL in keys.values() else "version"
    values["label"] = values.get(label_key, "")
    if problem := _too_long(values["label"], LABEL_MAX):
        parse.add(SETTINGS, number, names(label_key), problem)
    return values


# --- Choices --------------------------------------------------------------------------------


def _choices(sheet: Sheet | None, parse: Parse) -> dict[str, list[dict[str, Any]]]:
    lists: dict[str, list[dict[str, Any]]] = {}
    if sheet is None:
        return lists
    keys = _columns(sheet, CHOICES_COLUMNS, parse)
    names = Columns(keys)
    seen: dict[str, set[str]] = {}
    for number, values in _rows(sheet, keys):
        list_name, name = values.get("list_name", ""), values.get("name", "")
        if not list_name:
            parse.add(CHOICES, number, names("list_name"), _("Give the list_name."))
            continue
        if not name:
            parse.add(CHOICES, number, names("name"), _("Give the choice's name."))
            continue
        if problem := _code_problem(name):
            parse.add(CHOICES, number, names("name"), problem)
        if name in seen.setdefault(list_name, set()):
            message = _("The list %(list)s has the choice %(name)s twice.") % {
                "list": list_name,
                "name": name,
            }
            parse.add(CHOICES, number, names("name"), message)
        seen[list_name].add(name)
        label_vi, label_en = values.get("label:vi", ""), values.get("label:en", "")
        if not label_vi:
            parse.add(CHOICES, number, names("label:vi"), _("Give the Vietnamese label."))
        for key, text in (("label:vi", label_vi), ("label:en", label_en)):
            if problem := _too_long(text, TITLE_MAX):
                parse.add(CHOICES, number, names(key), problem)
        lists.setdefault(list_name, []).append(
            {"code": name, "label": {"vi": label_vi, "en": label_en}, "row": number}
        )
    return lists


# --- Indicators -----------------------------------------------------------------------------


def _policy_groups(sheet: Sheet | None, parse: Parse) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    if sheet is None:
        return groups
    keys = _columns(sheet, POLICY_GROUPS_COLUMNS, parse)
    names = Columns(keys)
    seen: set[str] = set()
    for number, values in _rows(sheet, keys):
        code = values.get("code", "")
        if not code or (problem := _code_problem(code)):
            parse.add(
                POLICY_GROUPS, number, names("code"), _("Give a code.") if not code else problem
            )
            continue
        if code in seen:
            message = _("The code %(code)s is used twice.") % {"code": code}
            parse.add(POLICY_GROUPS, number, names("code"), message)
        seen.add(code)
        if not values.get("label:vi"):
            parse.add(POLICY_GROUPS, number, names("label:vi"), _("Give the Vietnamese label."))
        for key in ("label:vi", "label:en"):
            if problem := _too_long(values.get(key, ""), GROUP_NAME_MAX):
                parse.add(POLICY_GROUPS, number, names(key), problem)
        groups.append(
            {
                "code": code,
                "name": {"vi": values.get("label:vi", ""), "en": values.get("label:en", "")},
            }
        )
    return groups


def _indicators(
    sheet: Sheet | None, groups: list[dict[str, Any]], parse: Parse
) -> list[dict[str, Any]] | None:
    """The indicator tree (roots with nested ``children``), or ``None`` without the sheet."""
    if sheet is None:
        return None
    keys = _columns(sheet, set(INDICATORS_COLUMNS), parse)
    names = Columns(keys)
    group_codes = {g["code"] for g in groups}
    nodes: dict[str, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for number, values in _rows(sheet, keys):
        code = values.get("code", "")
        if not code or (problem := _code_problem(code)):
            parse.add(INDICATORS, number, names("code"), _("Give a code.") if not code else problem)
            continue
        if code in nodes:
            parse.add(
                INDICATORS,
                number,
                names("code"),
                _("The code %(code)s is used twice.") % {"code": code},
            )
            continue
        node: dict[str, Any] = {
            "code": code,
            "name": {"vi": values.get("label:vi", ""), "en": values.get("label:en", "")},
            "children": [],
        }
        kind = values.get("kind", "")
        if kind not in Indicator.Kind.values:
            message = _("The kind must be one of: %(kinds)s.") % {
                "kinds": ", ".join(Indicator.Kind.values)
            }
            parse.add(INDICATORS, number, names("kind"), message)
        node["kind"] = kind
        aggregation = values.get("aggregation", Indicator.Aggregation.MEAN)
        if aggregation not in Indicator.Aggregation.values:
            message = _("The aggregation must be one of: %(ways)s.") % {
                "ways": ", ".join(Indicator.Aggregation.values)
            }
            parse.add(INDICATORS, number, names("aggregation"), message)
        node["aggregation"] = aggregation
        weight_text = values.get("weight", "1")
        try:
            weight = float(weight_text)
        except ValueError:
            weight = -1.0
        if not math.isfinite(weight) or weight < 0 or weight > 1e9:
            parse.add(
                INDICATORS, number, names("weight"), _("The weight must be a number from 0 up.")
            )
        node["weight"] = weight
        group = values.get("policy_group", "")
        if group and group not in group_codes:
            message = _("%(code)s is not a code of the sipas_policy_groups sheet.") % {
                "code": group
            }
            parse.add(INDICATORS, number, names("policy_group"), message)
        if group:
            node["policy_group"] = group
        if not node["name"]["vi"]:
            parse.add(INDICATORS, number, names("label:vi"), _("Give the Vietnamese label."))
        for key in ("label:vi", "label:en"):
            if problem := _too_long(values.get(key, ""), TITLE_MAX):
                parse.add(INDICATORS, number, names(key), problem)
        parent = values.get("parent", "")
        if parent and parent not in nodes:
            message = _("The parent %(code)s must be an indicator of an earlier row.") % {
                "code": parent
            }
            parse.add(INDICATORS, number, names("parent"), message)
        (nodes[parent]["children"] if parent in nodes else roots).append(node)
        nodes[code] = node
        parse.indicator_rows[code] = number
    return roots


# --- Survey ---------------------------------------------------------------------------------


@dataclass
class SectionDraft:
    row: int
    spec: dict[str, Any]
    implicit: bool = False
    questions: list[ParsedQuestion] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)


def _type_of(text: str) -> tuple[str, str]:
    """(kind, list name): kind ``select_one``/``select_multiple``/``begin group``/..."""
    words = text.strip().split()
    lowered = [w.lower() for w in words]
    joined = " ".join(lowered)
    aliases = {
        "begin group": "begin group",
        "begin_group": "begin group",
        "end group": "end group",
        "end_group": "end group",
        "integer": "integer",
        "int": "integer",
        "decimal": "decimal",
        "text": "text",
        "string": "text",
        "date": "date",
        "note": "note",
    }
    if joined in aliases:
        return aliases[joined], ""
    for prefix, kind in (
        (["select_one"], "select_one"),
        (["select", "one"], "select_one"),
        (["select_multiple"], "select_multiple"),
        (["select", "multiple"], "select_multiple"),
        (["select", "all", "that", "apply"], "select_multiple"),
    ):
        if lowered[: len(prefix)] == prefix and len(words) == len(prefix) + 1:
            return kind, words[-1]
    return "", ""


def _unsupported_type(text: str) -> str:
    lowered = text.strip().lower()
    if "repeat" in lowered:
        return _("Repeats are not supported.")
    if lowered.startswith("calculate"):
        return _("Calculations are not supported.")
    if lowered.endswith("or_other"):
        return _("'or_other' is not supported: add an 'other' choice and a text question.")
    if "from_file" in lowered or "external" in lowered:
        return _("Choices from a file are not supported.")
    return _(
        "The type %(type)s is not supported (supported: select_one, select_multiple, integer, "
        "decimal, text, date, note, begin group, end group)."
    ) % {"type": text}


def _survey(
    sheet: Sheet | None,
    lists: dict[str, list[dict[str, Any]]],
    indicators: list[dict[str, Any]] | None,
    settings: dict[str, str],
    parse: Parse,
) -> tuple[list[SectionDraft], list[dict[str, Any]]]:
    """The sections of the survey sheet, and the item indicators its ``sipas_indicator``
    column names when the workbook has no ``sipas_indicators`` sheet (made from the
    questions' labels, aggregated as the share of satisfied answers)."""
    if sheet is None:
        parse.add(SURVEY, None, None, _("The survey sheet is missing."))
        return [], []
    keys = _columns(sheet, SURVEY_COLUMNS, parse, SURVEY_TRANSLATABLE)
    names = Columns(keys)
    sections: list[SectionDraft] = []
    open_group: SectionDraft | None = None
    questions: dict[str, ParsedQuestion] = {}
    others: dict[str, str] = {}  # names of groups and notes: not questions
    indicator_codes = _indicator_codes(indicators)
    auto_indicators: dict[str, dict[str, Any]] = {}

    def current_section(number: int) -> SectionDraft:
        nonlocal open_group
        if open_group is not None:
            return open_group
        if not sections or not sections[-1].implicit:
            title_vi = settings.get("form_title") or settings.get("form_id") or ""
            sections.append(
                SectionDraft(
                    row=number,
                    spec={
                        "code": "",
                        "title": {
                            "vi": title_vi[:TITLE_MAX],
                            "en": settings.get(SIPAS_TITLE_EN, "")[:TITLE_MAX],
                        },
                    },
                    implicit=True,
                )
            )
        return sections[-1]

    for number, values in _rows(sheet, keys):
        if not values:
            continue  # only unsupported columns: reported by _columns
        type_text = values.get("type", "")
        if not type_text:
            parse.add(SURVEY, number, names("type"), _("Give the type of this row."))
            continue
        kind, list_name = _type_of(type_text)
        if not kind:
            parse.add(SURVEY, number, names("type"), _unsupported_type(type_text))
            continue
        name = values.get("name", "")

        if kind == "end group":
            if open_group is None:
                parse.add(SURVEY, number, names("type"), _("This end group closes no group."))
            open_group = None
            continue

        for column in (
            ("required", "constraint", "relevant") if kind in ("begin group", "note") else ()
        ):
            if values.get(column):
                what = _("a group") if kind == "begin group" else _("a note")
                message = _("The column %(c)s does not apply to %(what)s.") % {
                    "c": names(column),
                    "what": what,
                }
                parse.add(SURVEY, number, names(column), message)
        if kind in ("begin group", "note"):
            for column in (
                SIPAS_TYPE,
                SIPAS_INDICATOR,
                SIPAS_SATISFIED,
                SIPAS_EXCLUDED,
                SIPAS_PERSONAL_DATA,
                "hint:vi",
                "hint:en",
            ):
                if values.get(column):
                    message = _("The column %(c)s applies to questions only.") % {
                        "c": names(column)
                    }
                    parse.add(SURVEY, number, names(column), message)

        if not name:
            parse.add(SURVEY, number, names("name"), _("Give the name."))
            continue
        code = code_of(name)
        if problem := _code_problem(code):
            parse.add(SURVEY, number, names("name"), problem)
            continue
        if code in questions or code in others:
            message = _("The name %(name)s is used twice.") % {"name": name}
            parse.add(SURVEY, number, names("name"), message)
            continue

        label_vi, label_en = values.get("label:vi", ""), values.get("label:en", "")
        if kind == "begin group":
            others[code] = "group"
            if open_group is not None:
                parse.add(
                    SURVEY, number, names("type"), _("Groups inside groups are not supported.")
                )
                continue
            appearance = values.get("appearance", "")
            if appearance and appearance != "field-list":
                message = _("The appearance %(a)s is not supported on a group.") % {"a": appearance}
                parse.add(SURVEY, number, names("appearance"), message)
            for key, text in (("label:vi", label_vi), ("label:en", label_en)):
                if problem := _too_long(text, TITLE_MAX):
                    parse.add(SURVEY, number, names(key), problem)
            open_group = SectionDraft(
                row=number,
                spec={"code": code, "title": {"vi": label_vi or code, "en": label_en}},
            )
            sections.append(open_group)
            continue

        section = current_section(number)
        if kind == "note":
            others[code] = "note"
            if values.get("appearance"):
                parse.add(SURVEY, number, names("appearance"), _("A note takes no appearance."))
            if section.questions:
                parse.add(
                    SURVEY,
                    number,
                    names("type"),
                    _(
                        "A note is shown as the introduction of its section: put it before the "
                        "section's first question, or begin a new group."
                    ),
                )
            if not label_vi and not label_en:
                parse.add(SURVEY, number, names("label:vi"), _("Give the Vietnamese label."))
            section.notes.append((label_vi, label_en))
            continue

        question = _question(number, code, kind, list_name, values, names, lists, questions, parse)
        indicator = values.get(SIPAS_INDICATOR, "")
        if indicator:
            if indicator_codes is not None and indicator not in indicator_codes:
                message = _("%(code)s is not a code of the sipas_indicators sheet.") % {
                    "code": indicator
                }
                parse.add(SURVEY, number, names(SIPAS_INDICATOR), message)
            elif indicator_codes is None:
                if problem := _code_problem(indicator):
                    parse.add(SURVEY, number, names(SIPAS_INDICATOR), problem)
                auto_indicators.setdefault(
                    indicator,
                    {
                        "code": indicator,
                        "kind": Indicator.Kind.ITEM,
                        "aggregation": Indicator.Aggregation.SHARE,
                        "name": {"vi": label_vi[:TITLE_MAX], "en": label_en[:TITLE_MAX]},
                    },
                )
        questions[code] = question
        section.questions.append(question)
        parse.question_rows[code] = number

    if not questions:
        parse.add(SURVEY, None, None, _("The survey sheet has no question."))
    if open_group is not None:
        parse.add(
            SURVEY, open_group.row, names("type"), _("This group is never ended (end group).")
        )

    taken = {s.spec["code"] for s in sections}
    for index, section in enumerate(sections, start=1):
        if not section.spec["code"]:
            code = f"section_{index}"
            while code in taken or code in questions or code in others:
                code += "_"
            section.spec["code"] = code
            taken.add(code)
        if section.notes:
            section.spec["intro"] = {
                "vi": "\n\n".join(vi for vi, _en in section.notes if vi),
                "en": "\n\n".join(en for _vi, en in section.notes if en),
            }
        section.spec["questions"] = [q.spec for q in section.questions]
    return sections, list(auto_indicators.values())


def _indicator_codes(indicators: list[dict[str, Any]] | None) -> set[str] | None:
    if indicators is None:
        return None
    codes: set[str] = set()
    stack = list(indicators)
    while stack:
        node = stack.pop()
        codes.add(node["code"])
        stack.extend(node["children"])
    return codes


def _question(
    number: int,
    code: str,
    kind: str,
    list_name: str,
    values: dict[str, str],
    names: Columns,
    lists: dict[str, list[dict[str, Any]]],
    earlier: dict[str, ParsedQuestion],
    parse: Parse,
) -> ParsedQuestion:
    def problem(column: str, message: str) -> None:
        parse.add(SURVEY, number, names(column), message)

    label_vi, label_en = values.get("label:vi", ""), values.get("label:en", "")
    if not label_vi:
        problem("label:vi", _("Give the Vietnamese label."))
    spec: dict[str, Any] = {
        "code": code,
        "label": {"vi": label_vi, "en": label_en},
        "help": {"vi": values.get("hint:vi", ""), "en": values.get("hint:en", "")},
    }
    appearance = values.get("appearance", "").strip()
    sipas_type = values.get(SIPAS_TYPE, "").strip().lower()
    choices: list[dict[str, Any]] = []

    if sipas_type and not (kind == "select_one" and sipas_type in ("scale", "yesno")):
        problem(SIPAS_TYPE, _("sipas_type is scale or yesno, on a select_one question only."))
    if kind in ("select_one", "select_multiple"):
        if list_name not in lists:
            problem(
                "type",
                _("The choice list %(list)s is not in the choices sheet.") % {"list": list_name},
            )
        choices = [{"code": c["code"], "label": c["label"]} for c in lists.get(list_name, [])]
        if appearance and appearance not in IGNORED_SELECT_APPEARANCES:
            problem("appearance", _("The appearance %(a)s is not supported.") % {"a": appearance})
        if kind == "select_multiple":
            spec["type"] = Question.Type.MULTIPLE
        elif sipas_type == "yesno":
            spec["type"] = Question.Type.YESNO
            if list_name in lists and {c["code"] for c in choices} != {"yes", "no"}:
                problem("type", _("A yes/no question's list has the choices yes and no."))
            choices = []
        elif sipas_type == "scale":
            spec["type"] = Question.Type.SCALE
            if list_name in lists and not all(WHOLE_NUMBER.fullmatch(c["code"]) for c in choices):
                problem("type", _("A scale's choices are named by their point, e.g. 1 to 5."))
        else:
            spec["type"] = Question.Type.SINGLE
        spec["choices"] = choices
    else:
        if appearance and not (kind == "text" and appearance == "multiline"):
            problem("appearance", _("The appearance %(a)s is not supported.") % {"a": appearance})
        spec["type"] = {
            "integer": Question.Type.NUMBER,
            "decimal": Question.Type.NUMBER,
            "date": Question.Type.DATE,
            "text": Question.Type.LONGTEXT if appearance == "multiline" else Question.Type.TEXT,
        }[kind]

    required = _flag(values.get("required", ""))
    if required is None:
        problem("required", _("Write yes or no."))
    spec["required"] = bool(required)
    for key, column in (("excluded", SIPAS_EXCLUDED), ("personal_data", SIPAS_PERSONAL_DATA)):
        flag = _flag(values.get(column, ""))
        if flag is None:
            problem(column, _("Write yes or no."))
        spec[key] = bool(flag)

    _constraint(spec, choices, values.get("constraint", ""), problem)
    _relevant(spec, values.get("relevant", ""), earlier, problem)

    indicator = values.get(SIPAS_INDICATOR, "")
    satisfied_text = values.get(SIPAS_SATISFIED, "")
    if indicator:
        spec["indicator"] = indicator
        if spec["excluded"]:
            problem(
                SIPAS_INDICATOR, _("A question excluded from indices cannot feed an indicator.")
            )
        if not satisfied_text:
            problem(SIPAS_SATISFIED, _("Say which answer values count as satisfied."))
    satisfied = []
    codes = {c["code"] for c in choices}
    for word in satisfied_text.split():
        try:
            value = value_of(spec["type"], word)
        except ValueError:
            value = None
        if value is None or (
            spec["type"] in (Question.Type.SINGLE, Question.Type.MULTIPLE, Question.Type.SCALE)
            and word not in codes
        ):
            problem(SIPAS_SATISFIED, _("%(value)s is not a possible answer.") % {"value": word})
            continue
        satisfied.append(value)
    spec["satisfied"] = satisfied
    return ParsedQuestion(row=number, spec=spec, list_name=list_name)


def _constraint(
    spec: dict[str, Any], choices: list[dict[str, Any]], text: str, problem: Any
) -> None:
    kind = spec["type"]
    if kind == Question.Type.SCALE:
        points = [int(c["code"]) for c in choices if WHOLE_NUMBER.fullmatch(c["code"])]
        if any(abs(point) >= BOUND_LIMIT for point in points):
            problem("type", _("A scale's points must be below %(n)s.") % {"n": BOUND_LIMIT})
            return
        if points:
            spec["min"], spec["max"] = min(points), max(points)
    if not text:
        return
    refused = _(
        "This constraint is not supported: write '. >= a and . <= b' (numbers and scales), "
        "'count-selected(.) >= a and count-selected(.) <= b' (multiple choice) or "
        "'string-length(.) <= n' (text)."
    )
    if kind in (Question.Type.TEXT, Question.Type.LONGTEXT):
        match = LENGTH.match(text)
        if not match or not 1 <= int(match.group("n")) <= MAX_TEXT_LENGTH:
            problem("constraint", refused)
            return
        spec["max_length"] = int(match.group("n"))
        return
    subject = "count-selected(.)" if kind == Question.Type.MULTIPLE else "."
    if kind not in (Question.Type.NUMBER, Question.Type.SCALE, Question.Type.MULTIPLE):
        problem("constraint", refused)
        return
    bounds: dict[str, Decimal] = {}
    for part in re.split(r"\s+and\s+", text.strip()):
        match = BOUND.match(part)
        if not match or re.sub(r"\s", "", match.group("subject")) != subject:
            problem("constraint", refused)
            return
        side = "min" if match.group("op") == ">=" else "max"
        value = _decimal(match.group("n"))
        if side in bounds:
            problem("constraint", refused)
            return
        if value is None:
            problem(
                "constraint",
                _("%(n)s is too large or too precise for a bound.") % {"n": match.group("n")},
            )
            return
        if kind != Question.Type.NUMBER and value != int(value):
            problem("constraint", _("Bounds of scales and multiple choice are whole numbers."))
            return
        bounds[side] = value
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        problem("constraint", _("The maximum must not be below the minimum."))
        return
    for side, value in bounds.items():
        spec[side] = int(value) if kind != Question.Type.NUMBER else value


def _relevant(
    spec: dict[str, Any], text: str, earlier: dict[str, ParsedQuestion], problem: Any
) -> None:
    if not text:
        return
    refused = _(
        "This condition is not supported: write ${q} = 'v' or selected(${q}, 'v'), "
        "joined by 'or', on one earlier question."
    )
    names: set[str] = set()
    terms: list[tuple[str, str, str]] = []
    for part in OR.split(text.strip()):
        match = EQUALS.match(part) or SELECTED.match(part)
        if match is None:
            problem("relevant", refused)
            return
        value = next(v for v in match.group("sq", "dq", "num") if v is not None)
        terms.append(("=" if match.re is EQUALS else "selected", match.group("name"), value))
        names.add(match.group("name"))
    if len(names) != 1:
        problem("relevant", _("A condition may name one question only."))
        return
    name = names.pop()
    condition = earlier.get(code_of(name))
    if condition is None:
        problem("relevant", _("%(name)s is not an earlier question.") % {"name": name})
        return
    kind = condition.spec["type"]
    codes = {c["code"] for c in condition.spec.get("choices", [])}
    values = []
    for operator, _name, text_value in terms:
        if kind == Question.Type.MULTIPLE and operator == "=":
            problem(
                "relevant",
                _("Use selected(${%(name)s}, 'v') on a multiple-choice question.") % {"name": name},
            )
            return
        if operator == "selected" and kind not in Question.CHOICE_TYPES | {Question.Type.YESNO}:
            problem("relevant", _("selected() applies to choice questions."))
            return
        try:
            value = value_of(kind, text_value)
        except ValueError:
            value = None
        if value is None or (kind in Question.CHOICE_TYPES and text_value not in codes):
            message = _("%(value)s is not a possible answer to %(name)s.") % {
                "value": text_value,
                "name": name,
            }
            problem("relevant", message)
            return
        if value not in values:
            values.append(value)
    spec["show_if"] = {"question": condition.spec["code"], "in": values}


# --- The import -----------------------------------------------------------------------------


def parse_xlsform(content: bytes) -> tuple[dict[str, Any], Parse]:
    """The questionnaire description of an XLSForm (the YAML loader's shape) and the
    problems found; the description is usable only when there are none."""
    wanted = (SURVEY, CHOICES, SETTINGS, INDICATORS, POLICY_GROUPS, *UNSUPPORTED_SHEETS)
    sheets, problems = read_sheets(content, wanted)
    parse = Parse(problems=list(problems))
    if problems:  # cells that cannot be read: what follows from them would only mislead
        return {}, parse
    for name in UNSUPPORTED_SHEETS:
        if name in sheets and sheets[name].rows:
            parse.add(
                name, None, None, _("The %(sheet)s sheet is not supported.") % {"sheet": name}
            )
    settings = _settings(sheets.get(SETTINGS), parse)
    lists = _choices(sheets.get(CHOICES), parse)
    groups = _policy_groups(sheets.get(POLICY_GROUPS), parse)
    indicators = _indicators(sheets.get(INDICATORS), groups, parse)
    sections, auto = _survey(sheets.get(SURVEY), lists, indicators, settings, parse)
    spec = {
        "questionnaire": {
            "code": settings.get("form_id", ""),
            "title": {"vi": settings.get("form_title", ""), "en": settings.get(SIPAS_TITLE_EN, "")},
        },
        "version": {"label": settings.get("label", "")},
        "policy_groups": groups,
        "indicators": indicators if indicators is not None else auto,
        "sections": [s.spec for s in sections],
    }
    return spec, parse


def _stored_problems(errors: dict[str, list[str]], parse: Parse) -> list[Problem]:
    """``version_errors`` (keyed ``question:<code>``, ``indicator:<code>``...) by row."""
    problems = []
    for key, messages in errors.items():
        kind, _sep, code = key.partition(":")
        if kind == "question" and code in parse.question_rows:
            where = (SURVEY, parse.question_rows[code], None)
        elif kind == "indicator" and code in parse.indicator_rows:
            where = (INDICATORS, parse.indicator_rows[code], None)
        elif kind == "indicator":
            where = (SURVEY, None, SIPAS_INDICATOR)
        else:
            where = (SURVEY, None, None)
        problems += [Problem(*where, str(message)) for message in messages]
    return problems


def import_xlsform(content: bytes) -> ImportedVersion:
    """Store an XLSForm as a new draft version of the questionnaire its ``form_id`` names
    (created when new); ``XlsformRefused`` with every problem otherwise, nothing stored."""
    spec, parse = parse_xlsform(content)
    if parse.problems:
        raise XlsformRefused(parse.problems)
    meta = spec["questionnaire"]
    with transaction.atomic():
        questionnaire, created = Questionnaire.objects.get_or_create(
            code=meta["code"],
            defaults={
                "title_vi": meta["title"]["vi"] or meta["code"],
                "title_en": meta["title"]["en"],
            },
        )
        # Lock the questionnaire's versions so two imports don't take the same number.
        siblings = QuestionnaireVersion.objects.select_for_update().filter(
            questionnaire=questionnaire
        )
        number = (siblings.aggregate(n=Max("number"))["n"] or 0) + 1
        version = QuestionnaireVersion.objects.create(
            questionnaire=questionnaire,
            number=number,
            label=spec["version"]["label"],
            source_digest=hashlib.sha256(content).hexdigest(),
        )
        try:
            _load_content(version, spec, clean=False)
        except ValidationError as error:
            found = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
            raise XlsformRefused(
                [
                    Problem(SURVEY, None, None, f"{key}: {message}" if key else message)
                    for key, listed in found.items()
                    for message in listed
                ]
            ) from error
        if errors := version_errors(version):
            raise XlsformRefused(_stored_problems(errors, parse))
    return ImportedVersion(version=version, created_questionnaire=created)
