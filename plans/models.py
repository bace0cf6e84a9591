"""Action plans: who plans for a unit and which agency staff act (``PlanStaff``), the tasks
(``Task``), their progress notes with evidence files (``TaskNote``), and the reminders sent
(``TaskReminder``, one per task and kind)."""

from __future__ import annotations

import uuid
from pathlib import PurePath

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.model_fields import account_reference
from surveys.models import Agency, DeskChecks, Round, Unit, desk_constraints, desk_fields


class PlanStaff(DeskChecks, models.Model):
    """A staff account acting on the plans of one agency, or (no agency) coordinating the
    plans of a whole unit (creating tasks needs ``plans.add_task`` as well)."""

    user, unit, agency = desk_fields(
        "plan_desks", _("Empty: the account coordinates the action plans of the whole unit.")
    )

    class Meta:
        verbose_name = _("action plan staff")
        verbose_name_plural = _("action plan staff")
        constraints = desk_constraints("plan_staff")

    def __str__(self) -> str:
        return f"{self.user} · {self.agency or self.unit}"


class Task(models.Model):
    """One remedy for a weakness: an agency of the unit acts on an indicator by a deadline."""

    class Status(models.TextChoices):
        PLANNED = "planned", _("planned")
        IN_PROGRESS = "in_progress", _("in progress")
        DONE = "done", _("done")
        DROPPED = "dropped", _("dropped")

    class TargetKind(models.TextChoices):
        ABOVE_NATIONAL = "above_national", _("above the national value")
        AT_LEAST = "at_least", _("at least a value")
        RAISE_BY = "raise_by", _("raise by points")

    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="plan_tasks", verbose_name=_("round")
    )
    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="plan_tasks", verbose_name=_("unit")
    )
    agency = models.ForeignKey(
        Agency, on_delete=models.PROTECT, related_name="plan_tasks", verbose_name=_("agency")
    )
    indicator_code = models.CharField(_("indicator"), max_length=32)
    title = models.CharField(_("task"), max_length=200)
    target_kind = models.CharField(_("target"), max_length=16, choices=TargetKind.choices)
    target_value = models.FloatField(_("target value"), null=True, blank=True)
    working_days = models.PositiveSmallIntegerField(_("working days"))
    deadline = models.DateField(_("deadline"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PLANNED
    )
    drop_reason = models.TextField(_("reason for dropping"), blank=True)
    owner = account_reference(_("owner"), related_name="plan_tasks_owned")
    created_by = account_reference(_("created by"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["deadline", "pk"]
        verbose_name = _("action plan task")
        verbose_name_plural = _("action plan tasks")
        permissions = [("view_all_tasks", _("Can see the action plans of every unit"))]
        indexes = [
            models.Index(fields=["round", "unit"], name="plan_task_round_unit"),
            models.Index(fields=["status", "deadline"], name="plan_task_status_deadline"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="dropped") | ~Q(drop_reason=""),
                name="plan_task_dropped_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.indicator_code}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.PLANNED, self.Status.IN_PROGRESS)


def evidence_path(note: TaskNote, filename: str) -> str:
    """A stored name that reveals nothing of the original (kept in ``evidence_name``)."""
    suffix = PurePath(filename).suffix.lower()[:10]
    return f"plans/evidence/{note.task_id}/{uuid.uuid4().hex}{suffix}"


class TaskNote(models.Model):
    """A progress note on a task: text, a status change, an evidence file, or several."""

    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="notes", verbose_name=_("task")
    )
    author = account_reference(_("author"))
    text = models.TextField(_("note"), blank=True)
    status_from = models.CharField(
        _("status before"), max_length=16, choices=Task.Status.choices, blank=True
    )
    status_to = models.CharField(
        _("status after"), max_length=16, choices=Task.Status.choices, blank=True
    )
    evidence = models.FileField(_("evidence file"), upload_to=evidence_path, blank=True)
    evidence_name = models.CharField(_("file name"), max_length=255, blank=True)
    evidence_type = models.CharField(_("file type"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("written"), default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("progress note")
        verbose_name_plural = _("progress notes")

    def __str__(self) -> str:
        return f"#{self.task_id} {self.created_at:%Y-%m-%d}"


class TaskReminder(models.Model):
    """A reminder e-mail sent about a task: at most one per task and kind."""

    class Kind(models.TextChoices):
        DUE_SOON = "due_soon", _("deadline near")
        OVERDUE = "overdue", _("overdue")

    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="reminders", verbose_name=_("task")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    sent_on = models.DateField(_("sent on"))
    recipients = models.PositiveSmallIntegerField(_("recipients"), default=0)

    class Meta:
        verbose_name = _("task reminder")
        verbose_name_plural = _("task reminders")
        constraints = [
            models.UniqueConstraint(fields=["task", "kind"], name="plan_reminder_once_per_kind")
        ]

    def __str__(self) -> str:
        return f"#{self.task_id} {self.kind} {self.sent_on}"
