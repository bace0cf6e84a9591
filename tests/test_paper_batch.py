"""Paper imports check a batch of rows column by column and store it with COPY: the outcome is
the same as storing the rows one by one through ``submit_response``, whatever the cells hold.

The row-by-row path (``import_row``) is the reference: it is what the import did before, and
what it still does for a batch the database refuses.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from typing import Any

import pytest
from django.db import connections, transaction
from django.utils import translation
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedback.models import Answer, PaperImport, Response
from feedback.paper import services as paper
from feedback.services import round_questions
from surveys.models import Agency, Round, Unit
from tests.support import hostile_input
from tests.support.hostile_input import STRINGS
from tests.support.paper import CODES, csv_bytes, imported, paper_cell, row, uploaded
from tests.support.responses import valid_answers

pytestmark = pytest.mark.django_db
PROPERTY = settings(hostile_input.PROPERTY, max_examples=30)
HEADER = ["row_id", "unit", "agency", "weight", "psu", "stratum", *CODES]
# Columns a cell is changed in: known columns, a single choice, the yes/no that shows the
# service questions, a scale, the multiple choice, free text.
CHANGED = ["row_id", "unit", "agency", "weight", "psu", "A01", "Q8_4", "S01", "Q2", "Q11", "P03"]
# Cells as CSV and XLSX files give them: text (NUL, lone surrogates, "1e400", odd dates…),
# numbers of any size, booleans, dates and times, formulas without a stored value.
CELLS = (
    STRINGS
    | st.sampled_from(["4", "4.0", "9", "có", "x", "internet;internet", "nope", "TTHCC", "0"])
    | st.integers()
    | st.sampled_from([10**400, 2**53 + 1, -(2**63)])
    | st.floats()
    | st.booleans()
    | st.datetimes(min_value=dt.datetime(1, 1, 1))
    | st.just(paper.UNCACHED_FORMULA)
    | st.none()
)


class Rollback(Exception):
    """Raised to undo what a run stored, carrying what it found."""


def line(row_id: str, **changes: Any) -> list[Any]:
    answers = valid_answers()
    cells = dict(zip(CODES, (paper_cell(answers.get(code, "")) for code in CODES), strict=True))
    cells |= {"row_id": row_id, "unit": "19", "agency": "", "weight": "", "psu": ""}
    return [changes.get(column, cells.get(column, "")) for column in HEADER]


@st.composite
def files(draw: st.DrawFn) -> list[list[Any]]:
    """Up to four rows, some with the same row_id (duplicates, or a row_id reused with
    other answers), each with up to three cells changed."""
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        cells = line(draw(st.sampled_from(["F-1", "F-2", ""])))
        for column in draw(st.lists(st.sampled_from(CHANGED), max_size=3, unique=True)):
            cells[HEADER.index(column)] = draw(CELLS)
        lines.append(cells)
    return lines


def outcome(lines: list[list[Any]], *, batch: bool) -> tuple[list[Any], list[Any]]:
    """The report entries and the stored forms of an import of ``lines``, by either path,
    after an earlier import stored the form F-1; nothing of it is kept."""
    try:
        with translation.override("en"), transaction.atomic():
            earlier = imported(csv_bytes([row("F-1")]))
            survey_round = Round.objects.get(code="demo")
            current = PaperImport.objects.create(
                round=survey_round, file_name="f.csv", content=b"", total_rows=len(lines)
            )
            questions = {q.code: q for q in round_questions(survey_round)}
            context = paper.RowContext(current, questions, HEADER)
            numbered = list(enumerate(lines, start=2))
            if batch:
                entries = paper.import_rows(context, numbered)
            else:
                entries = [paper._import_row_safely(context, n, cells) for n, cells in numbered]
            raise Rollback(normalised(entries, earlier.pk, current.pk), stored_forms(current))
    except Rollback as done:
        return done.args


def normalised(entries: list[dict[str, Any]], earlier: int, current: int) -> list[Any]:
    """Entries with import ids named, receipts dropped, and each row's errors in one order."""
    names = {earlier: "earlier", current: "this"}

    def named(message: str) -> str:
        return re.sub(r"\(import (\d+)\)", lambda m: f"(import {names[int(m[1])]})", message)

    return [
        (
            entry["row"],
            entry["row_id"],
            entry["status"],
            names.get(entry.get("import")),
            sorted((e["field"], named(e["message"])) for e in entry.get("errors", [])),
        )
        for entry in entries
    ]


def stored_forms(paper_import: PaperImport) -> list[Any]:
    responses = Response.objects.filter(import_batch=paper_import).order_by("paper_key")
    return [
        (
            r.paper_key,
            r.request_digest,
            r.unit.code,
            r.agency_id,
            r.weight,
            r.psu,
            r.stratum,
            r.channel,
            r.version_id,
            sorted(
                (a.question.code, json.dumps(a.value), a.number, a.code)
                for a in Answer.objects.filter(response=r).select_related("question")
            ),
        )
        for r in responses
    ]


@pytest.fixture
def agency(sipas) -> Agency:
    return Agency.objects.create(unit=Unit.objects.get(code="19"), code="TTHCC", name_vi="TT")


@PROPERTY
@given(lines=files())
@example(lines=[line("F-1", Q11="ab\x00cd"), line("F-2", Q11="a\ud800b")])
@example(lines=[line("F-2", S01="1" + "0" * 400), line("F-2", S01=10**400)])
@example(lines=[line("", S01="2026-02-30"), line("", Q11=dt.datetime(1, 1, 1))])
@example(lines=[line("F-1", S01="9"), line("F-1"), line("F-2", unit="99", A01="")])
@example(lines=[line("F-2", Q8_4="không", S01="x"), line("F-2", Q8_4="không", S01="y")])
@example(lines=[line("F-2", agency="TTHCC"), line("", agency="NOPE", weight="0")])
@example(lines=[line("F-2", weight=dt.datetime(2024, 5, 17)), line("", weight=10**400)])
def test_a_batch_reports_and_stores_what_the_rows_one_by_one_do(
    agency: Agency, lines: list[list[Any]]
) -> None:
    by_batch = outcome(lines, batch=True)
    by_row = outcome(lines, batch=False)
    assert by_batch == by_row


def test_a_batch_holding_good_and_bad_rows_stores_only_the_good_ones(sipas) -> None:
    done = imported(csv_bytes([row("F-1"), row("F-2", S01="4.5"), row("F-3", unit=""), row("F-4")]))
    assert paper.batch_rows(done.total_rows) == paper.BATCH_ROWS  # one batch
    assert [e["status"] for e in done.report] == ["accepted", "rejected", "rejected", "accepted"]
    assert sorted(Response.objects.values_list("paper_key", flat=True)) == sorted(
        paper.paper_key(row_id=row_id, content={}) for row_id in ("F-1", "F-4")
    )
    assert Answer.objects.count() == 2 * len(valid_answers())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_form_another_import_stores_while_a_batch_is_checked_is_a_duplicate(
    sipas, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = uploaded(csv_bytes([row("F-1"), row("F-2"), row("F-3")]))
    store = paper.store_forms
    others: list[PaperImport] = []

    def another_import_stores_f2_first(context: Any, forms: list[Any]) -> list[int]:
        # Another worker, on its own connection, commits F-2 after this batch looked for
        # stored forms: the COPY meets the unique index on (round, paper_key).
        if context.paper_import.pk != created.pk:
            return store(context, forms)  # the other import itself

        def other() -> None:
            others.append(imported(csv_bytes([row("F-2")])))
            connections.close_all()

        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
        return store(context, forms)

    monkeypatch.setattr(paper, "store_forms", another_import_stores_f2_first)
    done = paper.run_paper_import(import_id=created.pk)

    assert (done.status, done.accepted_rows, done.duplicate_rows) == ("done", 2, 1)
    duplicate = next(e for e in done.report if e["status"] == "duplicate")
    assert (duplicate["row_id"], duplicate["import"]) == ("F-2", others[0].pk)
    assert Response.objects.filter(import_batch=created).count() == 2
    assert Response.objects.count() == 3


def test_the_new_responses_ids_come_back_from_one_place(sipas, monkeypatch) -> None:
    """Whatever is kept per response beside it (compact scoring records) is refreshed from
    the ids ``store_forms`` returns: exactly the responses the batch stored."""
    returned: list[int] = []
    store = paper.store_forms

    def keep(context: Any, forms: list[Any]) -> list[int]:
        ids = store(context, forms)
        returned.extend(ids)
        return ids

    monkeypatch.setattr(paper, "store_forms", keep)
    done = imported(csv_bytes([row("F-1"), row("F-2", S01="9"), row("F-3"), row("F-1")]))
    assert sorted(returned) == sorted(
        Response.objects.filter(import_batch=done).values_list("id", flat=True)
    )
    assert len(returned) == 2


@pytest.mark.parametrize(
    ("total", "size"),
    [(1, 100), (150, 100), (5_000, 100), (10_000, 200), (100_000, 2_000), (10**6, 5_000)],
)
def test_a_large_file_commits_in_larger_batches_and_still_shows_progress_often(
    total: int, size: int
) -> None:
    assert paper.batch_rows(total) == size
