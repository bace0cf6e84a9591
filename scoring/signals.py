"""Signals of ``scoring``, for downstream apps (``scoring`` imports none of their receivers).

``run_published`` is sent inside the transaction that publishes a run, before it commits: a
receiver writing rows (``webhooks`` writes its outbox) writes them in that transaction; one
acting outside the database defers that to ``transaction.on_commit``.
"""

from django.dispatch import Signal

run_published = Signal()
"""A scoring run was published (superseding the round's previous one), in the current
transaction. Argument: ``run`` (saved, status ``published``)."""
