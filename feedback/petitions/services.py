"""Writes of petitions, one function per change: submit, change status, rate, remind."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Required, TypedDict, Unpack

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, mailers
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from config.input_guard import text_problem
from config.links import public_base_url
from feedback import signals
from feedback.errors import ClientIdConflict
from feedback.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    Petition,
    PetitionCategory,
    PetitionEvent,
    PetitionStaff,
)
from feedback.petitions import selectors
from feedback.petitions.calendar import add_working_days
from feedback.petitions.errors import (
    PetitionNotFound,
    RatingNotAllowed,
    RoutingNotAllowed,
    TransitionNotAllowed,
)
from surveys.models import Agency
from surveys.selectors import agency_of_unit

logger = logging.getLogger(__name__)
Status = Petition.Status
TRANSITIONS: dict[str, set[str]] = {
    Status.RECEIVED: {Status.ASSIGNED, Status.REJECTED},
    Status.ASSIGNED: {Status.ASSIGNED, Status.IN_PROGRESS, Status.REJECTED},
    Status.IN_PROGRESS: {Status.ASSIGNED, Status.RESOLVED, Status.REJECTED},
    Status.RESOLVED: set(),
    Status.REJECTED: set(),
}
PHONE = re.compile(r"^\+?[0-9 ().-]{6,32}$")
MAX_REPLY_CHARS = 4000


@dataclass
class PetitionInput:
    """What a citizen sends, as strings and numbers from any channel."""

    category: str
    unit: str
    description: str
    agency: str = ""
    address: str = ""
    lat: Decimal | None = None
    long: Decimal | None = None
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    contact_consent: bool = False

    def digest(self) -> str:
        fields = {k: str(v) for k, v in self.__dict__.items()}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _clean(data: PetitionInput) -> dict[str, Any]:
    """Validate ``data``; every problem is reported at once, keyed by field."""
    errors: dict[str, list[str]] = defaultdict(list)
    for name, value in data.__dict__.items():
        if isinstance(value, str) and (problem := text_problem(value)):
            errors[name].append(problem)
    if errors:
        raise ValidationError(dict(errors))
    category = PetitionCategory.objects.filter(code=data.category.strip(), is_active=True).first()
    if category is None:
        errors["category"].append(_("Choose a category from the list."))
    unit = selectors.current_units().filter(code=data.unit.strip()).first()
    agency = None
    if unit is None:
        errors["unit"].append(_("Choose a current province or city from the list."))
    elif data.agency.strip():
        try:
            agency = agency_of_unit(unit=unit, code=data.agency.strip())
        except ValidationError as problem:
            errors["agency"].extend(problem.message_dict["agency"])
    description = data.description.strip()
    limit = settings.PETITION_MAX_DESCRIPTION_CHARS
    if not description:
        errors["description"].append(_("Describe the problem or your proposal."))
    elif len(description) > limit:
        errors["description"].append(
            _("Write at most %(limit)d characters (you wrote %(count)d).")
            % {"limit": limit, "count": len(description)}
        )
    address = data.address.strip()
    if len(address) > 255:
        errors["address"].append(_("Write at most 255 characters."))
    if (data.lat is None) != (data.long is None):
        errors["lat" if data.lat is None else "long"].append(
            _("Give both latitude and longitude, or neither.")
        )
    if data.lat is not None and not -90 <= data.lat <= 90:
        errors["lat"].append(_("Latitude is between -90 and 90."))
    if data.long is not None and not -180 <= data.long <= 180:
        errors["long"].append(_("Longitude is between -180 and 180."))
    name, email, phone = (
        data.contact_name.strip(),
        data.contact_email.strip(),
        data.contact_phone.strip(),
    )
    if len(name) > 120:
        errors["contact_name"].append(_("Write at most 120 characters."))
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["contact_email"].append(_("Enter a valid e-mail address."))
    if phone and not PHONE.match(phone):
        errors["contact_phone"].append(_("Enter a phone number of digits, spaces and + only."))
    if (name or email or phone) and not data.contact_consent:
        errors["contact_consent"].append(
            _("Tick the box to let us keep your contact details, or leave them empty.")
        )
    if errors:
        raise ValidationError(dict(errors))
    return {
        "category": category,
        "unit": unit,
        "agency": agency,
        "description": description,
        "address": address,
        "lat": data.lat,
        "long": data.long,
        "contact_name": name,
        "contact_email": email,
        "contact_phone": phone,
        "contact_consent": bool(data.contact_consent and (name or email or phone)),
    }


def submit_petition(
    *,
    data: PetitionInput,
    channel: str,
    client_id: uuid.UUID | None = None,
    submitted_by: AbstractBaseUser | None = None,
    link_base: str = "",
) -> tuple[Petition, bool]:
    """Store a petition with its deadline; a repeated ``client_id`` returns the first.

    ``link_base`` starts the tracking link e-mailed to the citizen: the caller's
    ``config.links.public_base_url(request)``; empty, ``public_base_url(None)``.

    Returns the petition and whether it was created now. A ``client_id`` reused with
    another content, or by another account (or without the account that used it), raises
    ``ClientIdConflict``: the first petition is returned only to the client that sent it.
    """
    digest = data.digest()
    account_id = submitted_by.pk if submitted_by is not None else None
    if client_id is not None and (first := _by_client_id(client_id, digest, account_id)):
        return first, False
    fields = _clean(data)
    now = timezone.now()
    deadline = add_working_days(timezone.localdate(now), fields["category"].deadline_days)
    try:
        with transaction.atomic():
            petition = Petition.objects.create(
                **fields,
                channel=channel,
                client_id=client_id,
                request_digest=digest,
                submitted_by=submitted_by,
                submitted_at=now,
                updated_at=now,
                deadline=deadline,
            )
            PetitionEvent.objects.create(
                petition=petition, status=Status.RECEIVED, agency=petition.agency, at=now
            )
            signals.petition_created.send(sender=Petition, petition=petition)
            if petition.contact_email and petition.contact_consent:
                transaction.on_commit(lambda: _confirm_filing(petition, link_base), robust=True)
    except IntegrityError:
        # Another request with the same client_id won the race: answer like a repeat.
        if client_id is not None and (first := _by_client_id(client_id, digest, account_id)):
            return first, False
        raise
    return petition, True


def _by_client_id(client_id: uuid.UUID, digest: str, account_id: int | None) -> Petition | None:
    first = Petition.objects.filter(client_id=client_id).first()
    if first is not None and (
        first.request_digest != digest or first.submitted_by_id != account_id
    ):
        raise ClientIdConflict(_("This client_id was already used for another petition."))
    return first


class StatusChange(TypedDict, total=False):
    """A status change as asked for: the new status, and what goes with it."""

    status: Required[str]
    note: str  # internal
    reply: str | None  # public; needed to resolve unless the petition has one
    reason: str  # public; needed to reject
    agency_code: str  # with "assigned": the agency to send it to, by code or by id
    agency_id: int | None
    assignee_id: int | None  # with "assigned": the handler, if any


def _stripped(change: StatusChange) -> tuple[str, str | None, str]:
    """The note, reply and reason of a change, spaces stripped (reply ``None`` if not given)."""
    reply = change.get("reply")
    return (
        change.get("note", "").strip(),
        reply.strip() if reply is not None else None,
        change.get("reason", "").strip(),
    )


def check_status_change(
    *, petition: Petition, actor: AbstractBaseUser, **change: Unpack[StatusChange]
) -> Agency | None:
    """Why ``actor`` may not move ``petition`` to ``status``, raised; nothing is written.

    The same rules ``change_petition_status`` applies under its lock, so a form can tell
    the reason before saving. Returns the agency that will hold the petition.
    """
    errors: dict[str, list[str]] = {}
    status = change["status"]
    note, reply, reason = _stripped(change)
    agency_code, agency_id = change.get("agency_code", ""), change.get("agency_id")
    assignee_id = change.get("assignee_id")
    for name, text in (("note", note), ("reason", reason), ("reply", reply or "")):
        if len(text) > MAX_REPLY_CHARS:
            errors[name] = [_("Write at most %(limit)d characters.") % {"limit": MAX_REPLY_CHARS}]
    if status not in Status.values:
        errors["status"] = [_("Unknown status.")]
    if errors:
        raise ValidationError(errors)
    if not selectors.can_handle(actor, petition):
        raise PetitionNotFound()
    if status not in TRANSITIONS[petition.status]:
        raise TransitionNotAllowed(petition.get_status_display(), Status(status).label)
    agency = petition.agency
    if status != Status.ASSIGNED:
        # Another agency or handler is only taken with "assigned", never silently dropped.
        current_code = petition.agency.code if petition.agency else ""
        if (agency_id is not None and agency_id != petition.agency_id) or (
            agency_code.strip() and agency_code.strip() != current_code
        ):
            errors["agency"] = [
                _("Choose the status “%(status)s” to send the petition to another agency.")
                % {"status": Status.ASSIGNED.label}
            ]
        if assignee_id is not None and assignee_id != petition.assignee_id:
            errors["assignee"] = [
                _("Choose the status “%(status)s” to give the petition to another handler.")
                % {"status": Status.ASSIGNED.label}
            ]
    else:
        agency = _routed_agency(
            petition,
            actor=actor,
            agency_code=agency_code,
            agency_id=agency_id,
            assignee_id=assignee_id,
        )
    if status == Status.REJECTED and not reason:
        errors["reason"] = [_("Give the reason for rejecting the petition.")]
    if status == Status.RESOLVED and not (reply or petition.reply):
        errors["reply"] = [_("Write the reply the citizen will read.")]
    if errors:
        raise ValidationError(errors)
    return agency


def change_petition_status(
    *,
    petition_id: int,
    actor: AbstractBaseUser,
    link_base: str = "",
    **change: Unpack[StatusChange],
) -> Petition:
    """Move a petition along received → assigned → in progress → resolved or rejected.

    Assigning names the agency (by id or code; defaults to the current one) and optionally
    a handler. Resolving needs a public reply; rejecting needs a reason, shown to the
    citizen. The rules are ``check_status_change``'s, applied with the petition locked.
    ``link_base`` starts the tracking link e-mailed on closing, as in ``submit_petition``.
    """
    with transaction.atomic():
        petition = (
            Petition.objects.select_for_update(of=("self",))
            .select_related("unit", "agency")
            .filter(pk=petition_id)
            .first()
        )
        if petition is None:
            raise PetitionNotFound()
        agency = check_status_change(petition=petition, actor=actor, **change)
        status = change["status"]
        note, reply, reason = _stripped(change)
        if reply:
            petition.reply = reply
        if status == Status.ASSIGNED:
            petition.agency, petition.assignee_id = agency, change.get("assignee_id")
        now = timezone.now()
        previous = petition.status
        petition.status, petition.updated_at = status, now
        if status == Status.REJECTED:
            petition.rejection_reason = reason
        if status in CLOSED_STATUSES:
            petition.closed_at = now
        petition.save()
        PetitionEvent.objects.create(
            petition=petition,
            status=status,
            previous_status=previous,
            actor=actor,
            agency=petition.agency,
            note=note,
            at=now,
        )
        signals.petition_status_changed.send(
            sender=Petition, petition=petition, previous_status=previous, at=now
        )
        if status in CLOSED_STATUSES and petition.contact_email and petition.contact_consent:
            transaction.on_commit(lambda: _tell_citizen(petition, link_base), robust=True)
    return petition


def _routed_agency(
    petition: Petition,
    *,
    actor: AbstractBaseUser,
    agency_code: str,
    agency_id: int | None,
    assignee_id: int | None,
) -> Agency:
    agency = petition.agency
    if agency_id is not None or agency_code.strip():
        in_unit = Agency.objects.filter(unit_id=petition.unit_id)
        if agency_id is not None:
            agency = in_unit.filter(pk=agency_id).first()
        else:
            agency = in_unit.filter(code=agency_code.strip()).first()
        if agency is None:
            raise ValidationError({"agency": [_("This agency is not in the petition's unit.")]})
    if agency is None:
        raise ValidationError({"agency": [_("Choose the agency that will handle the petition.")]})
    if agency != petition.agency and not selectors.coordinates_unit(actor, petition.unit_id):
        raise RoutingNotAllowed()
    if assignee_id is not None and not selectors.handles_agency(
        user_id=assignee_id, unit_id=petition.unit_id, agency_id=agency.pk
    ):
        raise ValidationError(
            {"assignee": [_("This account does not handle the agency's petitions.")]}
        )
    return agency


def _tracking_link(petition: Petition, link_base: str) -> str:
    path = reverse("feedback:petition_track", kwargs={"code": petition.tracking_code})
    return (link_base.rstrip("/") or public_base_url(None)) + path


def _mail_citizen(petition: Petition, *, subject: str, body: str) -> None:
    """Send one e-mail to the petition's contact; a failure is logged, never raised: the
    petition is stored and its tracking page tells the same."""
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.PETITION_FROM_EMAIL or None,
        to=[petition.contact_email],
    )
    try:
        message.send()
    except Exception:
        logger.warning("could not e-mail the contact of petition %s", petition.pk, exc_info=True)


def _confirm_filing(petition: Petition, link_base: str) -> None:
    """Tell the citizen the petition is received: its tracking code, link and deadline."""
    _mail_citizen(
        petition,
        subject=_("Your petition %(code)s has been received") % {"code": petition.tracking_code},
        body=_(
            "We have received your petition. Its tracking code is %(code)s.\n"
            "An answer is due by %(deadline)s. Follow its handling at %(link)s"
        )
        % {
            "code": petition.tracking_code,
            "deadline": date_format(petition.deadline, "SHORT_DATE_FORMAT"),
            "link": _tracking_link(petition, link_base),
        },
    )


def _tell_citizen(petition: Petition, link_base: str) -> None:
    _mail_citizen(
        petition,
        subject=_("Your petition %(code)s has been answered") % {"code": petition.tracking_code},
        body=_("The answer to your petition is on its tracking page: %(link)s")
        % {"link": _tracking_link(petition, link_base)},
    )


def rate_petition(*, tracking_code: str, rating: int) -> Petition:
    """The citizen's rating of the handling, once, after the petition is closed."""
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError({"rating": [_("Choose a rating from 1 to 5.")]})
    petition = selectors.petition_by_code(tracking_code)
    if petition is None:
        raise PetitionNotFound()
    rated = Petition.objects.filter(
        pk=petition.pk, status__in=CLOSED_STATUSES, rating__isnull=True
    ).update(rating=rating, rated_at=timezone.now())
    if not rated:
        petition.refresh_from_db()
        if petition.rating is not None:
            raise RatingNotAllowed(_("This petition has already been rated."))
        raise RatingNotAllowed(_("A petition can be rated once it has been answered."))
    petition.refresh_from_db()
    return petition


def remind_petitions_near_deadline(*, today: date | None = None) -> int:
    """E-mail handlers about open petitions due within ``PETITION_REMIND_WORKING_DAYS``
    working days (or already overdue), once a day; returns the number of e-mails sent.

    A petition's assignee is reminded; one without an assignee reminds its agency's staff,
    or the unit's coordinators when no agency has it yet.
    """
    today = today or timezone.localdate()
    horizon = add_working_days(today, settings.PETITION_REMIND_WORKING_DAYS)
    due = Petition.objects.filter(status__in=OPEN_STATUSES, deadline__lte=horizon).exclude(
        reminded_on=today
    )
    rows = list(
        due.values("pk", "tracking_code", "deadline", "unit_id", "agency_id", "assignee__email")
    )
    if not rows:
        return 0
    staff = PetitionStaff.objects.filter(user__is_active=True).exclude(user__email="")
    desks = defaultdict(set)
    for unit_id, agency_id, email in staff.filter(
        Q(agency_id__in={r["agency_id"] for r in rows})
        | Q(agency__isnull=True, unit_id__in={r["unit_id"] for r in rows})
    ).values_list("unit_id", "agency_id", "user__email"):
        desks[("agency", agency_id) if agency_id else ("unit", unit_id)].add(email)
    by_recipient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["assignee__email"]:
            recipients = {row["assignee__email"]}
        elif row["agency_id"]:
            recipients = desks[("agency", row["agency_id"])]
        else:
            recipients = desks[("unit", row["unit_id"])]
        for email in recipients:
            by_recipient[email].append(row)
    messages = [
        EmailMessage(
            subject=_("%(count)d petitions are due soon") % {"count": len(items)},
            body="\n".join(
                _("%(code)s: due %(deadline)s%(late)s")
                % {
                    "code": item["tracking_code"],
                    "deadline": item["deadline"].isoformat(),
                    "late": _(" (overdue)") if item["deadline"] < today else "",
                }
                for item in sorted(items, key=lambda r: (r["deadline"], r["tracking_code"]))
            ),
            from_email=settings.PETITION_FROM_EMAIL or None,
            to=[email],
        )
        for email, items in sorted(by_recipient.items())
    ]
    sent = mailers.default.send_messages(messages) or 0
    Petition.objects.filter(pk__in=[r["pk"] for r in rows]).update(reminded_on=today)
    return sent
