"""Celery tasks of webhooks: one delivery attempt, and the sweep of due deliveries."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="webhooks.deliver", acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Make one attempt of a delivery; queue the next one if it failed and may be retried."""
    from webhooks import services

    delay = services.attempt_delivery(delivery_id)
    if delay is not None:
        services.schedule_next(delivery_id, delay)


@shared_task(name="webhooks.queue_due_deliveries", ignore_result=True)
def queue_due_deliveries() -> list[int]:
    """Every minute (beat): queue the due deliveries no worker holds."""
    from webhooks import services

    return services.queue_due_deliveries()
