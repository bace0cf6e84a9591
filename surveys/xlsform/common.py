"""What the XLSForm export and import share: column names, language suffixes, how our
codes and answer values are written in an XLSForm, and the ``sipas_*`` extension columns.

A question's code is its XLSForm ``name``; XML names cannot start with a digit, which our
codes may (``code_validator``), so such a code is written with a leading ``_`` and read
back without it (our codes never start with ``_``). Answer values are written as XLSForm
choice names: scale and number answers as digits, yes/no answers as ``yes``/``no``, other
answers as they are.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from surveys.models import Question

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LANGUAGES = {"vi": "Tiếng Việt (vi)", "en": "English (en)"}
DEFAULT_LANGUAGE = LANGUAGES["vi"]

SURVEY = "survey"
CHOICES = "choices"
SETTINGS = "settings"
# Our own sheets: pyxform ignores them; they carry the version's indicator tree.
INDICATORS = "sipas_indicators"
POLICY_GROUPS = "sipas_policy_groups"

# Extension columns of the survey sheet (pyxform ignores them).
SIPAS_TYPE = "sipas_type"  # scale or yesno on a select_one: our types XLSForm lacks
SIPAS_INDICATOR = "sipas_indicator"  # the code of the item indicator the question feeds
SIPAS_SATISFIED = "sipas_satisfied"  # answer values counted as satisfied, space-separated
SIPAS_EXCLUDED = "sipas_excluded"  # yes: never scored (demographics, screeners)
SIPAS_PERSONAL_DATA = "sipas_personal_data"  # yes: asks for personal data
# Extension columns of the settings sheet.
SIPAS_LABEL = "sipas_label"  # the version's label
SIPAS_TITLE_EN = "sipas_title_en"  # the questionnaire's English title

# The untranslated columns of each sheet, in the order the export writes them (the import
# reads them in any order); the translated ones (``label::…``) are added by each side.
SURVEY_RULE_COLUMNS = (
    "required",
    "relevant",
    "constraint",
    "appearance",
    SIPAS_TYPE,
    SIPAS_INDICATOR,
    SIPAS_SATISFIED,
    SIPAS_EXCLUDED,
    SIPAS_PERSONAL_DATA,
)
SETTINGS_COLUMNS = (
    "form_id",
    "form_title",
    "version",
    "default_language",
    SIPAS_LABEL,
    SIPAS_TITLE_EN,
)
INDICATORS_COLUMNS = ("code", "parent", "kind", "aggregation", "weight", "policy_group")

WHOLE_NUMBER = re.compile(r"-?[0-9]+")  # ASCII digits only: "²".isdigit() is true
YES, NO = "yes", "no"
YESNO_LIST = "sipas_yes_no"
YESNO_LABELS = {YES: ("Có", "Yes"), NO: ("Không", "No")}


def translated(column: str, language: str) -> str:
    """``label`` + ``vi`` → ``label::Tiếng Việt (vi)``."""
    return f"{column}::{LANGUAGES[language]}"


def xml_name(code: str) -> str:
    """The XLSForm name of a question or section code (``_`` before a leading digit)."""
    return f"_{code}" if code[:1] in "0123456789" and code else code


def code_of(name: str) -> str:
    """Our code of an XLSForm name: ``xml_name`` undone."""
    return name[1:] if name.startswith("_") else name


def number_text(value: Decimal | int | float) -> str:
    """A bound or value as plain digits: ``Decimal("5.0000")`` → ``5``."""
    text = f"{Decimal(str(value)):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def value_text(question_type: str, value: Any) -> str:
    """How an answer value of a question of this type is written in an XLSForm."""
    if question_type == Question.Type.YESNO:
        return YES if value is True else NO if value is False else str(value)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return number_text(value)
    return str(value)


def value_of(question_type: str, text: str) -> Any:
    """The answer value an XLSForm value stands for, for a question of this type.

    Raises ``ValueError`` when the text is no possible value of that type.
    """
    match question_type:
        case Question.Type.YESNO:
            if text == YES:
                return True
            if text == NO:
                return False
            raise ValueError(text)
        case Question.Type.SCALE | Question.Type.NUMBER:
            if not WHOLE_NUMBER.fullmatch(text) or len(text) > 20:
                raise ValueError(text)
            return int(text)
    return text
