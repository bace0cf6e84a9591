"""The submission path's cost: one statement, one Redis round trip, rows as validated.

The first submission to a round and unit reads them (one SELECT); later ones are checked
against what it read and stored by one message that stores nothing if the round or unit
changed since (``feedback.services._submit_as_last_read``): the response with its answers,
and its compact scoring record completed from the answers as validated, run by PostgreSQL
as one transaction. Anything unusual goes the full path, whose answers stay the same.

``bench/ingest.py`` measures the speed; these tests hold the shape that gives it (see
docs/benchmarks.md) and check that storing a response and its answers in one statement
keeps every value exactly as validation cleaned it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import redis
from django.db import DataError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback import records
from feedback.models import Answer, Response, ResponseRecord
from feedback.selectors import find_target
from feedback.services import store_response
from feedback.validation import CleanAnswer
from surveys.models import Question, Round
from tests.support.responses import payload, post, valid_answers

pytestmark = pytest.mark.django_db
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The first word of each statement sent, transaction control left out."""
    words = [query["sql"].split()[0].upper() for query in queries.captured_queries]
    return [word for word in words if word not in TRANSACTION_CONTROL]


def stored_rows() -> tuple[int, int, int]:
    """How many responses, answers and compact records are stored."""
    return Response.objects.count(), Answer.objects.count(), ResponseRecord.objects.count()


@pytest.mark.postgres
def test_a_submission_stores_response_answers_and_record_in_one_message(
    client: Client, sipas: Any
) -> None:
    with CaptureQueriesContext(connection) as queries:
        post(client, payload())  # reads the round and unit, questionnaire and layout
    assert statements(queries)[:1] == ["SELECT"]
    with CaptureQueriesContext(connection) as queries:
        answered = post(client, payload())
    assert answered.status_code == 201, answered.json()
    # the response with its answers and (same message) its compact record; no read
    assert statements(queries) == ["WITH"]
    [write] = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("WITH")]
    assert f"UPDATE {ResponseRecord._meta.db_table}" in write
    stored = Response.objects.get(receipt=answered.json()["receipt"])
    assert stored.answers.count() == answered.json()["answers_stored"] > 40
    record = ResponseRecord.objects.get(response=stored)
    assert not record.stale and record.valid_0 != 0 and record.satisfied_0 != 0
    assert records.mismatches(round_id=stored.round_id) == (0, [])


class TestCommitted:
    """Submissions committed (no test transaction around them), on PostgreSQL."""

    pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

    def test_outside_a_transaction_a_submission_sends_no_transaction_control(
        self, client: Client, sipas: Any
    ) -> None:
        post(client, payload())
        with CaptureQueriesContext(connection) as queries:
            answered = post(client, payload())
        assert answered.status_code == 201, answered.json()
        assert [q["sql"].split()[0].upper() for q in queries.captured_queries] == ["WITH"]
        assert records.mismatches() == (0, [])

    @pytest.mark.parametrize(
        ("change", "status", "field"),
        [
            (
                {
                    "opens_at": timezone.now() - dt.timedelta(days=9),
                    "closes_at": timezone.now() - dt.timedelta(days=1),
                },
                403,
                "round",
            ),
            ({"allow_open_link": False}, 400, "token"),
            ({"code": "renamed"}, 400, "round"),
        ],
    )
    def test_a_round_changed_since_it_was_read_is_read_again(
        self, client: Client, sipas: Any, change: dict[str, Any], status: int, field: str
    ) -> None:
        post(client, payload())  # the process has read the round and unit
        stored = stored_rows()
        Round.objects.filter(code="demo").update(**change)
        refused = post(client, payload())
        assert refused.status_code == status, refused.json()
        assert field in refused.json()["fields"]
        assert stored_rows() == stored

    def test_a_unit_the_round_no_longer_covers_is_refused_after_it_was_read(
        self, client: Client, sipas: Any
    ) -> None:
        post(client, payload())
        survey_round = Round.objects.get(code="demo")
        survey_round.units.remove(survey_round.units.get(code="19"))
        refused = post(client, payload())
        assert refused.status_code == 400 and "unit" in refused.json()["fields"]
        assert Response.objects.count() == 1

    def test_after_the_round_was_read_a_used_key_is_still_a_replay_or_a_conflict(
        self, client: Client, sipas: Any
    ) -> None:
        body = payload()
        first = post(client, body)
        again = post(client, body)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["receipt"] == first.json()["receipt"]
        other = post(client, {**body, "answers": valid_answers(S01=1)})
        assert other.status_code == 409
        # the key is checked before the answers, as on the full path
        invalid = post(client, {**body, "answers": valid_answers(S01=99)})
        assert invalid.status_code == 409
        assert Response.objects.count() == 1

    def test_the_one_message_is_one_transaction_a_failing_record_stores_nothing(
        self, client: Client, sipas: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        post(client, payload())
        stored = stored_rows()
        # A mask out of the column's range: the record's UPDATE, the last statement, fails.
        monkeypatch.setattr(records, "masks", lambda layout, answers: [2**70] + [0] * 7)
        with pytest.raises(DataError):
            post(client, payload())
        assert stored_rows() == stored


@pytest.mark.postgres
def test_a_replay_stores_nothing_and_is_answered_by_the_full_path(
    client: Client, sipas: Any
) -> None:
    body = payload()
    first = post(client, body)
    with CaptureQueriesContext(connection) as queries:
        again = post(client, body)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["receipt"] == first.json()["receipt"]
    # the one statement fails on the used key (rolled back), then the full path's read
    assert statements(queries)[:2] == ["WITH", "SELECT"]
    assert Response.objects.count() == 1


@pytest.mark.redis
def test_an_anonymous_submission_makes_one_round_trip_to_redis(
    client: Client, sipas: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    post(client, payload())  # connects to Redis (a handshake of its own) and warms up
    sent: list[Any] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    answered = post(client, payload())
    assert answered.status_code == 201
    assert len(sent) == 1  # the throttle's counter: INCR and EXPIRE pipelined


def test_find_target_reads_round_version_unit_and_used_key(client: Client, sipas: Any) -> None:
    body = payload()
    assert post(client, body).status_code == 201
    used = uuid.UUID(body["client_id"])
    found = find_target(round_code="demo", unit_code="19", client_id=used)
    demo = Round.objects.select_related("version").get(code="demo")
    assert found.round == demo and found.round.opens_at == demo.opens_at
    assert found.round.version == sipas and found.round.version.status == sipas.status
    assert found.unit is not None and found.unit.code == "19" and found.client_id_used
    assert not find_target(round_code="demo", unit_code="19", client_id=uuid.uuid4()).client_id_used
    assert find_target(round_code="demo", unit_code="nowhere").unit is None
    missing = find_target(round_code="no-such-round", unit_code="19", client_id=used)
    assert missing.round is None and missing.unit is None and missing.client_id_used


def test_stored_answers_are_exactly_the_cleaned_values(sipas: Any) -> None:
    survey_round = Round.objects.select_related("version").get(code="demo")
    questions = {q.code: q for q in Question.objects.filter(version=sipas)}
    cleaned = [
        CleanAnswer(questions["S01"], 4, number=4.0),
        CleanAnswer(questions["S02"], 2**53, number=float(2**53)),
        CleanAnswer(questions["Q8_1"], True, number=1.0),
        CleanAnswer(questions["Q8_2"], False, number=0.0),
        CleanAnswer(questions["Q4"], "khong_co", code="khong_co"),
        CleanAnswer(questions["Q2"], ["loa_xa", "internet"]),
        CleanAnswer(questions["Q11"], 'Tốt lắm, "rất" nhanh \\ 👍\nđúng hẹn'),
        CleanAnswer(questions["P01"], "2026-05-04"),
    ]
    response = Response(
        round=survey_round,
        version_id=survey_round.version_id,
        unit=survey_round.units.get(code="19"),
        channel=Response.Channel.API,
        client_id=uuid.uuid4(),
        request_digest="d" * 64,
        submitted_at=timezone.now(),
    )
    store_response(response, cleaned)
    stored = Response.objects.get(pk=response.pk)
    assert (stored.receipt, stored.client_id, stored.psu, stored.paper_key) == (
        response.receipt,
        response.client_id,
        "",
        "",
    )
    rows = list(
        Answer.objects.filter(response=stored)
        .order_by("id")
        .values_list("question_id", "value", "number", "code")
    )
    assert rows == [(a.question.pk, a.value, a.number, a.code) for a in cleaned]
    assert isinstance(rows[2][1], bool) and isinstance(rows[0][1], int)


def test_a_response_without_answers_is_stored_alone(sipas: Any) -> None:
    survey_round = Round.objects.get(code="demo")
    response = Response(
        round=survey_round,
        version_id=survey_round.version_id,
        unit=survey_round.units.get(code="19"),
        channel=Response.Channel.PAPER,
    )
    store_response(response, [])
    assert Response.objects.filter(pk=response.pk).exists()
    assert not Answer.objects.filter(response_id=response.pk).exists()
