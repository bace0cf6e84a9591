"""Webhooks: the outbox of events, signing (Standard Webhooks), delivery attempts with their
schedule, the sweep that hands due deliveries to workers, and disabling a failing subscription.

The life of a delivery: written ``pending`` with its event, in the transaction of what the event
tells (``record_events``); queued to a worker when that commits. A worker claims it
(``attempt_delivery``: a lease in the database), logs the attempt, POSTs the signed payload
and records the outcome: ``delivered`` on a 2xx, else the next attempt after the next delay of
``WEBHOOK_RETRY_SCHEDULE``, and ``failed`` when none is left. Whatever is pending and due but
held by no worker (its task lost, its worker killed mid-attempt, a delay too long for the
broker) is queued again by ``queue_due_deliveries``, run by Celery beat every minute. A
receiver may thus get a message twice (at least once): the ``webhook-id`` tells a repeat.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError
from standardwebhooks import Webhook

from surveys import scoping
from webhooks import targets
from webhooks.models import TEST_EVENT, Delivery, DeliveryAttempt, Event, EventType, Subscription

logger = logging.getLogger(__name__)

VIEW_RESPONSES = "feedback.view_response"
USER_AGENT = "SIPAS-Webhooks/1"


# --- Settings ------------------------------------------------------------------------------


def retry_schedule() -> list[float]:
    """Seconds to wait before each attempt after the first (``WEBHOOK_RETRY_SCHEDULE``)."""
    return list(settings.WEBHOOK_RETRY_SCHEDULE)


def max_attempts() -> int:
    return 1 + len(retry_schedule())


def lease_seconds() -> float:
    """How long an attempt may take before it is taken for lost: connecting and answering
    may each take ``WEBHOOK_TIMEOUT_SECONDS``."""
    return 2 * settings.WEBHOOK_TIMEOUT_SECONDS + 2


# --- Which subscriptions want what --------------------------------------------------------

# Per process: whether an active subscription wants each event type, and until when that is
# believed (``WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS``); a subscription saved or deleted in this
# process clears it at once. This keeps the cost of a response with no subscriber at nothing.
_WANTED: dict[str, tuple[float, bool]] = {}


def forget_wanted() -> None:
    """Ask the database again which event types are wanted (subscriptions changed)."""
    _WANTED.clear()


def is_wanted(event_type: str) -> bool:
    """Whether some active subscription wants ``event_type`` (cached briefly per process)."""
    now = time.monotonic()
    cached = _WANTED.get(event_type)
    if cached is not None and cached[0] > now:
        return cached[1]
    wanted = any(
        event_type in (events or [])
        for events in Subscription.objects.filter(is_active=True).values_list("events", flat=True)
    )
    _WANTED[event_type] = (now + settings.WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS, wanted)
    return wanted


def responses_wanted() -> bool:
    """``feedback.signals.response_watchers``: store responses in a transaction while some
    subscription wants ``response.created``."""
    return is_wanted(EventType.RESPONSE_CREATED)


def may_receive_answers(subscription: Subscription) -> bool:
    """Whether ``response.created`` carries the answers to this subscription: it asked for
    them and its owner (active) may view responses."""
    owner = subscription.owner
    return subscription.include_answers and owner.is_active and owner.has_perm(VIEW_RESPONSES)


def _subscribers(event_type: str) -> list[Subscription]:
    """Active subscriptions wanting the event, of national staff only: events tell of every
    round, so province staff (``surveys.scoping``) receive none."""
    return [
        subscription
        for subscription in Subscription.objects.filter(
            scoping.national_users("owner__"), is_active=True
        ).select_related("owner")
        if event_type in (subscription.events or [])
    ]


# --- The outbox ---------------------------------------------------------------------------


def record_events(
    event_type: str,
    items: list[dict[str, Any]],
    *,
    answers: Callable[[], list[dict[str, Any] | None]] | None = None,
) -> list[Delivery]:
    """Write one event per item of ``data`` and a pending delivery of each to every active
    subscription wanting ``event_type``, in the current transaction; queue them at commit.

    ``answers`` gives each item's answers (called only if a subscriber may receive them).
    """
    if not items or not is_wanted(event_type):
        return []
    subscribers = _subscribers(event_type)
    if not subscribers:
        return []
    with_answers = answers is not None and any(may_receive_answers(s) for s in subscribers)
    item_answers = answers() if with_answers and answers is not None else [None] * len(items)
    now = timezone.now()
    events = Event.objects.bulk_create(
        Event(type=event_type, data=data, answers=given, created_at=now)
        for data, given in zip(items, item_answers, strict=True)
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            event=event,
            subscription=subscription,
            next_attempt_at=now,
            queued_at=now,
            created_at=now,
        )
        for event in events
        for subscription in subscribers
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: queue_deliveries(ids), robust=True)
    return deliveries


def send_test_event(subscription: Subscription) -> Delivery:
    """Queue a ``webhook.test`` event to this subscription only (active or not)."""
    with transaction.atomic():
        event = Event.objects.create(
            type=TEST_EVENT,
            data={"subscription": subscription.pk, "message": "This is a test event."},
        )
        delivery = Delivery.objects.create(event=event, subscription=subscription)
        transaction.on_commit(lambda: queue_deliveries([delivery.pk]), robust=True)
    return delivery


# --- Queueing -----------------------------------------------------------------------------


# After the broker refused a message, this process does not try again before this time
# (monotonic): a citizen's request is not held by a broker that is down, and what is not
# queued stays pending in the database for the sweep.
_BROKER_DOWN_UNTIL = [0.0]
BROKER_BACKOFF_SECONDS = 5.0


def _enqueue(delivery_id: int) -> bool:
    """Hand one delivery to the broker; False (logged) when the broker does not take it, in
    which case the sweep queues it later."""
    from webhooks.tasks import deliver

    if time.monotonic() < _BROKER_DOWN_UNTIL[0]:
        return False
    try:
        deliver.apply_async(
            args=[delivery_id],
            ignore_result=True,
            retry=True,
            retry_policy=settings.CELERY_PUBLISH_RETRY_POLICY,
        )
    except BrokerError:  # the delivery stays pending in the database
        logger.warning("webhook delivery %s not queued (broker unavailable)", delivery_id)
        _BROKER_DOWN_UNTIL[0] = time.monotonic() + BROKER_BACKOFF_SECONDS
        return False
    except Exception:  # run in-process (no broker) and failed: it stays pending too
        logger.exception("webhook delivery %s failed in-process", delivery_id)
        return False
    return True


def queue_deliveries(ids: Iterable[int]) -> None:
    """Queue deliveries due now (after the commit that wrote them); at the first the broker
    refuses, the others are left to the sweep too."""
    for delivery_id in ids:
        if not _enqueue(delivery_id):
            break


def schedule_next(delivery_id: int, delay: float, *, queue: str | None = None) -> None:
    """From a worker: queue the next attempt in ``delay`` seconds on ``queue`` (the one the
    failed attempt came from), when the broker can hold it that long (a longer wait is left
    to the sweep). Sent to the broker even where tasks run in-process elsewhere."""
    from config.celery import app

    if delay > settings.CELERY_VISIBILITY_TIMEOUT / 2:
        return
    try:
        app.send_task(
            "webhooks.deliver",
            args=[delivery_id],
            countdown=delay,
            ignore_result=True,
            retry=True,
            retry_policy=settings.CELERY_PUBLISH_RETRY_POLICY,
            **({"queue": queue} if queue else {}),
        )
    except Exception:
        logger.warning("webhook delivery %s: next attempt left to the sweep", delivery_id)
        return
    Delivery.objects.filter(pk=delivery_id).update(
        queued_at=timezone.now() + dt.timedelta(seconds=delay)
    )


def queue_due_deliveries(*, now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Queue the pending deliveries that are due and held by nobody: never queued since they
    became due (``WEBHOOK_REQUEUE_SECONDS`` ago), or whose attempt's lease ran out (its worker
    died). Run by Celery beat every minute; returns the ids queued."""
    now = now or timezone.now()
    grace = now - dt.timedelta(seconds=settings.WEBHOOK_REQUEUE_SECONDS)
    due = (
        Delivery.objects.filter(
            status=Delivery.Status.PENDING, next_attempt_at__lte=grace, queued_at__lte=grace
        )
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(due)
    if ids:
        Delivery.objects.filter(pk__in=ids).update(queued_at=now)
        queue_deliveries(ids)
    return ids


def deliver_due_now(*, now: dt.datetime | None = None) -> int:
    """Attempt every due delivery in this process, once (``manage.py deliver_webhooks``:
    the retries of the embedded default, which has no worker); the number attempted."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .values_list("pk", flat=True)
    )
    for delivery_id in ids:
        attempt_delivery(delivery_id)
    return len(ids)


def purge_old_events(*, now: dt.datetime | None = None) -> int:
    """Delete the events older than ``WEBHOOK_KEEP_DAYS`` with no pending delivery, with
    their deliveries and log (daily, by beat): the answers an event carries are not kept
    longer than needed. The number of events deleted."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.WEBHOOK_KEEP_DAYS)
    old = Event.objects.filter(created_at__lt=cutoff).exclude(
        deliveries__status=Delivery.Status.PENDING
    )
    _count, by_model = old.delete()
    return by_model.get(Event._meta.label, 0)


# --- One attempt --------------------------------------------------------------------------


def payload(delivery: Delivery) -> bytes:
    """The body POSTed: ``{"type", "timestamp", "data"}`` (Standard Webhooks), the answers
    in ``data`` only for a subscription that may receive them."""
    event = delivery.event
    data = dict(event.data)
    if event.answers is not None and may_receive_answers(delivery.subscription):
        data["answers"] = event.answers
    return json.dumps(
        {"type": event.type, "timestamp": event.created_at.isoformat(), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def signed_headers(
    subscription: Subscription, *, message_id: str, at: dt.datetime, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed with the subscription's secret."""
    signature = Webhook(subscription.secret).sign(msg_id=message_id, timestamp=at, data=body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claim(delivery_id: int, now: dt.datetime) -> tuple[Delivery, DeliveryAttempt] | None:
    """Take a due delivery for one attempt (a lease), log the attempt as under way; None
    when it is not pending, not due or held by another worker."""
    lease = uuid.uuid4()
    with transaction.atomic():
        claimed = (
            Delivery.objects.filter(
                pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
            )
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .update(
                leased_until=now + dt.timedelta(seconds=lease_seconds()),
                lease=lease,
                attempts=F("attempts") + 1,
            )
        )
        if not claimed:
            return None
        delivery = Delivery.objects.select_related("event", "subscription__owner").get(
            pk=delivery_id
        )
        if not delivery.subscription.is_active and delivery.event.type != TEST_EVENT:
            Delivery.objects.filter(pk=delivery_id).update(
                status=Delivery.Status.CANCELLED, finished_at=now, leased_until=None, lease=None
            )
            return None
        attempt = DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            at=now,
            error=_("No outcome recorded (the attempt was interrupted)."),
        )
    return delivery, attempt


def _post(delivery: Delivery, now: dt.datetime) -> Outcome:
    body = payload(delivery)
    headers = signed_headers(
        delivery.subscription, message_id=delivery.message_id, at=now, body=body
    )
    started = time.monotonic()
    status_code, error = None, ""
    try:
        status_code = targets.post(
            delivery.subscription.url,
            body=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        )
        if not 200 <= status_code < 300:
            error = _("The receiver answered %(status)s.") % {"status": status_code}
    except targets.TargetRefused as refused:
        error = str(refused)
    except Exception as problem:  # timeouts, refused connections, TLS and protocol errors
        error = f"{type(problem).__name__}: {problem}"
    duration_ms = int((time.monotonic() - started) * 1000)
    return Outcome(status_code=status_code, error=error[:300], duration_ms=duration_ms)


def attempt_delivery(delivery_id: int) -> float | None:
    """Make one attempt of a delivery and record it; the seconds until the next attempt, or
    None when there is none (delivered, out of attempts, not this worker's to make)."""
    now = timezone.now()
    claimed = _claim(delivery_id, now)
    if claimed is None:
        return None
    delivery, attempt = claimed
    outcome = _post(delivery, now)
    return _record(delivery, attempt, outcome)


def _record(delivery: Delivery, attempt: DeliveryAttempt, outcome: Outcome) -> float | None:
    """Log the attempt's outcome and move the delivery on, if its lease is still ours."""
    now = timezone.now()
    schedule = retry_schedule()
    subscription = delivery.subscription
    with transaction.atomic():
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(
            status_code=outcome.status_code,
            succeeded=outcome.succeeded,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
        ours = Delivery.objects.filter(pk=delivery.pk, lease=delivery.lease)
        common = {"leased_until": None, "lease": None, "last_status_code": outcome.status_code}
        if outcome.succeeded:
            if not ours.update(status=Delivery.Status.DELIVERED, finished_at=now, **common):
                return None
            if delivery.event.type != TEST_EVENT:
                Subscription.objects.filter(pk=subscription.pk, consecutive_failures__gt=0).update(
                    consecutive_failures=0
                )
            return None
        if delivery.attempts < 1 + len(schedule):
            delay = float(schedule[delivery.attempts - 1])
            next_at = now + dt.timedelta(seconds=delay)
            if not ours.update(next_attempt_at=next_at, queued_at=next_at, **common):
                return None
            return delay
        if not ours.update(status=Delivery.Status.FAILED, finished_at=now, **common):
            return None
        if delivery.event.type != TEST_EVENT:
            _count_failed_event(subscription.pk)
    return None


def _count_failed_event(subscription_id: int) -> None:
    """One more event whose every attempt failed; disable the subscription at
    ``WEBHOOK_DISABLE_AFTER_FAILURES`` in a row and tell its owner."""
    Subscription.objects.filter(pk=subscription_id).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    subscription = Subscription.objects.select_related("owner").get(pk=subscription_id)
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if subscription.is_active and limit and subscription.consecutive_failures >= limit:
        reason = _(
            "Disabled after %(count)d events in a row could not be delivered "
            "(every attempt failed)."
        ) % {"count": subscription.consecutive_failures}
        disable_subscription(subscription, reason=reason)


def disable_subscription(subscription: Subscription, *, reason: str) -> None:
    """Disable a subscription, cancel its pending deliveries and e-mail its owner (at commit)."""
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300]
    )
    Delivery.objects.filter(subscription_id=subscription.pk, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.CANCELLED, finished_at=now
    )
    forget_wanted()
    transaction.on_commit(lambda: _tell_owner(subscription, reason), robust=True)


def _tell_owner(subscription: Subscription, reason: str) -> None:
    owner = subscription.owner
    if not owner.email:
        logger.warning("webhook subscription %s disabled; its owner has no e-mail", subscription.pk)
        return
    body = _(
        "Your webhook subscription to %(url)s has been disabled.\n\n%(reason)s\n\n"
        "Check the receiver, then activate the subscription again in the admin or with "
        'PATCH /api/v1/webhooks/%(id)s/ {"is_active": true}.'
    ) % {"url": subscription.url, "reason": reason, "id": subscription.pk}
    message = EmailMessage(
        subject=_("Webhook disabled: %(url)s") % {"url": subscription.url[:100]},
        body=body,
        to=[owner.email],
    )
    try:
        message.send()
    except Exception:
        logger.warning("could not e-mail the owner of webhook %s", subscription.pk, exc_info=True)


# --- Subscriptions ------------------------------------------------------------------------


def subscription_problems(
    *, url: str | None, events: Any, include_answers: bool | None, owner: AbstractBaseUser
) -> dict[str, list[str]]:
    """Why these subscription fields cannot be saved (the fields given; None: unchanged)."""
    errors: dict[str, list[str]] = {}
    if url is not None:
        try:
            targets.check_url(url)
        except targets.TargetRefused as refused:
            errors["url"] = [str(refused)]
    if events is not None:
        if not isinstance(events, list) or not events:
            errors["events"] = [_("Choose at least one event.")]
        elif unknown := [e for e in events if e not in EventType.values]:
            errors["events"] = [
                _("Unknown event %(event)s; choose among: %(known)s.")
                % {"event": json.dumps(unknown[0]), "known": ", ".join(EventType.values)}
            ]
    if events is not None and not scoping.is_national(owner):
        errors["events"] = [
            _("Events tell of every province's rounds: province staff cannot subscribe.")
        ]
    if include_answers and not owner.has_perm(VIEW_RESPONSES):
        errors["include_answers"] = [
            _("You may not view responses, so their answers cannot be sent to you.")
        ]
    return errors


def activate(subscription: Subscription) -> None:
    """A subscription made active again starts with a clean count of failures."""
    subscription.is_active = True
    subscription.consecutive_failures = 0
    subscription.disabled_at = None
    subscription.disabled_reason = ""
