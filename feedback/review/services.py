"""Review of responses: staff set a response aside (``excluded``, with a reason) or take it
back (``accepted``). Nothing is deleted: an excluded response and its answers stay stored
and exported with their state, and the next scoring run leaves it out exactly as if it were
deleted (``scoring.sql.counted_response`` / ``counted_record``), reporting how many were
excluded per unit (``excluded_per_unit``).

Who may review: the permission ``feedback.review_response``. Every change of state is kept
in the audit trail (``audit``), with who made it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import record_change
from config.input_guard import text_problem
from feedback.models import Response

REVIEW_PERMISSION = "feedback.review_response"
NOTE_MAX_LENGTH = Response._meta.get_field("review_note").max_length


@dataclass(frozen=True)
class Review:
    """A review decision, checked (``checked_review``)."""

    state: str
    reason: str
    note: str


def checked_review(*, state: object, reason: object = "", note: object = "") -> Review:
    """The decision, or ``ValidationError`` with a message per field (``state``, ``reason``,
    ``note``): an unknown state or reason, an exclusion without reason, a reason given to
    an acceptance, a note too long or holding text that cannot be stored."""
    errors: dict[str, list[str]] = {}
    states = Response.ReviewState.values
    reasons = Response.ReviewReason.values
    if not isinstance(state, str) or state not in states:
        errors["state"] = [_("Unknown review state; expected one of: %s.") % ", ".join(states)]
    reason = "" if reason is None else reason
    note = "" if note is None else note
    if not isinstance(reason, str) or (reason and reason not in reasons):
        errors["reason"] = [_("Unknown reason; expected one of: %s.") % ", ".join(reasons)]
    elif state == Response.ReviewState.EXCLUDED and not reason:
        errors["reason"] = [_("An excluded response needs a reason.")]
    elif state == Response.ReviewState.ACCEPTED and reason:
        errors["reason"] = [_("An accepted response has no reason for exclusion.")]
    if not isinstance(note, str):
        errors["note"] = [_("The note must be text.")]
    elif problem := text_problem(note):
        errors["note"] = [problem]
    elif len(note) > NOTE_MAX_LENGTH:
        errors["note"] = [
            _("The note is longer than %(max)d characters.") % {"max": NOTE_MAX_LENGTH}
        ]
    if errors:
        raise ValidationError(errors)
    assert isinstance(state, str) and isinstance(reason, str) and isinstance(note, str)
    return Review(state=state, reason=reason, note=note.strip())


def review_responses(
    response_ids: Iterable[int],
    review: Review,
    *,
    user: AbstractBaseUser | AnonymousUser | None,
) -> int:
    """Set the review state of these responses; returns how many changed. Responses already
    in that state with the same reason and note are left as they are (no audit event).

    Each response is saved on its own so that the audit trail records each change; the
    scoring records and the answers are not touched (the scoring reads filter on the state).
    """
    reviewer = user if user is not None and user.is_authenticated else None
    now = timezone.now()
    changed = 0
    with transaction.atomic():
        for response in (
            Response.objects.select_for_update().filter(pk__in=list(response_ids)).order_by("pk")
        ):
            if (response.review_state, response.review_reason, response.review_note) == (
                review.state,
                review.reason,
                review.note,
            ):
                continue
            before = (response.review_state, response.review_reason, response.review_note)
            response.review_state = review.state
            response.review_reason = review.reason
            response.review_note = review.note
            response.reviewed_by = reviewer  # type: ignore[assignment]
            response.reviewed_at = now
            response.save(
                update_fields=[
                    "review_state",
                    "review_reason",
                    "review_note",
                    "reviewed_by",
                    "reviewed_at",
                ]
            )
            record_change(
                response,
                {
                    "review_state": [before[0], review.state],
                    "review_reason": [before[1], review.reason],
                    "review_note": [before[2], review.note],
                },
            )
            changed += 1
    return changed
