"""Check a citizen's answers against a published questionnaire version.

``clean_answers`` walks the questions in order, evaluates each display condition on the
answers already cleaned, drops answers to hidden questions, and checks required answers,
types, bounds and choice codes. Errors are keyed by question code, with messages in the
active language that name the question, so the web form, the API and paper imports report
problems the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from config.input_guard import text_problem
from surveys.models import Question

CHOICE_TYPES = frozenset({Question.Type.SINGLE, Question.Type.MULTIPLE})
DEFAULT_MAX_LENGTH = {Question.Type.TEXT: 500, Question.Type.LONGTEXT: 5000}
# A whole number beyond this loses digits as a float (the ``number`` column scoring reads).
MAX_NUMBER = 2**53


@dataclass(frozen=True)
class CleanAnswer:
    """An answer ready to store: the canonical value and its typed columns."""

    question: Question
    value: Any
    number: float | None = None
    code: str = ""


class AnswerError(ValueError):
    """One answer is not acceptable; the message names the problem (not the question)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def clean_value(question: Question, value: Any, choice_codes: list[str]) -> CleanAnswer:
    """The canonical form of one non-empty answer, or ``AnswerError``."""
    kind = question.type
    low, high = question.min_value, question.max_value
    match kind:
        case Question.Type.SCALE | Question.Type.NUMBER:
            if not _is_int(value):
                raise AnswerError(_("must be a whole number"))
            if (low is not None and value < low) or (high is not None and value > high):
                raise AnswerError(
                    _("must be between %(low)s and %(high)s")
                    % {"low": _bound(low), "high": _bound(high)}
                )
            if abs(value) > MAX_NUMBER:
                raise AnswerError(_("is too large"))
            return CleanAnswer(question, value, number=float(value))
        case Question.Type.YESNO:
            if not isinstance(value, bool):
                raise AnswerError(_("must be true or false"))
            return CleanAnswer(question, value, number=1.0 if value else 0.0)
        case Question.Type.SINGLE:
            if not isinstance(value, str) or value not in choice_codes:
                raise AnswerError(
                    _("must be one of: %(codes)s") % {"codes": ", ".join(choice_codes)}
                )
            return CleanAnswer(question, value, code=value)
        case Question.Type.MULTIPLE:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise AnswerError(_("must be a list of choice codes"))
            unknown = [v for v in value if v not in choice_codes]
            if unknown:
                raise AnswerError(
                    _("unknown choice %(unknown)s; choose from: %(codes)s")
                    % {"unknown": ", ".join(unknown), "codes": ", ".join(choice_codes)}
                )
            if len(set(value)) != len(value):
                raise AnswerError(_("names a choice twice"))
            if low is not None and len(value) < low:
                raise AnswerError(_("choose at least %(n)s") % {"n": _bound(low)})
            if high is not None and len(value) > high:
                raise AnswerError(_("choose at most %(n)s") % {"n": _bound(high)})
            ordered = [c for c in choice_codes if c in value]
            return CleanAnswer(question, ordered)
        case Question.Type.TEXT | Question.Type.LONGTEXT:
            if not isinstance(value, str):
                raise AnswerError(_("must be text"))
            if text_problem(value):
                raise AnswerError(
                    _("contains a character that cannot be stored (NUL or a lone surrogate)")
                )
            text = value.strip()
            limit = question.max_length or DEFAULT_MAX_LENGTH[kind]
            if len(text) > limit:
                raise AnswerError(_("is longer than %(n)s characters") % {"n": limit})
            return CleanAnswer(question, text)
        case Question.Type.DATE:
            if not isinstance(value, str):
                raise AnswerError(_("must be a date written YYYY-MM-DD"))
            try:
                day = dt.date.fromisoformat(value)
            except ValueError:
                raise AnswerError(_("must be a date written YYYY-MM-DD")) from None
            return CleanAnswer(question, day.isoformat())
    raise AnswerError(_("has an unsupported question type"))  # pragma: no cover


def _choice_codes(question: Question) -> list[str]:
    """The codes of the question's choices in order. Prefetched choices (the cached
    questions of a published version: ``feedback.services.round_questions``) are listed
    once per question instance, not once per answer."""
    choices = getattr(question, "_prefetched_objects_cache", {}).get("choices")
    if choices is None:
        return [c.code for c in question.choices.all()]
    listed = question.__dict__.get("_choice_codes")
    if listed is None or listed[0] is not choices:  # none yet, or prefetched again since
        listed = question.__dict__["_choice_codes"] = (choices, [c.code for c in choices])
    return listed[1]


def _bound(value: Any) -> str:
    return f"{value:f}".rstrip("0").rstrip(".") if value is not None else "…"


def is_shown(question: Question, cleaned: dict[str, CleanAnswer]) -> bool:
    """Whether ``question`` is shown, given the answers to the questions before it."""
    condition = question.show_if_question
    if condition is None:
        return True
    answer = cleaned.get(condition.code)
    if answer is None:
        return False
    allowed = question.show_if_values
    if isinstance(answer.value, list):
        return any(v in allowed for v in answer.value)
    if isinstance(answer.value, bool):
        return any(v is answer.value for v in allowed)
    return answer.value in allowed


def question_name(question: Question) -> str:
    label = question.label
    if len(label) > 80:
        label = label[:77] + "…"
    return f"{question.code} ({label})"


def clean_answers(
    questions: list[Question],
    answers: dict[str, Any],
    *,
    partial: bool = False,
) -> tuple[dict[str, CleanAnswer], dict[str, list[str]]]:
    """Check ``answers`` (question code → value) against ``questions`` in form order.

    Returns the answers to store and the errors by question code. With ``partial`` (a
    draft being saved), missing required answers are not errors.
    """
    errors: dict[str, list[str]] = {}
    known = {q.code for q in questions}
    for code in answers:
        if code not in known:
            errors[str(code)] = [
                _("%(code)s is not a question of this questionnaire.") % {"code": code}
            ]

    cleaned: dict[str, CleanAnswer] = {}
    for question in questions:
        if not is_shown(question, cleaned):
            continue  # hidden: whatever was sent for it is discarded
        value = answers.get(question.code)
        if _is_empty(value):
            if question.required and not partial:
                errors[question.code] = [
                    _("%(question)s: an answer is required.")
                    % {"question": question_name(question)}
                ]
            continue
        choice_codes = _choice_codes(question) if question.type in CHOICE_TYPES else []
        try:
            cleaned[question.code] = clean_value(question, value, choice_codes)
        except AnswerError as problem:
            errors[question.code] = [
                _("%(question)s: the answer %(problem)s.")
                % {"question": question_name(question), "problem": problem}
            ]
    return cleaned, errors
