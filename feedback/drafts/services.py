"""Web drafts: start one, save a step, submit it, and purge the expired ones.

A draft holds the answers cleaned so far (canonical values, as ``clean_answers`` returns
them) and the index of the section the citizen is on. Each save pushes its expiry
``FEEDBACK_DRAFT_TTL_HOURS`` past now. The final submit goes through ``submit_response``
with the draft's ``client_id``, so a double click or a re-POST never stores twice. That
key derives from the draft's secret token, so a repeat answers with the receipt only to
whoever holds the draft's link, whatever ``client_id`` a request claims.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from feedback.models import Invitation, Response, ResponseDraft, new_token
from feedback.services import Submission, check_round_open, resolve_target, submit_response

# Fixed forever: changing it would orphan the receipts of drafts submitted before.
DRAFT_CLIENT_ID_NAMESPACE = uuid.UUID("0d7a3f52-8a5e-4c1c-9a4b-6c2f1e9b8d10")


def draft_client_id(token: str) -> uuid.UUID:
    """The idempotency key of the draft with this token (not reversible to the token)."""
    return uuid.uuid5(DRAFT_CLIENT_ID_NAMESPACE, token)


def draft_expiry(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(hours=settings.FEEDBACK_DRAFT_TTL_HOURS)


def unused_invitation(*, token: str) -> Invitation:
    """The invitation with this token, or ``ValidationError`` on ``token`` if unknown or used."""
    invitation = (
        Invitation.objects.select_related("round__version", "unit", "agency")
        .filter(token=token)
        .first()
    )
    if invitation is None:
        raise ValidationError({"token": [_("This invitation link is not valid.")]})
    if invitation.is_used:
        raise ValidationError({"token": [_("This invitation has already been used.")]})
    return invitation


def start_draft(
    *,
    round_code: str = "",
    unit_code: str = "",
    agency_code: str = "",
    invitation_token: str = "",
    now: dt.datetime | None = None,
) -> ResponseDraft:
    """A new draft for a round and unit, or for an unused invitation (which names both)."""
    now = now or timezone.now()
    invitation = None
    if invitation_token:
        invitation = unused_invitation(token=invitation_token)
        round_code, unit_code = invitation.round.code, invitation.unit.code
        agency_code = invitation.agency.code if invitation.agency else ""
    survey_round, unit, agency = resolve_target(
        round_code=round_code, unit_code=unit_code, agency_code=agency_code
    )
    check_round_open(survey_round, now)
    if invitation is None and not survey_round.allow_open_link:
        raise ValidationError(
            {"token": [_("This survey round can only be answered with an invitation.")]}
        )
    token = new_token()
    return ResponseDraft.objects.create(
        token=token,
        round=survey_round,
        unit=unit,
        agency=agency,
        invitation=invitation,
        client_id=draft_client_id(token),
        created_at=now,
        updated_at=now,
        expires_at=draft_expiry(now),
    )


def live_draft(*, token: str, now: dt.datetime | None = None) -> tuple[ResponseDraft | None, bool]:
    """The draft with this token and whether it has expired (``(None, False)`` if unknown)."""
    draft = (
        ResponseDraft.objects.select_related(
            "round__version__questionnaire", "unit", "agency", "invitation"
        )
        .filter(token=token)
        .first()
    )
    if draft is None:
        return None, False
    return draft, draft.expires_at <= (now or timezone.now())


def save_answers(
    *,
    draft: ResponseDraft,
    answers: dict[str, Any],
    section: int,
    now: dt.datetime | None = None,
) -> ResponseDraft:
    """Store the answers and section of a step; the draft now expires a full TTL from now."""
    now = now or timezone.now()
    draft.answers, draft.section = answers, section
    draft.updated_at, draft.expires_at = now, draft_expiry(now)
    # update() rather than save(): a draft submitted meanwhile by another request stays gone.
    ResponseDraft.objects.filter(pk=draft.pk).update(
        answers=answers, section=section, updated_at=now, expires_at=draft.expires_at
    )
    return draft


def submit_draft(*, draft: ResponseDraft, answers: dict[str, Any]) -> Submission:
    """Submit the draft's answers as a web response, then delete the draft."""
    submission = submit_response(
        round_code=draft.round.code,
        unit_code=draft.unit.code,
        agency_code=draft.agency.code if draft.agency else "",
        answers=answers,
        channel=Response.Channel.WEB,
        client_id=draft.client_id,
        invitation_token=draft.invitation.token if draft.invitation else "",
    )
    ResponseDraft.objects.filter(pk=draft.pk).delete()
    return submission


def receipt_of_submitted_draft(*, token: str) -> str | None:
    """The receipt of the response the draft with this token was submitted as, if any."""
    key = draft_client_id(token)
    return Response.objects.filter(client_id=key).values_list("receipt", flat=True).first()


def purge_expired(*, now: dt.datetime | None = None) -> int:
    """Delete every expired draft in one statement; returns how many went."""
    deleted, _by_model = ResponseDraft.objects.filter(
        expires_at__lte=now or timezone.now()
    ).delete()
    return deleted
