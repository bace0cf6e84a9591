"""Queue a Celery task now, or fail fast with a 503 when the broker cannot take it.

Work that a worker must do (a scoring run, a paper import) is recorded in the database
first, then queued here. ``enqueue`` publishes at once, outside any transaction, with a short
retry policy, and raises ``BrokerUnavailable`` if the broker does not take the message: the
caller deletes what it recorded, so nothing is left waiting for a task that does not exist.
The tasks queued this way ignore their result, so publishing never waits on the result
backend (Celery's Redis backend retries for about 20 seconds when Redis is down).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse
from kombu.exceptions import OperationalError as BrokerError

from config.errors import DomainError
from config.schema import ErrorSerializer

logger = logging.getLogger(__name__)


class BrokerUnavailable(DomainError):
    status_code = 503
    code = "queue_unavailable"

    def __init__(self) -> None:
        super().__init__(
            str(
                _(
                    "The task queue is unavailable, so nothing was started. "
                    "Try again in a few minutes."
                )
            )
        )


def enqueue(task: Task, *args: Any) -> None:
    """Publish ``task(*args)`` now, or raise ``BrokerUnavailable`` within about a second."""
    if connection.in_atomic_block and not task.app.conf.task_always_eager:
        # A worker could take the task before the caller's rows are committed.
        raise RuntimeError("enqueue() must run outside a transaction")
    try:
        task.apply_async(
            args=args,
            ignore_result=True,
            retry=True,
            retry_policy=settings.CELERY_PUBLISH_RETRY_POLICY,
        )
    except BrokerError as problem:
        logger.warning("broker unavailable, %s%r not queued: %s", task.name, args, problem)
        raise BrokerUnavailable() from None


def unavailable_response() -> dict[int, OpenApiResponse]:
    """The 503 of an operation that queues work, for ``extend_schema(responses=...)``."""
    return {
        503: OpenApiResponse(
            ErrorSerializer,
            description=_("The task queue is unavailable: nothing was started; try again later."),
        )
    }
