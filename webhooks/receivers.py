"""Receivers of the upstream signals: each writes the event's outbox rows in the transaction
of what it tells (``services.record_events``). Connected in ``WebhooksConfig.ready``.

Payloads carry codes and times, never a citizen's contact details: a petition's event names
its tracking code, category, unit, agency, status and deadline only (not its description,
place or contact), and a response's answers go only to subscriptions allowed to read them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models.signals import post_delete, post_save

from feedback import signals as feedback_signals
from feedback.models import Answer, Petition, Response
from scoring import signals as scoring_signals
from scoring.models import Run
from webhooks import services
from webhooks.models import EventType, Subscription


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def response_data(response_ids: list[int]) -> list[dict[str, Any]]:
    """``response.created`` data of each response (one query), in the order given."""
    rows = {
        row["pk"]: row
        for row in Response.objects.filter(pk__in=response_ids).values(
            "pk",
            "receipt",
            "round__code",
            "unit__code",
            "agency__code",
            "version__questionnaire__code",
            "version__number",
            "channel",
            "submitted_at",
        )
    }
    return [
        {
            "receipt": row["receipt"],
            "round": row["round__code"],
            "unit": row["unit__code"],
            "agency": row["agency__code"],
            "questionnaire": row["version__questionnaire__code"],
            "version": row["version__number"],
            "channel": row["channel"],
            "submitted_at": _time(row["submitted_at"]),
        }
        for row in (rows[pk] for pk in response_ids)
    ]


def response_answers(response_ids: list[int], round_id: int) -> list[dict[str, Any]]:
    """Each response's answers, question code → value as stored (one query)."""
    answers: dict[int, dict[str, Any]] = defaultdict(dict)
    rows = Answer.objects.filter(round_id=round_id, response_id__in=response_ids).values_list(
        "response_id", "question__code", "value"
    )
    for response_id, code, value in rows:
        answers[response_id][code] = value
    return [answers.get(pk, {}) for pk in response_ids]


def on_responses_created(
    sender: Any, *, response_ids: list[int], round_id: int, **kwargs: Any
) -> None:
    if not services.is_wanted(EventType.RESPONSE_CREATED):
        return
    services.record_events(
        EventType.RESPONSE_CREATED,
        response_data(response_ids),
        answers=lambda: response_answers(response_ids, round_id),
    )


def petition_data(petition: Petition) -> dict[str, Any]:
    """The public facts of a petition: no description, place or contact details."""
    return {
        "tracking_code": petition.tracking_code,
        "category": petition.category.code,
        "unit": petition.unit.code,
        "agency": petition.agency.code if petition.agency_id else None,
        "status": petition.status,
        "channel": petition.channel,
        "submitted_at": _time(petition.submitted_at),
        "deadline": petition.deadline.isoformat() if petition.deadline else None,
    }


def on_petition_created(sender: Any, *, petition: Petition, **kwargs: Any) -> None:
    if services.is_wanted(EventType.PETITION_CREATED):
        services.record_events(EventType.PETITION_CREATED, [petition_data(petition)])


def on_petition_status_changed(
    sender: Any, *, petition: Petition, previous_status: str, at: Any, **kwargs: Any
) -> None:
    if services.is_wanted(EventType.PETITION_STATUS_CHANGED):
        data = petition_data(petition) | {"previous_status": previous_status, "at": _time(at)}
        services.record_events(EventType.PETITION_STATUS_CHANGED, [data])


def on_run_published(sender: Any, *, run: Run, **kwargs: Any) -> None:
    if services.is_wanted(EventType.RUN_PUBLISHED):
        data = {
            "run": run.pk,
            "round": run.round.code,
            "published_at": _time(run.published_at),
            "responses": run.response_count,
        }
        services.record_events(EventType.RUN_PUBLISHED, [data])


def on_subscription_changed(sender: Any, **kwargs: Any) -> None:
    services.forget_wanted()


def connect() -> None:
    feedback_signals.responses_created.connect(on_responses_created, dispatch_uid="webhooks_r")
    feedback_signals.petition_created.connect(on_petition_created, dispatch_uid="webhooks_p")
    feedback_signals.petition_status_changed.connect(
        on_petition_status_changed, dispatch_uid="webhooks_ps"
    )
    scoring_signals.run_published.connect(on_run_published, dispatch_uid="webhooks_run")
    post_save.connect(on_subscription_changed, sender=Subscription, dispatch_uid="webhooks_s")
    post_delete.connect(on_subscription_changed, sender=Subscription, dispatch_uid="webhooks_sd")
    if services.responses_wanted not in feedback_signals.response_watchers:
        feedback_signals.response_watchers.append(services.responses_wanted)
