"""Turn posted form strings into typed answers, and answers back into form fields.

The web form posts strings; ``parse_section`` types them per question (scale and number →
int, yes/no → bool, multiple → list, the rest stripped text) and leaves what it cannot
type as the raw string, so that ``clean_answers`` reports it in the citizen's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext as _

from feedback.validation import CleanAnswer, is_shown
from surveys.models import Question, Section

YESNO_VALUES = {"true": True, "false": False}


def parse_answer(question: Question, data: QueryDict) -> Any:
    """The typed value posted for ``question``; ``None`` when left empty."""
    if question.type == Question.Type.MULTIPLE:
        return [v for v in data.getlist(question.code) if v] or None
    raw = data.get(question.code, "").strip()
    if not raw:
        return None
    match question.type:
        case Question.Type.SCALE | Question.Type.NUMBER:
            try:
                return int(raw)
            except ValueError:
                return raw
        case Question.Type.YESNO:
            return YESNO_VALUES.get(raw, raw)
    return raw


def parse_section(section: Section, data: QueryDict) -> dict[str, Any]:
    """Answers posted for the section's questions; other posted fields are ignored."""
    return {q.code: parse_answer(q, data) for q in section.questions.all()}


def form_value(value: Any) -> str | list[str]:
    """An answer as the form shows it (``True`` → ``"true"``, lists as lists of strings)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


@dataclass
class Option:
    value: str
    label: str
    id: str
    checked: bool


@dataclass
class Field:
    """One question as rendered on a step: its value, options, errors and condition."""

    question: Question
    value: str | list[str]
    errors: list[str]
    options: list[Option] = field(default_factory=list)
    condition: str = ""  # the controlling question's code, when it is on the same page
    condition_values: list[Any] = field(default_factory=list)
    condition_text: str = ""

    @property
    def input_id(self) -> str:
        """The id of the first input: where a link from the error summary lands."""
        return self.options[0].id if self.options else f"id_{self.question.code}"

    @property
    def is_group(self) -> bool:
        return bool(self.options)

    @property
    def describedby(self) -> str:
        ids = []
        if self.question.help:
            ids.append(f"help-{self.question.code}")
        if self.condition_text:
            ids.append(f"cond-{self.question.code}")
        if self.errors:
            ids.append(f"err-{self.question.code}")
        return " ".join(ids)


def _options(question: Question, value: str | list[str]) -> list[Option]:
    if question.type == Question.Type.YESNO:
        pairs = [("true", _("Yes")), ("false", _("No"))]
    elif question.type in Question.CHOICE_TYPES:
        pairs = [(c.code, c.label) for c in question.choices.all()]
    else:
        return []
    chosen = value if isinstance(value, list) else [value]
    return [
        Option(code, label, f"id_{question.code}_{code}", code in chosen) for code, label in pairs
    ]


def _values_text(question: Question, values: list[Any]) -> str:
    """The condition's values as the citizen reads them: choice labels, Yes/No."""
    labels = {o.value: o.label for o in _options(question, "")}
    return ", ".join(f"“{labels.get(form_value(v), form_value(v))}”" for v in values)


def section_fields(
    section: Section,
    answers: dict[str, Any],
    cleaned: dict[str, CleanAnswer],
    errors: dict[str, list[str]],
) -> list[Field]:
    """The questions of ``section`` to show, given the answers so far.

    A question whose condition is on this same page is always rendered (the script hides
    it; without script the server discards its answer if the condition is not met). One
    whose condition lies on an earlier page is rendered only if that condition holds.
    """
    on_page = {q.code for q in section.questions.all()}
    fields = []
    for question in section.questions.all():
        controlling = question.show_if_question
        same_page = controlling is not None and controlling.code in on_page
        if controlling is not None and not same_page and not is_shown(question, cleaned):
            continue
        value = form_value(answers.get(question.code))
        item = Field(question, value, errors.get(question.code, []), _options(question, value))
        if same_page:
            item.condition = controlling.code
            item.condition_values = question.show_if_values
            item.condition_text = _("Answer only if your answer to %(code)s was %(values)s.") % {
                "code": controlling.code,
                "values": _values_text(controlling, question.show_if_values),
            }
        fields.append(item)
    return fields
