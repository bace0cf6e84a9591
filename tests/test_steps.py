"""The section-by-section walk of the web form (``feedback.steps``), without a database.

The questionnaire is three sections of unsaved questions with their relations filled in
by hand: A asks whether the citizen did a procedure (required) and for an optional note;
B, the procedure's rating, is shown only after a "yes"; C asks for a choice (required).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import Any

import pytest
from django.db.models import Model, QuerySet
from django.http import QueryDict

from feedback import steps
from feedback.steps import Outcome
from surveys.models import Choice, Question, Section

Type = Question.Type
ids = count(1)  # a related manager wants its instance to have a primary key


def prefetched(model: type[Model], items: Iterable[Model]) -> QuerySet:
    """A queryset holding ``items``, as ``prefetch_related`` leaves it: no query."""
    queryset = model.objects.all()
    queryset._result_cache = list(items)
    queryset._prefetch_done = True
    return queryset


def question(code: str, kind: str, **fields: Any) -> Question:
    choices = fields.pop("choices", [])
    made = Question(pk=next(ids), code=code, type=kind, label_vi=code, **fields)
    made._prefetched_objects_cache = {
        "choices": prefetched(Choice, [Choice(code=c, label_vi=c) for c in choices])
    }
    return made


def section(pk: int, code: str, *questions: Question) -> Section:
    made = Section(pk=pk, code=code, position=pk)
    made._prefetched_objects_cache = {"questions": prefetched(Question, questions)}
    return made


@pytest.fixture
def sections() -> list[Section]:
    did = question("Q1", Type.YESNO, required=True)
    note = question("Q2", Type.TEXT)
    rating = question(
        "S1", Type.SCALE, required=True, min_value=1, max_value=5,
        show_if_question=did, show_if_values=[True],
    )  # fmt: skip
    channel = question("C1", Type.SINGLE, required=True, choices=["office", "online"])
    return [section(1, "A", did, note), section(2, "B", rating), section(3, "C", channel)]


def post(section_code: str, action: str = "next", **answers: str) -> QueryDict:
    data = QueryDict(mutable=True)
    data.update({"section": section_code, "action": action, **answers})
    return data


def take(
    sections: list[Section],
    answers: dict[str, Any],
    index: int,
    data: QueryDict,
    bad: dict[str, Any] | None = None,
) -> steps.Step:
    return steps.take_section(
        sections=sections, answers=answers, index=index, data=data, unstorable=bad or {}
    )


# --- section_to_show --------------------------------------------------------------------------


def test_a_section_whose_condition_is_not_met_is_skipped(sections) -> None:
    assert steps.section_to_show(sections, {"Q1": False}, 1).code == "C"


def test_a_section_whose_condition_is_met_is_shown(sections) -> None:
    assert steps.section_to_show(sections, {"Q1": True}, 1).code == "B"


def test_before_the_condition_is_answered_its_section_is_skipped(sections) -> None:
    assert steps.section_to_show(sections, {}, 1).code == "C"


def test_a_position_past_the_end_shows_the_last_section(sections) -> None:
    assert steps.section_to_show(sections, {"Q1": True}, 7).code == "C"


def test_a_form_without_questions_has_no_section_to_show() -> None:
    assert steps.section_to_show([section(1, "A")], {}, 0) is None


# --- take_section -----------------------------------------------------------------------------


def test_next_goes_to_the_section_the_answers_open(sections) -> None:
    step = take(sections, {}, 0, post("A", Q1="true"))
    assert (step.outcome, step.index, step.answers) == (Outcome.NEXT, 1, {"Q1": True})


def test_next_skips_the_section_the_answers_close(sections) -> None:
    step = take(sections, {}, 0, post("A", Q1="false", Q2="  slow  "))
    assert (step.outcome, step.index) == (Outcome.NEXT, 2)
    assert step.answers == {"Q1": False, "Q2": "slow"}


def test_a_missing_required_answer_shows_the_section_again_with_its_error(sections) -> None:
    step = take(sections, {}, 0, post("A", Q2="a note"))
    assert (step.outcome, step.section.code, step.index, step.status) == (Outcome.SHOW, "A", 0, 200)
    assert list(step.errors) == ["Q1"]
    assert step.shown == {"Q2": "a note"}
    assert step.keep and step.answers == {"Q2": "a note"}  # what is valid is kept


def test_an_invalid_answer_is_an_error_of_its_page(sections) -> None:
    step = take(sections, {"Q1": True}, 1, post("B", S1="9"))
    assert step.outcome == Outcome.SHOW
    assert list(step.errors) == ["S1"]


def test_the_section_posted_wins_over_the_one_kept(sections) -> None:
    step = take(sections, {}, 2, post("A", Q1="true"))
    assert (step.section.code, step.index) == ("A", 1)


def test_changing_an_answer_drops_the_answers_it_hides(sections) -> None:
    step = take(sections, {"Q1": True, "S1": 4}, 0, post("A", Q1="false"))
    assert step.answers == {"Q1": False}
    assert step.index == 2


def test_back_goes_to_the_previous_section_shown(sections) -> None:
    step = take(sections, {"Q1": False}, 2, post("C", "back"))
    assert (step.outcome, step.index) == (Outcome.NEXT, 0)


def test_back_returns_through_a_section_the_answers_open(sections) -> None:
    step = take(sections, {"Q1": True, "S1": 4}, 2, post("C", "back"))
    assert (step.outcome, step.index) == (Outcome.NEXT, 1)


def test_back_keeps_the_answers_of_the_page_even_if_incomplete(sections) -> None:
    step = take(sections, {"Q1": False}, 2, post("C", "back", C1="office"))
    assert step.answers == {"Q1": False, "C1": "office"}


def test_back_on_the_first_section_stays_there(sections) -> None:
    step = take(sections, {}, 0, post("A", "back"))
    assert (step.outcome, step.index) == (Outcome.NEXT, 0)


def test_save_may_leave_required_answers_missing(sections) -> None:
    step = take(sections, {}, 0, post("A", "save", Q2="later"))
    assert (step.outcome, step.answers) == (Outcome.SAVED, {"Q2": "later"})


def test_save_with_an_invalid_answer_shows_the_error(sections) -> None:
    step = take(sections, {"Q1": True}, 1, post("B", "save", S1="nine"))
    assert step.outcome == Outcome.SHOW
    assert list(step.errors) == ["S1"]


def test_next_on_the_last_section_sends_the_answers(sections) -> None:
    step = take(sections, {"Q1": False}, 2, post("C", C1="online"))
    assert (step.outcome, step.answers) == (Outcome.SEND, {"Q1": False, "C1": "online"})


def test_an_answer_that_cannot_be_stored_keeps_nothing_of_the_page(sections) -> None:
    problem = {"Q2": ["contains a character that cannot be stored"]}
    step = take(sections, {"Q1": True}, 0, post("A", Q1="false", Q2="x"), bad=problem)
    assert (step.outcome, step.keep, step.status) == (Outcome.SHOW, False, 400)
    assert step.errors == problem
    assert step.answers == {"Q1": True}  # what was kept before
    assert step.shown == {"Q1": False}  # the page again, without the answer to retype


# --- first_section_with, section_page and the small helpers -----------------------------------


def test_the_first_section_with_an_error_is_the_earliest_named(sections) -> None:
    assert steps.first_section_with(sections, {"C1": ["x"], "S1": ["y"]}).code == "B"


def test_a_section_page_numbers_the_sections_that_can_still_be_shown(sections) -> None:
    page = steps.section_page(sections, sections[0], {})
    assert [f.question.code for f in page["fields"]] == ["Q1", "Q2"]
    assert (page["is_first"], page["is_last"]) == (True, False)
    assert (page["progress"].current, page["progress"].total) == (1, 3)
    assert page["summary"] == []


def test_a_section_page_lists_its_errors_in_the_summary(sections) -> None:
    page = steps.section_page(sections, sections[2], {"Q1": False}, {"C1": ["choose one"]})
    assert page["summary"] == [(page["fields"][0].input_id, "choose one")]
    assert (page["is_first"], page["is_last"]) == (False, True)
    assert (page["progress"].current, page["progress"].total) == (2, 2)


def test_a_section_page_shown_out_of_turn_still_has_its_place(sections) -> None:
    page = steps.section_page(sections, sections[1], {"Q1": False})
    assert (page["is_first"], page["is_last"]) == (False, False)


def test_answers_to_questions_no_longer_asked_are_dropped(sections) -> None:
    assert steps.known_answers(sections, {"Q1": True, "GONE": 3}) == {"Q1": True}


def test_a_section_is_found_by_its_code(sections) -> None:
    assert steps.section_index(sections, "C", 0) == 2
    assert steps.section_index(sections, "nope", 1) == 1
