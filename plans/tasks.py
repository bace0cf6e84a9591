"""Celery tasks of action plans: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="plans.remind_tasks", acks_late=True)
def remind_tasks() -> int:
    """Daily (Celery beat): e-mail about tasks near their deadline and overdue tasks."""
    from plans import services

    return services.remind_tasks()
