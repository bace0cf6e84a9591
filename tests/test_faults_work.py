"""Faults of the work queue: the broker down when work is requested, a worker killed mid-import.

Work a worker must do (a recompute, a large paper import) is created only if its task could
be queued: with the broker down the request answers 503 within seconds and leaves nothing
running or pending. The broker here is a ``redis-server`` this module starts on a port of its
own and stops, never the shared Redis. A Celery worker killed (SIGKILL) in the middle of a
paper import leaves its last batch uncommitted; once a worker is back and the beat sweep
queues the import again, the import resumes after its last committed row and every row ends
up stored exactly once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count
from django.test import Client
from django.utils import translation

from config.queueing import BrokerUnavailable
from feedback.models import PaperImport, Response
from feedback.paper import services as paper
from scoring.models import Run
from surveys.models import Round
from tests.support.faults import OwnRedis, free_port
from tests.support.paper import csv_bytes, row
from tests.support.processes import wait_for
from tests.support.queues import Workers, publishing_to, routed_to_own_queue

pytestmark = [pytest.mark.fault, pytest.mark.postgres, pytest.mark.redis]

BROKER_PORTS = range(6400, 6410)
IMPORTS = "/api/v1/paper-imports/"


@pytest.fixture
def broker(transactional_db: None) -> Iterator[OwnRedis]:
    """Tasks of this process go to an own redis-server (not run in-process), which the test
    may kill; afterwards the settings' broker is back."""
    server = OwnRedis(free_port(BROKER_PORTS))
    server.start()
    with publishing_to(server.url):
        try:
            yield server
        finally:
            server.kill()


@pytest.fixture
def analyst(client: Client) -> Client:
    user = User.objects.create_user("analyst", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="add_run"),
        Permission.objects.get(codename="view_run"),
        Permission.objects.get(codename="import_paper_forms"),
        Permission.objects.get(codename="view_paperimport"),
    )
    client.force_login(user)
    return client


def timed(request: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    answer = request()
    return answer, time.monotonic() - started


def forms_file(count: int) -> SimpleUploadedFile:
    return SimpleUploadedFile("forms.csv", csv_bytes([row(f"F-{n}") for n in range(count)]))


@pytest.mark.django_db(transaction=True)
class TestBrokerDown:
    def test_a_recompute_answers_503_fast_and_leaves_no_run_and_works_once_the_broker_is_back(
        self, broker: OwnRedis, analyst: Client, sipas
    ) -> None:
        broker.kill()

        response, seconds = timed(lambda: analyst.post("/api/v1/rounds/demo/recompute/"))

        assert response.status_code == 503, response.content
        assert response.json()["code"] == "queue_unavailable"
        assert seconds < 5
        assert not Run.objects.exists()
        # Nothing blocks the round: with the broker back, the next request starts a run.
        broker.start()
        again = analyst.post("/api/v1/rounds/demo/recompute/")
        assert again.status_code == 202, again.content
        assert Run.objects.get().status == Run.Status.RUNNING

    def test_a_paper_import_answers_503_fast_and_leaves_no_import(
        self, broker: OwnRedis, analyst: Client, sipas, settings
    ) -> None:
        settings.PAPER_IMPORT_SYNC_MAX_ROWS = 2
        broker.kill()

        response, seconds = timed(
            lambda: analyst.post(IMPORTS, {"round": "demo", "file": forms_file(3)})
        )

        assert response.status_code == 503, response.content
        assert response.json()["code"] == "queue_unavailable"
        assert seconds < 5
        assert not PaperImport.objects.exists() and not Response.objects.exists()

    def test_the_admin_says_so_for_a_recompute_and_a_paper_import(
        self, broker: OwnRedis, analyst: Client, sipas, settings
    ) -> None:
        settings.PAPER_IMPORT_SYNC_MAX_ROWS = 2
        broker.kill()

        recompute = analyst.post("/admin/scoring/run/recompute/", {"round": "demo"})
        upload = analyst.post(
            "/admin/feedback/paperimport/add/",
            {"round": Round.objects.get(code="demo").pk, "file": forms_file(3)},
            follow=True,
        )

        with translation.override(recompute.wsgi_request.LANGUAGE_CODE):
            unavailable = BrokerUnavailable().detail
        assert recompute.status_code == 200
        assert recompute.context["form"].non_field_errors() == [unavailable]
        assert upload.status_code == 200
        assert upload.redirect_chain[-1][0].endswith("/admin/feedback/paperimport/add/")
        assert [str(m) for m in upload.context["messages"]] == [unavailable]
        assert not Run.objects.exists() and not PaperImport.objects.exists()

    def test_the_rounds_page_says_so_when_its_recompute_cannot_be_queued(
        self, broker: OwnRedis, analyst: Client, sipas
    ) -> None:
        User.objects.get(username="analyst").user_permissions.add(
            Permission.objects.get(codename="view_round")
        )
        demo = Round.objects.get(code="demo")
        broker.kill()

        response, seconds = timed(
            lambda: analyst.post(f"/admin/surveys/round/{demo.pk}/recompute/", follow=True)
        )

        with translation.override(response.wsgi_request.LANGUAGE_CODE):
            unavailable = BrokerUnavailable().detail
        assert seconds < 5
        page = f"/admin/surveys/round/{demo.pk}/change/#publication"
        assert response.redirect_chain[-1][0] == page
        assert [str(m) for m in response.context["messages"]] == [unavailable]
        assert not Run.objects.exists()

    def test_work_queued_never_taken_up_is_queued_again_by_the_sweep(
        self, broker: OwnRedis, analyst: Client, sipas, settings
    ) -> None:
        settings.PAPER_IMPORT_SYNC_MAX_ROWS = 2
        settings.STALLED_WORK_MINUTES = 0
        import redis

        run_id = analyst.post("/api/v1/rounds/demo/recompute/").json()["id"]
        import_id = analyst.post(IMPORTS, {"round": "demo", "file": forms_file(3)}).json()["id"]
        queued = redis.Redis.from_url(broker.url)
        assert queued.llen("celery") == 2
        queued.delete("celery")  # the messages are lost (say, a broker restarted empty)

        from scoring import services

        assert services.requeue_stalled_runs() == [run_id]
        assert paper.requeue_stalled_paper_imports() == [import_id]
        assert queued.llen("celery") == 2


@pytest.fixture
def import_queue(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Paper-import tasks of this process go through Redis to this test's own queue."""
    task = "feedback.import_paper_forms"
    with routed_to_own_queue(monkeypatch, "fault-import", task) as queue:
        yield queue


@pytest.mark.django_db(transaction=True)
def test_a_paper_import_whose_worker_is_killed_resumes_and_stores_each_row_once(
    import_queue: str, analyst: Client, sipas, settings
) -> None:
    settings.PAPER_IMPORT_SYNC_MAX_ROWS = 10
    settings.STALLED_WORK_MINUTES = 0  # the sweep queues again at once what no worker runs
    total = 1500
    lines = [row(f"F-{n}", S01="9" if n % 10 == 0 else "4") for n in range(total)]
    lines += [row("F-1"), row("F-2")]  # repeated forms: duplicates, not stored twice
    with Workers(import_queue) as workers:
        workers.start()
        upload = analyst.post(
            IMPORTS,
            {"round": "demo", "file": SimpleUploadedFile("forms.csv", csv_bytes(lines))},
        )
        assert upload.status_code == 202, upload.content
        import_id = upload.json()["id"]

        def partly_done() -> bool:
            done = PaperImport.objects.get(pk=import_id)
            return done.status == "running" and done.processed_rows >= 3 * paper.BATCH_ROWS

        wait_for(partly_done, timeout=90, what="the import to be partly done")
        workers[0].send_signal(signal.SIGKILL)  # no clean-up of any kind
        assert workers[0].wait(timeout=20) == -signal.SIGKILL
        stopped = PaperImport.objects.get(pk=import_id)
        assert stopped.status == "running" and 0 < stopped.last_row < total + 1
        stored_at_kill = Response.objects.filter(import_batch_id=import_id).count()
        assert stored_at_kill == stopped.accepted_rows  # the open batch was rolled back

        workers.start()
        # Beat's sweep, every minute in production: the dead worker's lock is free once the
        # server has noticed its session ended.
        wait_for(
            lambda: paper.requeue_stalled_paper_imports() == [import_id],
            timeout=30,
            what="the sweep to queue the import again",
        )

        def finished() -> PaperImport | None:
            done = PaperImport.objects.get(pk=import_id)
            return done if done.status in ("done", "failed") else None

        done = wait_for(finished, timeout=120, what="the resumed import to finish")

    assert (done.status, done.attempts) == ("done", 2), done.error
    assert (done.processed_rows, done.accepted_rows, done.rejected_rows) == (total + 2, 1350, 150)
    assert done.duplicate_rows == 2
    stored = Response.objects.filter(import_batch_id=import_id)
    assert stored.count() == 1350 > stored_at_kill
    assert not stored.values("paper_key").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert sorted(entry["row"] for entry in done.report) == list(range(2, total + 4))
