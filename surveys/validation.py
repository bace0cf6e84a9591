"""Consistency rules of a questionnaire version, shared by model forms and publishing.

Errors of a whole version are keyed ``question:<code>``, ``indicator:<code>`` or by field
(``questions``, ``status``); ``describe_error_key`` turns a key into words for people.

``question_errors`` checks one question against what is already stored; ``version_errors``
checks a whole version before it is published (choices, conditions, indicator links).
Both return ``{field: [message, ...]}`` and never raise, so callers decide how to report.

Positions: sections, questions and choices are numbered from 1 within their parent, with
no gaps (the loader, ``start_draft`` and the admin all keep this). ``ranked`` is the one
rule that turns wanted positions into that numbering, and ``misplaced_conditions`` checks
the display conditions against the order a save is about to give, before anything is
written, so an editor can move, add and condition questions in a single save.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from surveys.models import Question, QuestionnaireVersion

Errors = dict[str, list[str]]


def describe_error_key(key: str) -> str:
    """``question:S01`` → "question S01" in the active language."""
    kind, _sep, code = key.partition(":")
    if kind == "question" and code:
        return _("question %(code)s") % {"code": code}
    if kind == "indicator" and code:
        return _("indicator %(code)s") % {"code": code}
    return key


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def value_is_possible(question: Question, value: Any, choice_codes: set[str]) -> bool:
    """Whether ``value`` is an answer ``question`` could receive (for conditions and tags)."""
    from surveys.models import Question as Q

    match question.type:
        case Q.Type.YESNO:
            return isinstance(value, bool)
        case Q.Type.SCALE:
            if not _is_int(value):
                return False
            low, high = question.min_value, question.max_value
            return (low is None or value >= low) and (high is None or value <= high)
        case Q.Type.SINGLE | Q.Type.MULTIPLE:
            return isinstance(value, str) and value in choice_codes
        case Q.Type.NUMBER:
            return _is_int(value) or isinstance(value, float | Decimal)
        case _:
            return isinstance(value, str)


def impossible_values(question: Question, values: list[Any], choice_codes: set[str]) -> list[Any]:
    """The ``values`` that no answer to ``question`` could be."""
    return [v for v in values if not value_is_possible(question, v, choice_codes)]


def question_errors(question: Question, *, check_order: bool = True) -> Errors:
    """Problems of one question on its own and against the stored earlier questions.

    ``check_order=False`` leaves out whether the condition comes earlier: a caller that
    moves several questions in one save checks that with ``misplaced_conditions``.
    """
    from surveys.models import Question as Q

    errors: Errors = {}
    kind = question.type
    if question.section_id is not None and question.code:
        taken = Q.objects.filter(version_id=question.section.version_id, code=question.code)
        if question.pk is not None:
            taken = taken.exclude(pk=question.pk)
        if taken.exists():
            _add(
                errors,
                "code",
                _("The code %(code)s is already used in this version.") % {"code": question.code},
            )
    if kind == Q.Type.SCALE:
        if question.min_value is None or question.max_value is None:
            _add(errors, "min_value", _("A scale needs its lowest and highest point."))
        else:
            for field in ("min_value", "max_value"):
                value = getattr(question, field)
                if value != int(value):
                    _add(errors, field, _("Scale points are whole numbers."))
    if kind in Q.TEXT_TYPES | {Q.Type.YESNO, Q.Type.DATE, Q.Type.SINGLE} and (
        question.min_value is not None or question.max_value is not None
    ):
        _add(
            errors,
            "min_value",
            _("Bounds apply to numbers, scales and multiple choice, not to this type."),
        )
    if question.max_length is not None and kind not in Q.TEXT_TYPES:
        _add(errors, "max_length", _("A maximum length applies to text answers only."))
    if (
        question.min_value is not None
        and question.max_value is not None
        and question.min_value > question.max_value
    ):
        _add(errors, "max_value", _("The maximum must not be below the minimum."))

    if not isinstance(question.show_if_values, list):
        _add(errors, "show_if_values", _("Give a list of values, e.g. [true] or [4, 5]."))
    if not isinstance(question.satisfied_values, list):
        _add(errors, "satisfied_values", _("Give a list of values, e.g. [4, 5]."))

    if question.show_if_question_id is not None:
        condition = question.show_if_question
        if question.pk is not None and condition.pk == question.pk:
            _add(errors, "show_if_question", _("A question cannot depend on itself."))
        elif question.section_id is not None and (
            condition.version_id != question.section.version_id
        ):
            _add(
                errors, "show_if_question", _("The condition must name a question of this version.")
            )
        elif (
            check_order
            and question.section_id is not None
            and not _comes_before(condition, question)
        ):
            _add(
                errors,
                "show_if_question",
                _("A display condition may only refer to an earlier question (%(code)s is not).")
                % {"code": condition.code},
            )
        if isinstance(question.show_if_values, list) and not question.show_if_values:
            _add(errors, "show_if_values", _("Name the answer values that show this question."))
    elif question.show_if_values:
        _add(errors, "show_if_question", _("Name the question whose answer shows this one."))

    if question.personal_data:
        condition = question.show_if_question if question.show_if_question_id else None
        if condition is None or condition.type != Q.Type.YESNO or question.show_if_values != [True]:
            _add(
                errors,
                "personal_data",
                _(
                    "A question asking for personal data must be shown only when an earlier "
                    "yes/no consent question is answered yes (condition: that question in [true])."
                ),
            )
        if question.indicator_id is not None:
            _add(errors, "indicator", _("Personal data is never scored."))
    if question.excluded_from_indices and question.indicator_id is not None:
        _add(errors, "indicator", _("A question excluded from indices cannot feed an indicator."))
    if question.indicator_id is not None:
        if question.section_id is not None and (
            question.indicator.version_id != question.section.version_id
        ):
            _add(errors, "indicator", _("The indicator must belong to this version."))
        if kind in Q.TEXT_TYPES | {Q.Type.DATE, Q.Type.NUMBER}:
            _add(errors, "indicator", _("Only scale, choice and yes/no questions can be scored."))
        if isinstance(question.satisfied_values, list) and not question.satisfied_values:
            _add(errors, "satisfied_values", _("Say which answer values count as satisfied."))
    return errors


def _comes_before(earlier: Question, later: Question) -> bool:
    earlier_key = (earlier.section.position, earlier.section_id, earlier.position, earlier.pk or 0)
    later_key = (
        later.section.position,
        later.section_id,
        later.position,
        later.pk if later.pk is not None else float("inf"),
    )
    return earlier_key < later_key


def ranked(wanted: Sequence[tuple[Hashable, int | None, bool]]) -> list[Hashable]:
    """Keys in their new order, from ``(key, wanted position, moved)`` in the current order.

    Lower wanted positions come first; at a tie an item the editor moved (or added) comes
    before one that stayed, so "put this at 3" pushes the old third one down; otherwise
    the current order holds. No position (``None``) means "at the end".
    """
    inf = float("inf")
    order = sorted(
        range(len(wanted)),
        key=lambda i: (inf if wanted[i][1] is None else wanted[i][1], not wanted[i][2], i),
    )
    return [wanted[i][0] for i in order]


@dataclass(frozen=True)
class PlannedQuestion:
    """A question as a save would leave it: where it goes and what it depends on."""

    code: str
    section: Hashable
    position: int | None
    moved: bool
    condition: Hashable | None


def misplaced_conditions(
    *,
    version_id: int,
    sections: Mapping[Hashable, tuple[int | None, bool]] | None = None,
    removed_sections: Collection[Hashable] = (),
    questions: Mapping[Hashable, PlannedQuestion] | None = None,
    removed_questions: Collection[Hashable] = (),
) -> dict[Hashable, tuple[str, str]]:
    """Questions whose display condition would not come earlier after a planned save.

    The stored version is overlaid with the plan: ``sections`` maps a section key (its id,
    or any key for a new one) to ``(wanted position, moved)``; ``questions`` maps a question
    key (its id, or any key for a new one) to where it goes. Questions of removed sections
    go with them. Returns ``{question key: (its code, message)}``, also for questions that
    would depend on a removed one. One query per table, whatever the size of the version.
    """
    from surveys.models import Question, Section

    sections, questions = dict(sections or {}), dict(questions or {})
    section_rows = Section.objects.filter(version_id=version_id).order_by("position", "id")
    wanted_sections = [
        (key, *sections.pop(key, (position, False)))
        for key, position in section_rows.values_list("id", "position")
        if key not in removed_sections
    ]
    wanted_sections += [(key, *place) for key, place in sections.items()]
    section_rank = {key: rank for rank, key in enumerate(ranked(wanted_sections))}

    plan: dict[Hashable, PlannedQuestion] = {}
    stored = Question.objects.filter(version_id=version_id).order_by("position", "id")
    for pk, code, section_id, position, condition_id in stored.values_list(
        "id", "code", "section_id", "position", "show_if_question_id"
    ):
        if pk in removed_questions or section_id in removed_sections:
            continue
        plan[pk] = questions.pop(
            pk, PlannedQuestion(code, section_id, position, False, condition_id)
        )
    plan.update(questions)

    by_section: dict[Hashable, list[tuple[Hashable, int | None, bool]]] = {}
    for key, planned in plan.items():
        by_section.setdefault(planned.section, []).append((key, planned.position, planned.moved))
    place = {
        key: (section_rank.get(section, len(section_rank)), rank)
        for section, wanted in by_section.items()
        for rank, key in enumerate(ranked(wanted))
    }

    problems: dict[Hashable, tuple[str, str]] = {}
    for key, planned in plan.items():
        condition = planned.condition
        if condition is None:
            continue
        if condition not in plan:
            problems[key] = (
                planned.code,
                _("%(code)s depends on a question that would be deleted.") % {"code": planned.code},
            )
        elif not place[condition] < place[key]:
            problems[key] = (
                planned.code,
                _("A display condition may only refer to an earlier question (%(code)s is not).")
                % {"code": plan[condition].code},
            )
    return problems


def version_errors(version: QuestionnaireVersion) -> Errors:
    """Problems that stop a version from being published, keyed by question or part."""
    from surveys.models import Question as Q

    errors: Errors = {}
    questions = list(
        version.questions.select_related("section", "show_if_question__section", "indicator")
        .prefetch_related("choices")
        .order_by("section__position", "section_id", "position", "id")
    )
    if not questions:
        _add(errors, "questions", _("A version needs at least one question to be published."))
    choices = {q.pk: {c.code for c in q.choices.all()} for q in questions}
    by_pk = {q.pk: q for q in questions}

    for question in questions:
        field = f"question:{question.code}"
        for problems in question_errors(question).values():
            for message in problems:
                _add(errors, field, message)
        codes = choices[question.pk]
        if question.type in (Q.Type.SINGLE, Q.Type.MULTIPLE) and len(codes) < 2:
            _add(errors, field, _("A choice question needs at least two choices."))
        if question.type == Q.Type.SCALE:
            bad = sorted(c for c in codes if not (c.isascii() and c.lstrip("-").isdigit()))
            if bad:
                _add(errors, field, _("Scale choices are labelled by their point, e.g. '1'."))
            elif question.min_value is not None and question.max_value is not None:
                points = {int(c) for c in codes}
                if any(p < question.min_value or p > question.max_value for p in points):
                    _add(errors, field, _("A scale label lies outside the scale."))
        if question.type not in Q.CHOICE_TYPES and codes:
            _add(errors, field, _("Only scale and choice questions have choices."))
        if question.show_if_question_id is not None and isinstance(question.show_if_values, list):
            condition = by_pk.get(question.show_if_question_id)
            if condition is not None:
                values = question.show_if_values
                message = _("The condition value %(value)r is not a possible answer to %(code)s.")
                for value in impossible_values(condition, values, choices[condition.pk]):
                    _add(errors, field, message % {"value": value, "code": condition.code})
        if isinstance(question.satisfied_values, list):
            message = _("The satisfied value %(value)r is not a possible answer.")
            for value in impossible_values(question, question.satisfied_values, codes):
                _add(errors, field, message % {"value": value})

    items_without_questions = version.indicators.filter(
        kind="item", questions__isnull=True
    ).values_list("code", flat=True)
    for code in items_without_questions:
        _add(errors, f"indicator:{code}", _("This item indicator is fed by no question."))
    return errors
