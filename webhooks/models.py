"""Webhook subscriptions, the events they receive and every delivery attempt.

An ``Event`` and one ``Delivery`` per subscription that asked for its type are written in the
transaction that writes what the event tells (a response, a petition, a published run): the
outbox. They are committed with it, or rolled back with it, and a pending delivery stays in the
database until a worker records its outcome, so a worker that dies loses nothing
(``services.queue_due_deliveries`` hands it to another). Each attempt is logged as a
``DeliveryAttempt`` with its HTTP status and time.
"""

from __future__ import annotations

import base64
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    RESPONSE_CREATED = "response.created", _("a response was submitted")
    RUN_PUBLISHED = "run.published", _("a scoring run was published")
    PETITION_CREATED = "petition.created", _("a petition was filed")
    PETITION_STATUS_CHANGED = "petition.status_changed", _("a petition's status changed")


# Sent only by "send test event" (admin, API), never subscribed to.
TEST_EVENT = "webhook.test"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    """The ``webhook-id`` of a message: the same for every attempt to deliver it."""
    return f"msg_{uuid.uuid4().hex}"


class Subscription(models.Model):
    """A receiver's URL and the events it wants, signed with its own secret."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="webhook_subscriptions",
        verbose_name=_("owner"),
        help_text=_("Who created it: told by e-mail when it is disabled."),
    )
    url = models.URLField(_("URL"), max_length=2000)
    events = models.JSONField(_("events"), default=list)
    include_answers = models.BooleanField(
        _("include answers"),
        default=False,
        help_text=_(
            "Send the answers with response.created (only while the owner may view responses)."
        ),
    )
    secret = models.CharField(_("signing secret"), max_length=100, default=new_secret)
    is_active = models.BooleanField(_("active"), default=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # Events in a row whose every attempt failed; reset by any success.
    consecutive_failures = models.PositiveIntegerField(_("events failed in a row"), default=0)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)
    disabled_reason = models.CharField(_("why disabled"), max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")

    def __str__(self) -> str:
        return self.url


class Event(models.Model):
    """Something that happened, as sent to receivers (``data`` of the payload).

    ``answers`` (response.created only) is filled when a subscription asked for them; it is
    sent only to those.
    """

    type = models.CharField(_("type"), max_length=40, db_index=True)
    data = models.JSONField(_("data"))
    answers = models.JSONField(_("answers"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.type} {self.pk}"


class Delivery(models.Model):
    """One event for one subscription: pending until delivered or out of attempts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")  # every attempt failed
        CANCELLED = "cancelled", _("cancelled")  # the subscription was disabled or removed

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.CharField(
        _("webhook-id"), max_length=40, unique=True, default=new_message_id
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    # When its task was last handed to the broker.
    queued_at = models.DateTimeField(_("queued"), default=timezone.now)
    # A worker making an attempt holds the delivery until then (and names itself by a token);
    # past it, the attempt is taken for lost and the delivery is due again.
    leased_until = models.DateTimeField(_("attempt under way until"), null=True, blank=True)
    lease = models.UUIDField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return self.message_id


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery: when, the status code answered (none: no answer)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField(_("attempt"))
    at = models.DateTimeField(_("at"), default=timezone.now)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    succeeded = models.BooleanField(_("succeeded"), default=False)
    error = models.CharField(_("error"), max_length=300, blank=True)

    class Meta:
        ordering = ["delivery", "number", "id"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}: {self.status_code or self.error}"
