"""Recomputing a round: command, API, Celery task and beat schedule end to end."""

from __future__ import annotations

import datetime as dt
import uuid
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from feedback.models import Answer, Response
from feedback.services import submit_response
from scoring import selectors
from scoring.models import Run, Score
from surveys.models import Round
from tests.factories import RunFactory
from tests.support.responses import answer, valid_answers

pytestmark = pytest.mark.django_db


def published(round_code: str = "demo") -> Run:
    return Run.objects.get(round__code=round_code, status=Run.Status.PUBLISHED)


def test_the_command_computes_and_publishes_with_a_progress_line(demo_responses) -> None:
    out = StringIO()
    call_command("recompute_scores", "--round", "demo", stdout=out)
    run = published()
    assert f"run {run.pk} published" in out.getvalue()
    assert "computing indicators" in out.getvalue()
    assert run.response_count == 4 and run.code_version
    scored = Answer.objects.filter(
        response__round__code="demo",
        question__indicator__aggregation="share",
        question__excluded_from_indices=False,
    )
    assert run.answer_count == scored.count() > 0
    s01 = Score.objects.get(run=run, indicator__code="S01", unit__code="19")
    assert s01.value == pytest.approx(200 / 3)  # 5 and 4 satisfied of 5, 4, 2
    assert s01.suppressed  # 3 respondents < MIN_PUBLISH_N
    scopes = set(Score.objects.filter(run=run).values_list("scope", flat=True))
    assert scopes == {"unit", "national", "national_mean"}


def test_suppressed_units_are_not_ranked(demo_responses, settings) -> None:
    settings.MIN_PUBLISH_N = 2
    for s01 in (3, 5):
        answer("02", S01=s01)
    call_command("recompute_scores", "--round", "demo", stdout=StringIO())
    scores = Score.objects.filter(run=published(), indicator__code="S01", scope="unit")
    by_unit = {s.unit.code: s for s in scores}
    assert by_unit["19"].rank == 1 and by_unit["19"].rank_of == 1
    assert by_unit["01"].suppressed and by_unit["01"].rank is None
    # 01 alone withheld would come back from the national value and the others': the next
    # smallest unit (02, 2 respondents) is withheld with it (complementary suppression).
    assert by_unit["02"].n == 2 and by_unit["02"].suppressed and by_unit["02"].rank is None


def test_an_unknown_round_is_a_command_error(db) -> None:
    with pytest.raises(Exception, match="nope"):
        call_command("recompute_scores", "--round", "nope", stdout=StringIO())


def test_staff_start_a_recompute_through_the_api_and_follow_the_run(
    demo_responses, recompute_client: Client, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = recompute_client.post("/api/v1/rounds/demo/recompute/")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "running" and body["round"] == "demo"
    followed = recompute_client.get(f"/api/v1/runs/{body['id']}/").json()
    assert followed["status"] == "published"  # tasks run in-process in tests


def test_a_second_request_while_a_run_runs_gets_that_run(
    demo_responses, recompute_client: Client
) -> None:
    running = RunFactory(round=Round.objects.get(code="demo"))
    response = recompute_client.post("/api/v1/rounds/demo/recompute/")
    assert response.status_code == 202 and response.json()["id"] == running.pk


def test_only_staff_with_the_permission_may_start_a_recompute(
    demo_responses, client: Client
) -> None:
    assert client.post("/api/v1/rounds/demo/recompute/").status_code in (401, 403)
    user = get_user_model().objects.create_user("clerk", password="x-long-password")
    client.force_login(user)
    assert client.post("/api/v1/rounds/demo/recompute/").status_code == 403
    assert not Run.objects.exists()


def test_an_unknown_run_is_a_json_404(client: Client, db) -> None:
    response = client.get("/api/v1/runs/999/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_beat_recomputes_nightly_at_two(settings) -> None:
    from config.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["recompute-scores-nightly"]
    assert entry["task"] in app.tasks
    assert entry["schedule"].hour == {2} and entry["schedule"].minute == {0}
    assert settings.CELERY_TIMEZONE == "Asia/Ho_Chi_Minh"


def test_open_and_recently_closed_rounds_are_recomputed(sipas) -> None:
    now = timezone.now()
    recent = Round.objects.get(code="sipas-2022")
    assert selectors.rounds_to_recompute(now=now) == ["demo"]
    Round.objects.filter(pk=recent.pk).update(
        opens_at=now - dt.timedelta(days=60), closes_at=now - dt.timedelta(days=10)
    )
    assert selectors.rounds_to_recompute(now=now) == ["demo", "sipas-2022"]


def test_agencies_named_by_responses_get_their_own_values(sipas) -> None:
    from surveys.loaders import ensure_demo_agencies

    ensure_demo_agencies()
    for s01 in (5, 1):
        submit_response(
            round_code="demo",
            unit_code="19",
            agency_code="19-TTPVHCC",
            answers=valid_answers(S01=s01),
            channel=Response.Channel.API,
            client_id=uuid.uuid4(),
        )
    answer("19", S01=5)  # names no agency: counts for the province only
    call_command("recompute_scores", "--round", "demo", stdout=StringIO())
    run = published()
    agency = Score.objects.get(run=run, scope="agency", indicator__code="S01")
    assert (agency.agency.code, agency.unit.code) == ("19-TTPVHCC", "19")
    assert agency.value == pytest.approx(50.0) and agency.n == 2
    province = Score.objects.get(run=run, scope="unit", unit__code="19", indicator__code="S01")
    assert province.value == pytest.approx(200 / 3)


def test_old_runs_beyond_the_retention_are_deleted(demo_responses, settings) -> None:
    settings.SCORING_KEEP_RUNS = 2
    for _ in range(4):
        call_command("recompute_scores", "--round", "demo", stdout=StringIO())
    runs = Run.objects.filter(round__code="demo")
    assert runs.filter(status="published").count() == 1
    assert runs.filter(status="superseded").count() == 2
    assert set(Score.objects.values_list("run_id", flat=True)) == set(
        runs.values_list("id", flat=True)
    )


def test_if_unpublished_skips_a_round_already_published(demo_responses) -> None:
    call_command("recompute_scores", "--round", "demo", stdout=StringIO())
    out = StringIO()
    call_command("recompute_scores", "--round", "demo", "--if-unpublished", stdout=out)
    assert "already published" in out.getvalue()
    assert Run.objects.filter(round__code="demo").count() == 1
