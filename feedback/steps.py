"""The section-by-section walk of the web form, apart from where its answers are kept.

A citizen's draft (``feedback.web``) and a staff member's preview (``feedback.preview``) walk
the same steps: which section a page shows, what posting a section leads to, and what the
section page holds. They differ only in where the answers wait between pages (a draft row, or
the staff member's session) and in what the final "Send" does (store a response, or nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from config.abuse import HONEYPOT_FIELD
from feedback.forms import parse_section, section_fields
from feedback.progress import section_progress
from feedback.validation import CleanAnswer, clean_answers, is_shown
from surveys.models import Question, Section


def all_questions(sections: list[Section]) -> list[Question]:
    return [q for s in sections for q in s.questions.all()]


def known_answers(sections: list[Section], answers: dict[str, Any]) -> dict[str, Any]:
    """``answers`` without those to questions the sections no longer hold (a draft version
    may lose a question between two pages)."""
    known = {q.code for q in all_questions(sections)}
    return {c: v for c, v in answers.items() if c in known}


def section_index(sections: list[Section], code: str, default: int) -> int:
    """The position of the section named ``code``, or ``default`` if there is none."""
    return next((i for i, s in enumerate(sections) if s.code == code), default)


def visible_sections(sections: list[Section], cleaned: dict[str, CleanAnswer]) -> list[Section]:
    """Sections with at least one question shown: the others are skipped."""
    return [s for s in sections if any(is_shown(q, cleaned) for q in s.questions.all())]


def section_to_show(sections: list[Section], answers: dict[str, Any], index: int) -> Section | None:
    """The section a page shows: the first shown at or after ``index`` (else the last shown)."""
    stored, _errors = clean_answers(all_questions(sections), answers, partial=True)
    visible = visible_sections(sections, stored)
    if not visible:
        return None
    return next((s for s in visible if sections.index(s) >= index), visible[-1])


def first_section_with(sections: list[Section], errors: dict[str, Any]) -> Section:
    """The first section holding a question named in ``errors``."""
    return next(s for s in sections if any(q.code in errors for q in s.questions.all()))


def error_summary(
    errors: dict[str, list[str]], anchor: Callable[[str], str] = "id_{}".format
) -> list[tuple[str, str]]:
    """A form's problems as the links of its error summary: (id of the field, message)."""
    return [(anchor(name), message) for name, messages in errors.items() for message in messages]


def section_page(
    sections: list[Section],
    section: Section,
    answers: dict[str, Any],
    errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """What the section page shows: its fields, the error summary, progress and buttons."""
    cleaned, _errors = clean_answers(all_questions(sections), answers, partial=True)
    visible = visible_sections(sections, cleaned)
    if section not in visible:
        visible = sorted([*visible, section], key=sections.index)
    fields = section_fields(section, answers, cleaned, errors or {})
    position = visible.index(section)
    return {
        "section": section,
        "fields": fields,
        "summary": [(f.input_id, message) for f in fields for message in f.errors],
        "progress": section_progress(sections, section, cleaned),
        "is_first": position == 0,
        "is_last": position == len(visible) - 1,
    }


def render_section(
    request: HttpRequest,
    template: str,
    sections: list[Section],
    section: Section,
    answers: dict[str, Any],
    errors: dict[str, list[str]] | None = None,
    *,
    status: int = 200,
    **context: Any,
) -> HttpResponse:
    """The section page (``section_page``) rendered with ``template`` and ``context``."""
    page = section_page(sections, section, answers, errors)
    return render(request, template, {**page, "honeypot": HONEYPOT_FIELD, **context}, status=status)


class Outcome(StrEnum):
    SHOW = "show"  # show ``Step.section`` again, with ``Step.errors``
    NEXT = "next"  # go on to the section kept in ``Step.index``
    SAVED = "saved"  # the citizen asked to continue later
    SEND = "send"  # the last section is done: send ``Step.answers``


@dataclass
class Step:
    """What posting one section leads to, and what to keep."""

    outcome: Outcome
    section: Section  # the section posted
    answers: dict[str, Any]  # the answers to keep
    index: int  # the section to keep as current
    keep: bool = True  # False: nothing of the page can be stored, keep what was kept before
    shown: dict[str, Any] = field(default_factory=dict)  # what the page shows again
    errors: dict[str, Any] = field(default_factory=dict)
    status: int = 200


def take_section(
    *,
    sections: list[Section],
    answers: dict[str, Any],
    index: int,
    data: QueryDict,
    unstorable: dict[str, Any],
) -> Step:
    """Take the posted ``data`` of a section; ``answers`` and ``index`` are those kept so far.

    ``data["action"]`` is ``next`` (the default), ``back`` or ``save``. ``unstorable`` holds
    the form fields that cannot be stored (``config.input_guard.form_problems``).
    """
    by_code = {s.code: s for s in sections}
    section = by_code.get(data.get("section", ""), sections[min(index, len(sections) - 1)])
    index = sections.index(section)
    posted = parse_section(section, data)
    if bad := {c: m for c, m in unstorable.items() if c in posted}:
        # Nothing of this page is kept; the citizen retypes the answers named.
        shown = {c: v for c, v in {**answers, **posted}.items() if c not in bad}
        return Step(Outcome.SHOW, section, answers, index, False, shown, bad, status=400)
    questions = all_questions(sections)
    merged = {c: v for c, v in answers.items() if c not in posted}
    merged |= {c: v for c, v in posted.items() if v is not None}
    cleaned, errors = clean_answers(questions, merged, partial=True)
    keep = {c: a.value for c, a in cleaned.items()}
    visible = visible_sections(sections, cleaned)
    action = data.get("action", "next")

    if action == "back":
        earlier = [sections.index(s) for s in visible if sections.index(s) < index]
        return Step(Outcome.NEXT, section, keep, earlier[-1] if earlier else index)
    if action == "save":
        if page_errors := {c: e for c, e in errors.items() if c in posted}:
            return Step(Outcome.SHOW, section, keep, index, shown=merged, errors=page_errors)
        return Step(Outcome.SAVED, section, keep, index)

    _cleaned, required = clean_answers(questions, merged)
    if page_errors := {c: e for c, e in required.items() if c in posted}:
        return Step(Outcome.SHOW, section, keep, index, shown=merged, errors=page_errors)
    if later := [sections.index(s) for s in visible if sections.index(s) > index]:
        return Step(Outcome.NEXT, section, keep, later[0])
    return Step(Outcome.SEND, section, keep, index)
