"""Writes of action plans, one function per change: create a task, update it (status, note,
evidence file), send the reminders. Every change goes through the models' ``save()``, so the
audit trail records it with its actor (``audit/apps.py`` tracks the models)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import EmailMessage, mailers
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from config.input_guard import text_problem
from config.links import absolute_url
from feedback.petitions.calendar import add_working_days
from plans import selectors
from plans.models import PlanStaff, Task, TaskNote, TaskReminder
from surveys.models import Indicator, Round, Unit
from surveys.selectors import agency_of_unit

Status = Task.Status
TRANSITIONS: dict[str, set[str]] = {
    Status.PLANNED: {Status.IN_PROGRESS, Status.DONE, Status.DROPPED},
    Status.IN_PROGRESS: {Status.PLANNED, Status.DONE, Status.DROPPED},
    Status.DONE: set(),
    Status.DROPPED: set(),
}
MAX_TITLE = 200
MAX_TEXT = 4000
MAX_WORKING_DAYS = 500
# Evidence files: the suffix must be one of these and the content must start as its type does
# (a renamed executable is refused). Office files are ZIP containers.
EVIDENCE_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (b"PK\x03\x04",),
    ),
    ".xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        (b"PK\x03\x04",),
    ),
    ".odt": ("application/vnd.oasis.opendocument.text", (b"PK\x03\x04",)),
    ".ods": ("application/vnd.oasis.opendocument.spreadsheet", (b"PK\x03\x04",)),
}


class TaskNotFound(Exception):
    """The task does not exist or is outside the account's scope (a 404 either way)."""


@dataclass
class TaskInput:
    """A new task as strings from a form: codes, and the owner's account id."""

    round: str
    unit: str
    agency: str
    indicator: str
    title: str
    target_kind: str
    target_value: str = ""
    working_days: str = ""
    owner: str = ""


def _number(value: str, *, field: str, errors: dict[str, list[str]]) -> float | None:
    try:
        number = float(value.strip().replace(",", "."))
    except ValueError:
        errors[field].append(_("Enter a number."))
        return None
    if not math.isfinite(number):
        errors[field].append(_("Enter a number."))
        return None
    return number


def create_task(*, user: AbstractBaseUser, data: TaskInput, today: date | None = None) -> Task:
    """Store a task; every problem is reported at once, keyed by field (``ValidationError``).

    ``PermissionDenied`` unless ``user`` may plan for the unit. The deadline is the
    ``working_days``-th working day after today (the petitions' calendar).
    """
    errors: dict[str, list[str]] = defaultdict(list)
    for name, value in data.__dict__.items():
        if problem := text_problem(value):
            errors[name].append(problem)
    if errors:
        raise ValidationError(dict(errors))
    survey_round = Round.objects.select_related("version").filter(code=data.round.strip()).first()
    if survey_round is None:
        errors["round"].append(_("Choose a round from the list."))
    unit = Unit.objects.filter(code=data.unit.strip()).first()
    if unit is None or (survey_round and not survey_round.units.filter(pk=unit.pk).exists()):
        errors["unit"].append(_("Choose a unit covered by the round."))
        unit = None
    elif not selectors.can_plan_for(user, unit):
        raise PermissionDenied(_("You may not create tasks for this unit."))
    agency = None
    if unit is not None:
        try:
            agency = agency_of_unit(unit=unit, code=data.agency.strip())
        except ValidationError as problem:
            errors["agency"].extend(problem.message_dict["agency"])
    indicator = data.indicator.strip()
    if (
        survey_round
        and not Indicator.objects.filter(
            version_id=survey_round.version_id, code=indicator
        ).exists()
    ):
        errors["indicator"].append(_("Choose an indicator of the round's questionnaire."))
    title = data.title.strip()
    if not title:
        errors["title"].append(_("Say what is to be done."))
    elif len(title) > MAX_TITLE:
        errors["title"].append(_("Write at most %(limit)d characters.") % {"limit": MAX_TITLE})
    kind = data.target_kind.strip()
    target_value = None
    if kind not in Task.TargetKind.values:
        errors["target_kind"].append(_("Choose a kind of target from the list."))
    elif kind != Task.TargetKind.ABOVE_NATIONAL:
        if not data.target_value.strip():
            errors["target_value"].append(_("Give the target value."))
        else:
            target_value = _number(data.target_value, field="target_value", errors=errors)
            low = 0 if kind == Task.TargetKind.AT_LEAST else 0.01
            if target_value is not None and not low <= target_value <= 100:
                errors["target_value"].append(_("A value on the 0–100 scale."))
    days = data.working_days.strip()
    # isdigit() is true of "²": only ASCII digits are a number here.
    working_days = int(days) if days.isascii() and days.isdigit() and len(days) < 6 else None
    if working_days is None or not 1 <= working_days <= MAX_WORKING_DAYS:
        errors["working_days"].append(
            _("A whole number of working days from 1 to %(max)d.") % {"max": MAX_WORKING_DAYS}
        )
    owner = None
    if data.owner.strip():
        owner_id = data.owner.strip()
        if agency is not None and owner_id.isascii() and owner_id.isdigit() and len(owner_id) < 19:
            owner = selectors.possible_owners(agency=agency).filter(pk=int(owner_id)).first()
        if owner is None and agency is not None:
            errors["owner"].append(_("Choose a member of the agency's staff, or nobody."))
    if errors:
        raise ValidationError(dict(errors))
    assert survey_round and unit and agency and working_days
    today = today or timezone.localdate()
    return Task.objects.create(
        round=survey_round,
        unit=unit,
        agency=agency,
        indicator_code=indicator,
        title=title,
        target_kind=kind,
        target_value=target_value,
        working_days=working_days,
        deadline=add_working_days(today, working_days),
        owner=owner,
        created_by=user,
    )


def check_evidence(upload: UploadedFile) -> tuple[str, str]:
    """The file's safe display name and content type; ``ValidationError`` on ``evidence``
    when it is too large, empty, or not one of ``EVIDENCE_TYPES`` by name and content."""
    name = PurePath(upload.name or "").name
    limit = settings.PLANS_EVIDENCE_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise ValidationError(
            {"evidence": [_("The file is larger than %(mb).0f MB.") % {"mb": limit / 2**20}]}
        )
    if upload.size == 0:
        raise ValidationError({"evidence": [_("The file is empty.")]})
    suffix = PurePath(name).suffix.lower()
    known = EVIDENCE_TYPES.get(suffix)
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if known is None or not head.startswith(known[1]):
        raise ValidationError(
            {
                "evidence": [
                    _("Attach a PDF, PNG, JPEG, DOCX, XLSX, ODT or ODS file (this one is not).")
                ]
            }
        )
    if text_problem(name) or len(name) > 255:
        name = f"evidence{suffix}"
    return name, known[0]


def update_task(
    *,
    user: AbstractBaseUser,
    task_id: int,
    status: str = "",
    drop_reason: str = "",
    text: str = "",
    evidence: UploadedFile | None = None,
) -> Task:
    """Change a task's status and/or add a progress note with an optional evidence file.

    ``TaskNotFound`` outside the account's scope, ``PermissionDenied`` when it may see but
    not update, ``ValidationError`` keyed by field otherwise; nothing is stored on error.
    """
    errors: dict[str, list[str]] = defaultdict(list)
    for name, value in (("status", status), ("drop_reason", drop_reason), ("text", text)):
        if problem := text_problem(value):
            errors[name].append(problem)
    if errors:
        raise ValidationError(dict(errors))
    with transaction.atomic():
        task = selectors.tasks_visible_to(user).select_for_update().filter(pk=task_id).first()
        if task is None:
            raise TaskNotFound(task_id)
        if not selectors.can_update(user, task):
            raise PermissionDenied(_("You may see this task but not update it."))
        status, text, drop_reason = status.strip(), text.strip(), drop_reason.strip()
        new_status = status or task.status
        if new_status not in Status.values:
            errors["status"].append(_("Choose a status from the list."))
        elif new_status != task.status and new_status not in TRANSITIONS[task.status]:
            errors["status"].append(
                _("A task that is %(status)s cannot change status.")
                % {"status": task.get_status_display()}
            )
        if new_status == Status.DROPPED and new_status != task.status and not drop_reason:
            errors["drop_reason"].append(_("Say why the task is dropped."))
        if len(text) > MAX_TEXT or len(drop_reason) > MAX_TEXT:
            field = "text" if len(text) > MAX_TEXT else "drop_reason"
            errors[field].append(_("Write at most %(limit)d characters.") % {"limit": MAX_TEXT})
        file_name = file_type = ""
        if evidence is not None:
            try:
                file_name, file_type = check_evidence(evidence)
            except ValidationError as problem:
                errors["evidence"].extend(problem.message_dict["evidence"])
        changed = new_status != task.status
        if not errors and not (changed or text or evidence):
            errors["text"].append(_("Write a note, change the status or attach a file."))
        if errors:
            raise ValidationError(dict(errors))
        note = TaskNote(task=task, author=user, text=text)
        if changed:
            note.status_from, note.status_to = task.status, new_status
            task.status = new_status
            if new_status == Status.DROPPED:
                task.drop_reason = drop_reason
            task.save(update_fields=["status", "drop_reason", "updated_at"])
        if evidence is not None:
            note.evidence_name, note.evidence_type = file_name, file_type
            note.evidence.save(file_name, evidence, save=False)
        note.save()
    return task


# --- Reminders ---------------------------------------------------------------------------


def _recipients(tasks: list[Task]) -> dict[int, set[str]]:
    """Each task's addressees: its owner, else its agency's staff, else its unit's coordinators."""
    desks: dict[tuple[str, int], set[str]] = defaultdict(set)
    for unit_id, agency_id, email in (
        PlanStaff.objects.filter(user__is_active=True, unit_id__in={t.unit_id for t in tasks})
        .exclude(user__email="")
        .values_list("unit_id", "agency_id", "user__email")
    ):
        desks[("agency", agency_id) if agency_id else ("unit", unit_id)].add(email)
    found = {}
    for task in tasks:
        if task.owner_id and task.owner.is_active and task.owner.email:
            found[task.pk] = {task.owner.email}
        else:
            found[task.pk] = desks[("agency", task.agency_id)] or desks[("unit", task.unit_id)]
    return found


def remind_tasks(*, today: date | None = None) -> int:
    """E-mail about open tasks due within ``PLANS_REMIND_WORKING_DAYS`` working days, and
    about overdue ones; each task gets at most one reminder of each kind, ever (a
    ``TaskReminder`` row, unique per task and kind, is claimed before sending). Returns the
    number of e-mails sent."""
    today = today or timezone.localdate()
    horizon = add_working_days(today, settings.PLANS_REMIND_WORKING_DAYS)
    open_tasks = Task.objects.filter(status__in=[Status.PLANNED, Status.IN_PROGRESS])
    due = {
        TaskReminder.Kind.DUE_SOON: open_tasks.filter(deadline__gte=today, deadline__lte=horizon),
        TaskReminder.Kind.OVERDUE: open_tasks.filter(deadline__lt=today),
    }
    by_recipient: dict[str, list[tuple[str, Task]]] = defaultdict(list)
    for kind, tasks in due.items():
        pending = list(
            tasks.exclude(reminders__kind=kind).select_related("owner", "agency", "unit")
        )
        addressees = _recipients(pending)
        for task in pending:
            try:
                with transaction.atomic():
                    TaskReminder.objects.create(
                        task=task, kind=kind, sent_on=today, recipients=len(addressees[task.pk])
                    )
            except IntegrityError:
                continue  # another worker claimed it
            for email in addressees[task.pk]:
                by_recipient[email].append((kind, task))
    if not by_recipient:
        return 0
    messages = [
        EmailMessage(
            subject=_("%(count)d action plan tasks need attention") % {"count": len(items)},
            body="\n".join(_line(kind, task, today) for kind, task in _ordered(items)),
            from_email=settings.PETITION_FROM_EMAIL or None,
            to=[email],
        )
        for email, items in sorted(by_recipient.items())
    ]
    return mailers.default.send_messages(messages) or 0


def _ordered(items: list[tuple[str, Task]]) -> list[tuple[str, Task]]:
    return sorted(items, key=lambda item: (item[1].deadline, item[1].pk))


def _line(kind: str, task: Task, today: date) -> str:
    values: dict[str, Any] = {
        "id": task.pk,
        "indicator": task.indicator_code,
        "title": task.title,
        "unit": task.unit.name,
        "agency": task.agency.code,
        "deadline": task.deadline.isoformat(),
    }
    if kind == TaskReminder.Kind.OVERDUE:
        line = _("#%(id)s %(indicator)s (%(agency)s, %(unit)s): %(title)s: overdue since "
                 "%(deadline)s") % values  # fmt: skip
    else:
        line = _("#%(id)s %(indicator)s (%(agency)s, %(unit)s): %(title)s: due %(deadline)s")
        line %= values
    return f"{line}\n  {absolute_url(None, reverse('plans:task', args=[task.pk]))}"
