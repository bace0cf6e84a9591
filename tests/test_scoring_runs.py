"""Scoring runs: one running and one published run per round; publishing switches atomically."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from scoring import services
from scoring.models import Run, Score
from surveys.models import Indicator
from tests.factories import RunFactory
from tests.support.processes import wait_for

pytestmark = pytest.mark.django_db


def computed(round_code: str = "demo") -> Run:
    run, _ = services.start_run(round_code=round_code)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.COMPUTED, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def published_values(round_code: str = "demo") -> list[float]:
    """What a reader sees: the values of the round's published run."""
    return list(
        Score.objects.filter(run__round__code=round_code, run__status=Run.Status.PUBLISHED)
        .order_by("value")
        .values_list("value", flat=True)
    )


def test_a_second_start_returns_the_running_run(sipas) -> None:
    first, created = services.start_run(round_code="demo")
    again, created_again = services.start_run(round_code="demo")
    assert created and not created_again
    assert again.pk == first.pk
    assert first.code_version and first.settings_used["MIN_PUBLISH_N"] == 30


def test_the_database_holds_one_running_run_per_round(sipas) -> None:
    run, _ = services.start_run(round_code="demo")
    with pytest.raises(IntegrityError), transaction.atomic():
        RunFactory(round=run.round)


def test_a_run_whose_worker_died_is_failed_by_the_next_start(sipas, settings) -> None:
    stale, _ = services.start_run(round_code="demo")
    Run.objects.filter(pk=stale.pk).update(
        started_at=timezone.now() - dt.timedelta(minutes=settings.SCORING_RUN_TIMEOUT_MINUTES + 1)
    )
    fresh, created = services.start_run(round_code="demo")
    stale.refresh_from_db()
    assert created and fresh.pk != stale.pk
    assert stale.status == Run.Status.FAILED and stale.error


@contextlib.contextmanager
def live_worker(run: Run) -> Iterator[None]:
    """A worker's database session holding the run's liveness lock (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        yield
        return
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        host=db["HOST"],
        port=db["PORT"] or 5432,
        password=db["PASSWORD"] or None,
        autocommit=True,
    ) as session:
        session.execute("SELECT pg_advisory_lock(%s, %s)", [services.RUN_LOCK, run.pk])
        backend = session.execute("SELECT pg_backend_pid()").fetchone()[0]
        yield
    wait_for_the_session_to_end(backend)


def wait_for_the_session_to_end(backend: int) -> None:
    """Closing a session returns before its server process has let go of its locks; what
    follows a worker's death is only defined once the server has released them."""

    def released() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) = 0 FROM pg_locks WHERE pid = %s", [backend])
            return cursor.fetchone()[0]

    wait_for(released, timeout=10, what=f"the worker's session {backend} to release its locks")


def taken_up(run: Run, *, seen: dt.datetime) -> None:
    """The run as a worker leaves it: started long ago, last heartbeat at ``seen``."""
    Run.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - dt.timedelta(days=1), heartbeat_at=seen
    )


def test_heartbeats_keep_a_long_run_alive_past_the_time_out(sipas, settings) -> None:
    run, _ = services.start_run(round_code="demo")
    taken_up(run, seen=timezone.now() - dt.timedelta(minutes=1))
    with live_worker(run):
        again, created = services.start_run(round_code="demo")
    assert (again.pk, created) == (run.pk, False)


def test_a_run_without_heartbeat_for_the_time_out_is_failed(sipas, settings) -> None:
    run, _ = services.start_run(round_code="demo")
    silent = dt.timedelta(minutes=settings.SCORING_RUN_TIMEOUT_MINUTES + 1)
    taken_up(run, seen=timezone.now() - silent)
    with live_worker(run):  # a hung worker: its session lives, it shows no sign of life
        fresh, created = services.start_run(round_code="demo")
    run.refresh_from_db()
    assert created and fresh.pk != run.pk
    assert run.status == Run.Status.FAILED
    assert str(settings.SCORING_RUN_TIMEOUT_MINUTES) in run.error


@pytest.mark.postgres
def test_a_run_whose_worker_session_ended_is_failed_at_once(sipas) -> None:
    run, _ = services.start_run(round_code="demo")
    taken_up(run, seen=timezone.now())
    with live_worker(run):
        again, created = services.start_run(round_code="demo")
        assert (again.pk, created) == (run.pk, False)  # alive: joined
    # The session is gone, its lock with it: no waiting for the time-out.
    fresh, created = services.start_run(round_code="demo")
    run.refresh_from_db()
    assert created and fresh.pk != run.pk
    assert run.status == Run.Status.FAILED and run.finished_at is not None


@pytest.mark.postgres
def test_a_queued_run_not_yet_taken_up_is_joined(sipas) -> None:
    run, _ = services.start_run(round_code="demo")  # no worker has it: no heartbeat, no lock
    again, created = services.start_run(round_code="demo")
    assert (again.pk, created) == (run.pk, False)


def test_computing_a_run_records_heartbeats_and_progress(sipas) -> None:
    run = services.recompute_round(round_code="demo")
    assert run.heartbeat_at is not None and run.heartbeat_at >= run.started_at


def test_a_run_taken_up_by_another_worker_is_left_to_it(sipas) -> None:
    run, _ = services.start_run(round_code="demo")
    with live_worker(run):
        if connection.vendor == "postgresql":
            assert services.compute_run(run_id=run.pk).status == Run.Status.RUNNING
    assert services.compute_run(run_id=run.pk).status == Run.Status.COMPUTED


def test_an_unknown_round_is_named(db) -> None:
    with pytest.raises(ValidationError) as error:
        services.start_run(round_code="nope")
    assert "round" in error.value.message_dict


def test_publishing_supersedes_the_previous_run_and_keeps_it_for_audit(sipas) -> None:
    indicator = Indicator.objects.get(version=sipas, code="SIPAS")
    old = computed()
    Score.objects.create(run=old, scope="national", indicator=indicator, value=70.0)
    services.publish_run(run_id=old.pk)
    assert published_values() == [70.0]

    new = computed()
    Score.objects.create(run=new, scope="national", indicator=indicator, value=80.0)
    assert published_values() == [70.0]  # computed, not yet published
    services.publish_run(run_id=new.pk)

    assert published_values() == [80.0]
    old.refresh_from_db()
    assert old.status == Run.Status.SUPERSEDED
    assert Score.objects.filter(run=old).exists()


def test_publishing_twice_is_a_no_op_and_only_computed_runs_publish(sipas) -> None:
    run = computed()
    first = services.publish_run(run_id=run.pk)
    assert services.publish_run(run_id=run.pk).published_at == first.published_at
    running, _ = services.start_run(round_code="demo")
    with pytest.raises(ValidationError):
        services.publish_run(run_id=running.pk)


def test_a_failed_run_leaves_the_published_one_in_place(sipas) -> None:
    indicator = Indicator.objects.get(version=sipas, code="SIPAS")
    good = computed()
    Score.objects.create(run=good, scope="national", indicator=indicator, value=75.0)
    services.publish_run(run_id=good.pk)
    broken, _ = services.start_run(round_code="demo")
    Score.objects.create(run=broken, scope="national", indicator=indicator, value=1.0)
    services.fail_run(run_id=broken.pk, error="database went away")
    assert published_values() == [75.0]
    with pytest.raises(ValidationError):
        services.publish_run(run_id=broken.pk)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_of_one_round_make_one_run(sipas) -> None:
    barrier = threading.Barrier(8)
    results: list[int] = []

    def start() -> None:
        try:
            barrier.wait()
            run, _ = services.start_run(round_code="demo")
            results.append(run.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert Run.objects.count() == 1


def test_why_a_run_failed_is_shown_in_full_to_staff_only(sipas, client, django_user_model) -> None:
    from django.contrib.auth.models import Permission

    run, _ = services.start_run(round_code="demo")
    services.fail_run(run_id=run.pk, error='ProgrammingError: relation "secret_table" is gone')
    public = [client.get(f"/api/v1/runs/{run.pk}/").json(), client.get("/api/v1/runs/").json()]

    staff = django_user_model.objects.create_user("auditor", password="a-long-password")
    staff.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(staff)
    audited = client.get(f"/api/v1/runs/{run.pk}/").json()

    assert public[0]["status"] == "failed" and public[0]["error"]
    assert "secret_table" not in str(public)
    assert "secret_table" in audited["error"]
