"""Signals of ``feedback``: a survey round's partitions follow the round; new responses and
petitions, and petitions' status changes, are announced to downstream apps.

``surveys`` knows nothing of ``feedback`` (data flows one way), so the answers' and records'
partitions of a round (``feedback.partitions``, PostgreSQL only) are created here when a
round is created, in its transaction, and dropped when it is deleted.

The announcements (``responses_created``, ``petition_created``, ``petition_status_changed``)
are sent *inside* the transaction that writes the rows, before it commits: a receiver that
writes rows of its own (``webhooks`` writes its outbox) writes them in that transaction, so
they are committed, or rolled back, with the response or petition. A receiver that acts
outside the database must defer that to ``transaction.on_commit``. ``feedback`` imports none
of its receivers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from feedback import partitions
from surveys.models import Round

responses_created = Signal()
"""New responses were stored (any channel), in the current transaction. Arguments:
``response_ids`` (list of ``Response`` ids, all of one round) and ``round_id``; their answers
are in the database, readable in the same transaction."""

petition_created = Signal()
"""A petition was stored, in the current transaction. Argument: ``petition``."""

petition_status_changed = Signal()
"""A petition's status changed, in the current transaction. Arguments: ``petition`` (saved,
with its new status), ``previous_status`` and ``at``."""

# Callables answering whether some receiver of ``responses_created`` writes in the response's
# transaction right now (say, webhooks with a subscription to new responses). Storing a
# response on PostgreSQL normally needs no transaction of its own (one message,
# ``services.store_response``); while a watcher says yes, one is opened around it.
response_watchers: list[Callable[[], bool]] = []


def responses_watched() -> bool:
    """Whether storing a response must run in a transaction for ``responses_created``'s
    receivers (``response_watchers``)."""
    return any(watched() for watched in response_watchers)


@receiver(post_save, sender=Round, dispatch_uid="feedback_round_partitions")
def create_round_partitions(
    sender: type[Round], instance: Round, created: bool, using: str, **kwargs: Any
) -> None:
    if created:
        partitions.ensure_round_partitions([instance.pk], connections[using])


@receiver(post_delete, sender=Round, dispatch_uid="feedback_round_partitions_dropped")
def drop_round_partitions(sender: type[Round], instance: Round, using: str, **kwargs: Any) -> None:
    partitions.drop_round_partitions(instance.pk, connections[using])
