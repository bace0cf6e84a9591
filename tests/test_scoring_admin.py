"""The admin of scoring runs and scores: pages render, recomputes start there, records stay."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from scoring import services
from scoring.models import Run, Score
from tests.factories import RunFactory
from tests.support.responses import answer
from tests.support.users import staff_client

pytestmark = pytest.mark.django_db

RECOMPUTE = reverse("admin:scoring_run_recompute")
RUNS = reverse("admin:scoring_run_changelist")
SCORES = reverse("admin:scoring_score_changelist")


@pytest.fixture
def published_run(sipas) -> Run:
    for s01 in (5, 4, 2):
        answer("19", S01=s01)
    answer("01", S01=1)
    return services.recompute_round(round_code="demo")


@pytest.fixture(autouse=True)
def _english_admin(settings) -> None:
    """Messages are compared in English (the site's default language is Vietnamese)."""
    settings.LANGUAGE_CODE = "en"


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_run_and_score_pages_render_for_a_superuser(
    admin_client: Client, published_run: Run
) -> None:
    score = Score.objects.filter(run=published_run, scope="unit").first()
    pages = [
        RUNS,
        f"{RUNS}?status__exact=published&round__id__exact={published_run.round_id}",
        reverse("admin:scoring_run_change", args=[published_run.pk]),
        RECOMPUTE,
        SCORES,
        f"{SCORES}?run__id__exact={published_run.pk}&scope__exact=unit&suppressed__exact=1",
        f"{SCORES}?indicator__id__exact={score.indicator_id}&q=S01",
        reverse("admin:scoring_score_change", args=[score.pk]),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    run_list = admin_client.get(RUNS).content.decode()
    assert RECOMPUTE in run_list and "recompute_rounds" in run_list
    run_page = admin_client.get(reverse("admin:scoring_run_change", args=[published_run.pk]))
    assert f"?run__id__exact={published_run.pk}" in run_page.content.decode()


def test_runs_and_scores_cannot_be_added_changed_or_deleted(
    admin_client: Client, published_run: Run
) -> None:
    change = reverse("admin:scoring_run_change", args=[published_run.pk])
    assert admin_client.get(reverse("admin:scoring_run_add")).status_code == 403
    assert admin_client.post(change, {"status": "failed"}).status_code == 403
    assert (
        admin_client.get(reverse("admin:scoring_run_delete", args=[published_run.pk])).status_code
        == 403
    )
    assert admin_client.get(reverse("admin:scoring_score_add")).status_code == 403
    published_run.refresh_from_db()
    assert published_run.status == Run.Status.PUBLISHED


def test_the_recompute_view_starts_a_run_that_ends_published(
    admin_client: Client, published_run: Run
) -> None:
    response = admin_client.post(RECOMPUTE, {"round": "demo"})

    assert response.status_code == 302 and response["Location"] == RUNS
    run = Run.objects.get(round__code="demo", status=Run.Status.PUBLISHED)
    assert run.pk != published_run.pk  # tasks run in-process in tests
    assert texts(response) == [f"Run {run.pk} of round demo started."]
    published_run.refresh_from_db()
    assert published_run.status == Run.Status.SUPERSEDED


def test_an_unknown_round_is_a_form_error(admin_client: Client, sipas) -> None:
    response = admin_client.post(RECOMPUTE, {"round": "nope"})

    assert response.status_code == 200
    assert "round" in response.context["form"].errors
    assert not Run.objects.exists()


def test_a_round_already_running_is_joined_not_started_again(
    admin_client: Client, published_run: Run, django_capture_on_commit_callbacks
) -> None:
    running = RunFactory(round=published_run.round)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(RECOMPUTE, {"round": "demo"})

    assert response.status_code == 302 and not callbacks
    assert texts(response) == [f"Run {running.pk} of round demo is already running."]


def test_the_action_recomputes_the_rounds_of_the_selected_runs(
    admin_client: Client, published_run: Run, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            RUNS, {"action": "recompute_rounds", "_selected_action": [published_run.pk]}
        )

    assert response.status_code == 302
    latest = Run.objects.get(round__code="demo", status=Run.Status.PUBLISHED)
    assert latest.pk != published_run.pk
    assert texts(response) == [f"Run {latest.pk} of round demo started."]


def test_staff_without_the_permission_get_403(client: Client, published_run: Run) -> None:
    staff_client(client)
    assert client.get(RECOMPUTE).status_code == 403
    assert client.post(RECOMPUTE, {"round": "demo"}).status_code == 403
    assert client.get(RUNS).status_code == 403
    assert Run.objects.count() == 1


def test_staff_who_may_only_view_runs_see_no_recompute(client: Client, published_run: Run) -> None:
    staff_client(client, "view_run")
    page = client.get(RUNS)
    assert page.status_code == 200
    assert (
        RECOMPUTE not in page.content.decode() and "recompute_rounds" not in page.content.decode()
    )
    assert client.post(RECOMPUTE, {"round": "demo"}).status_code == 403
    response = client.post(
        RUNS, {"action": "recompute_rounds", "_selected_action": [published_run.pk]}
    )
    assert Run.objects.count() == 1, response.status_code


def test_staff_with_the_permission_start_a_recompute(
    client: Client, published_run: Run, django_capture_on_commit_callbacks
) -> None:
    staff_client(client, "view_run", "add_run")
    assert client.get(RECOMPUTE).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(RECOMPUTE, {"round": "demo"})
    assert response.status_code == 302
    assert (
        Run.objects.filter(round__code="demo", status=Run.Status.PUBLISHED)
        .exclude(pk=published_run.pk)
        .exists()
    )
