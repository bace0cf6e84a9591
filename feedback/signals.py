"""Signal receivers of ``feedback``: a survey round's partitions follow the round.

``surveys`` knows nothing of ``feedback`` (data flows one way), so the answers' and records'
partitions of a round (``feedback.partitions``, PostgreSQL only) are created here when a
round is created, in its transaction, and dropped when it is deleted.
"""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from feedback import partitions
from surveys.models import Round


@receiver(post_save, sender=Round, dispatch_uid="feedback_round_partitions")
def create_round_partitions(
    sender: type[Round], instance: Round, created: bool, using: str, **kwargs: Any
) -> None:
    if created:
        partitions.ensure_round_partitions([instance.pk], connections[using])


@receiver(post_delete, sender=Round, dispatch_uid="feedback_round_partitions_dropped")
def drop_round_partitions(sender: type[Round], instance: Round, using: str, **kwargs: Any) -> None:
    partitions.drop_round_partitions(instance.pk, connections[using])
