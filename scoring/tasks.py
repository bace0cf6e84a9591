"""Celery tasks of scoring: thin wrappers around ``scoring.services``."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(
    name="scoring.compute_and_publish",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def compute_and_publish(run_id: int) -> str:
    """Compute a started run and publish it; a repeated delivery finds it done."""
    from scoring import services

    return services.compute_and_publish_run(run_id=run_id).status


@shared_task(name="scoring.recompute_recent_rounds", acks_late=True)
def recompute_recent_rounds() -> list[int]:
    """Nightly: start a run for every open or recently closed round and queue it."""
    from scoring import selectors, services

    started = []
    for code in selectors.rounds_to_recompute():
        run, created = services.request_recompute(round_code=code)
        if created:
            started.append(run.pk)
    return started


@shared_task(name="scoring.requeue_stalled_runs", ignore_result=True)
def requeue_stalled_runs() -> list[int]:
    """Every minute: queue again the runs no worker computes (see the service)."""
    from scoring import services

    return services.requeue_stalled_runs()
