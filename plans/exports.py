"""The plan of a unit as an XLSX workbook (tasks, readings round by round, notes) and as a
PDF (``results.pdf.render_pdf``): the same rows the plan page shows, from the same scope."""

from __future__ import annotations

import io
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from results.pdf import render_pdf


def _cell(value: Any) -> Any:
    """Text without the control characters XLSX cannot hold; numbers and dates as they are."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def plan_xlsx(plan: dict[str, Any]) -> bytes:
    """Three sheets: the tasks, each task's readings (round by round), the progress notes."""
    book = Workbook()
    tasks = book.active
    tasks.title = _("Tasks")
    tasks.append([_("Task"), _("Indicator"), _("What to do"), _("Agency"), _("Owner"),
                  _("Target"), _("Target value"), _("Deadline"), _("Working days"),
                  _("Status"), _("Reason for dropping")])  # fmt: skip
    readings = book.create_sheet(_("Progress"))
    readings.append([_("Task"), _("Indicator"), _("Round"), _("Unit"), _("Value"),
                     _("95% interval, low"), _("95% interval, high"), _("National value"),
                     _("Gap to the nation"), _("Change since the motivating round"),
                     _("p-value"), _("Significant"), _("Target met")])  # fmt: skip
    notes = book.create_sheet(_("Notes"))
    notes.append([_("Task"), _("Written"), _("Author"), _("Status before"), _("Status after"),
                  _("Note"), _("Evidence file")])  # fmt: skip
    for row in plan["rows"]:
        task = row["task"]
        tasks.append([_cell(v) for v in (
            task.pk, task.indicator_code, task.title, task.agency.code,
            task.owner.get_username() if task.owner else "", task.get_target_kind_display(),
            task.target_value, task.deadline, task.working_days, task.get_status_display(),
            task.drop_reason,
        )])  # fmt: skip
        for reading in row["readings"]:
            readings.append([_cell(v) for v in (
                task.pk, task.indicator_code, reading.round_code, reading.unit_code,
                reading.value, reading.ci_low, reading.ci_high, reading.national, reading.gap,
                reading.change, reading.change_p, reading.change_significant,
                reading.target_met,
            )])  # fmt: skip
        for note in row["notes"]:
            notes.append([_cell(v) for v in (
                task.pk, timezone.localtime(note.created_at).replace(tzinfo=None),
                note.author.get_username() if note.author else "",
                note.get_status_from_display(), note.get_status_to_display(), note.text,
                note.evidence_name,
            )])  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def plan_pdf(plan: dict[str, Any]) -> bytes:
    return render_pdf("plans/print/plan.html", {**plan, "generated_at": timezone.now()})
