"""Celery tasks of webhooks: one delivery attempt, and the sweep of due deliveries."""

from __future__ import annotations

from celery import Task, shared_task


@shared_task(bind=True, name="webhooks.deliver", acks_late=True, ignore_result=True)
def deliver(self: Task, delivery_id: int) -> None:
    """Make one attempt of a delivery; queue the next one, on the queue this one came from,
    if it failed and may be retried."""
    from webhooks import services

    delay = services.attempt_delivery(delivery_id)
    if delay is not None and not self.request.is_eager:  # in-process: the sweep retries
        queue = (self.request.delivery_info or {}).get("routing_key")
        services.schedule_next(delivery_id, delay, queue=queue)


@shared_task(name="webhooks.queue_due_deliveries", ignore_result=True)
def queue_due_deliveries() -> list[int]:
    """Every minute (beat): queue the due deliveries no worker holds."""
    from webhooks import services

    return services.queue_due_deliveries()


@shared_task(name="webhooks.purge_old_events", acks_late=True, ignore_result=True)
def purge_old_events() -> int:
    """Daily (beat): delete old events whose deliveries are all finished."""
    from webhooks import services

    return services.purge_old_events()
