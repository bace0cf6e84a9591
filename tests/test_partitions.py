"""Answers and compact records partitioned by round on PostgreSQL (feedback.partitions):
the migration converts a database with rounds and answers, a new round gets its
partitions, the DEFAULT partition catches a round without them, and a round's reads touch
its own partition only."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, F
from django.test import Client
from django.test.utils import CaptureQueriesContext

from feedback import partitions, records
from feedback.models import Answer, Response
from scoring import sql
from scoring.engine import compute_values
from surveys.models import Round
from tests.support.responses import varied_answers

pytestmark = [pytest.mark.postgres]
BEFORE = [("feedback", "0007_response_records")]
TABLES = partitions.TABLES


def new_round(code: str, *, signals: bool = True) -> Round:
    """An open round like ``demo`` (same version and units); ``signals=False`` inserts it
    with ``bulk_create``, which sends no ``post_save``: no partitions are created."""
    demo = Round.objects.get(code="demo")
    fields = {
        f.attname: getattr(demo, f.attname)
        for f in Round._meta.concrete_fields
        if not f.primary_key and f.name != "code"
    }
    if signals:
        survey_round = Round.objects.create(code=code, **fields)
    else:
        [survey_round] = Round.objects.bulk_create([Round(code=code, **fields)])
    survey_round.units.set(demo.units.all())
    return survey_round


def post(client: Client, round_code: str, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for i in range(count):
        body = {
            "round": round_code,
            "unit": ("19", "01", "79")[i % 3],
            "client_id": str(uuid.uuid4()),
            "answers": varied_answers(rng),
            "psu": f"v{rng.randint(1, 3)}",
        }
        response = client.post("/api/v1/responses/", body, content_type="application/json")
        assert response.status_code == 201, response.content


def rows_by_partition(table: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")
        return dict(cursor.fetchall())


def answers_by_round() -> dict[int, int]:
    """Answers per round of their response (not of their own round column)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.round_id, count(*) FROM feedback_answer a "
            "JOIN feedback_response r ON r.id = a.response_id GROUP BY 1"
        )
        return dict(cursor.fetchall())


def triggers() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgname LIKE 'feedback_%%_record'"
        )
        return set(cursor.fetchall())


def assert_each_round_in_its_partition() -> None:
    """Every answer and record lies in its round's partition, the DEFAULT ones are empty,
    and each answer's round is its response's."""
    expected = {
        partitions.partition_name("feedback_answer", r): n for r, n in answers_by_round().items()
    }
    assert rows_by_partition("feedback_answer") == expected
    records_expected = {
        partitions.partition_name("feedback_responserecord", r): n
        for r, n in Response.objects.values_list("round_id").annotate(n=Count("id"))
    }
    assert rows_by_partition("feedback_responserecord") == records_expected
    assert not Answer.objects.exclude(round_id=F("response__round_id")).exists()


@pytest.fixture
def schema_restored(transactional_db: None) -> Any:
    """Whatever happens in the test, the schema is migrated forward again afterwards: a
    database left half migrated back would fail every later test of this process."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    leaves = executor.loader.graph.leaf_nodes()
    if executor.migration_plan(leaves):
        executor.migrate(leaves)


@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_a_database_with_rounds_and_answers(
    schema_restored: None, sipas: Any, client: Client
) -> None:
    post(client, "demo", 6)
    before = answers_by_round()
    ids_before = set(Answer.objects.values_list("id", flat=True))
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    for table in TABLES:
        assert not partitions.is_partitioned(table)
    assert answers_by_round() == before  # the way back keeps the rows
    assert triggers() == {(t, n) for t, n in records.TRIGGERS}  # 0007's, nothing left over

    # Rounds and answers stored before the upgrade, with the models of that time: a new
    # round (no partition: no signal then) whose answers the triggers mark stale.
    old = executor.loader.project_state(BEFORE).apps
    OldRound, OldResponse, OldAnswer = (
        old.get_model("surveys", "Round"),
        old.get_model("feedback", "Response"),
        old.get_model("feedback", "Answer"),
    )
    demo = OldRound.objects.get(code="demo")
    later = OldRound.objects.create(
        code="later",
        name_vi="Sau",
        period_start=demo.period_start,
        period_end=demo.period_end,
        opens_at=demo.opens_at,
        closes_at=demo.closes_at,
        version_id=demo.version_id,
    )
    stored = OldResponse.objects.filter(round=demo).first()
    copies = []
    for n in range(3):
        response = OldResponse.objects.create(
            round=later,
            version_id=stored.version_id,
            unit_id=stored.unit_id,
            channel="paper",
            weight=1.0,
        )
        copies.append(response.pk)
        answers = OldAnswer.objects.filter(response=stored)
        OldAnswer.objects.bulk_create(
            OldAnswer(response=response, **columns)
            for columns in answers.values("question_id", "value", "number", "code")[: 10 + n]
        )
    before = answers_by_round()
    assert set(before) == {demo.pk, later.pk}

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    for table in TABLES:
        assert partitions.partitions(table) == sorted(
            [partitions.default_name(table)]
            + [
                partitions.partition_name(table, r)
                for r in Round.objects.values_list("pk", flat=True)
            ]
        )
    assert answers_by_round() == before
    assert set(Answer.objects.values_list("id", flat=True)) >= ids_before
    assert_each_round_in_its_partition()
    assert triggers() == {(t, n) for t, n in records.TRIGGERS}  # re-created on the new tables
    # The records survived the conversion: only those the old triggers marked stale differ.
    assert records.mismatches() == (3, sorted(copies))
    records.rebuild()
    assert records.mismatches() == (0, [])

    # Writing after the upgrade: the identity goes on, the triggers fire on the new tables.
    post(client, "demo", 2, seed=5)
    assert Answer.objects.filter(round__code="demo").count() > before[demo.pk]
    assert min(set(Answer.objects.values_list("id", flat=True)) - ids_before) > max(ids_before)
    assert_each_round_in_its_partition()
    assert records.mismatches() == (0, [])
    Answer.objects.filter(response__round__code="later").update(number=5)  # by a trigger
    assert records.mismatches()[0] == 3


@pytest.mark.django_db(transaction=True)
def test_a_new_round_gets_its_partitions_and_a_deleted_round_loses_them(
    sipas: Any, client: Client
) -> None:
    survey_round = new_round("new")
    names = {partitions.partition_name(t, survey_round.pk) for t in TABLES}
    for table in TABLES:
        assert partitions.partition_name(table, survey_round.pk) in partitions.partitions(table)
    post(client, "new", 4)
    post(client, "demo", 2)
    assert_each_round_in_its_partition()
    assert (
        rows_by_partition("feedback_responserecord")[
            partitions.partition_name("feedback_responserecord", survey_round.pk)
        ]
        == 4
    )
    assert records.mismatches() == (0, [])

    empty = new_round("empty")
    empty_names = {partitions.partition_name(t, empty.pk) for t in TABLES}
    assert empty_names <= set(partitions.partitions(TABLES[0])) | set(
        partitions.partitions(TABLES[1])
    )
    empty.delete()
    remaining = set(partitions.partitions(TABLES[0])) | set(partitions.partitions(TABLES[1]))
    assert not empty_names & remaining and names <= remaining
    post(client, "new", 1, seed=9)  # the other rounds go on working
    assert_each_round_in_its_partition()


@pytest.mark.django_db(transaction=True)
def test_a_round_without_partitions_fills_the_default_until_they_are_created(
    sipas: Any, client: Client
) -> None:
    survey_round = new_round("raw", signals=False)
    post(client, "raw", 3)
    assert rows_by_partition("feedback_responserecord") == {"feedback_responserecord_default": 3}
    in_default = rows_by_partition("feedback_answer")["feedback_answer_default"]
    assert in_default == Answer.objects.filter(round=survey_round).count() > 0
    values = compute_values(round_id=survey_round.pk, version_id=survey_round.version_id)

    created = partitions.ensure_round_partitions([survey_round.pk])
    assert sorted(created) == sorted(partitions.partition_name(t, survey_round.pk) for t in TABLES)
    assert_each_round_in_its_partition()  # moved out of the DEFAULT partitions
    assert records.mismatches() == (0, [])
    assert compute_values(round_id=survey_round.pk, version_id=survey_round.version_id) == values
    assert partitions.ensure_round_partitions([survey_round.pk]) == []  # once


def explained(statement: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {statement}")
        return "\n".join(line for (line,) in cursor.fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize("source", [sql.ANSWERS, sql.RECORDS])
def test_a_rounds_scoring_reads_only_its_own_partition(
    sipas: Any, client: Client, source: str
) -> None:
    other = new_round("other")
    post(client, "demo", 3)
    post(client, "other", 3, seed=2)
    demo = Round.objects.get(code="demo")
    with CaptureQueriesContext(connection) as queries:
        values = compute_values(round_id=demo.pk, version_id=demo.version_id, source=source)
    assert values
    main = "feedback_answer" if source == sql.ANSWERS else "feedback_responserecord"
    reads = [q["sql"] for q in queries if any(t in q["sql"] for t in TABLES)]
    assert any(main in statement for statement in reads), f"the engine read no {main}"
    for statement in reads:
        plan = explained(statement)
        for table in TABLES:
            own = partitions.partition_name(table, demo.pk)
            assert (own in plan) == (table in statement), (statement, plan)
            others = set(partitions.partitions(table)) - {own}
            assert not [name for name in others if name in plan], plan
        assert "_round_" + str(other.pk) not in plan
