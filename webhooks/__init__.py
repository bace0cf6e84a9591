"""Signed webhooks (Standard Webhooks): subscriptions, a durable outbox of events and the
log of their deliveries. Downstream of ``surveys``, ``feedback`` and ``scoring``, which know
nothing of it: it listens to their signals (``webhooks.receivers``). See docs/webhooks.md.
"""
