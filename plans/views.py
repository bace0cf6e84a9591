"""Staff pages of action plans: the plans an account sees, a unit's plan with "did it move?",
the task form (prefilled from ``?round=&unit=&indicator=``), the task page (status, notes,
evidence), evidence downloads and the XLSX/PDF exports.

Views parse the request, call ``plans.services`` or ``plans.selectors`` and render; every
read goes through ``selectors.tasks_visible_to``. Anonymous visitors are sent to the login
page; a task or plan outside the account's scope is a 404, whatever its id.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from plans import exports, selectors, services
from plans.models import PlanStaff, Task, TaskNote
from surveys.models import Agency, Indicator, Round, localized

NEW_FIELDS = ["round", "unit", "agency", "indicator", "title", "target_kind", "target_value",
              "working_days", "owner"]  # fmt: skip


def signed_in[View: Callable[..., HttpResponse]](view: View) -> View:
    """Anonymous visitors go to the login page (the admin's), then come back."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated or not request.user.is_active:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@require_GET
@signed_in
def plan_index(request: HttpRequest) -> HttpResponse:
    plans = selectors.plans_visible_to(request.user)
    may_plan = selectors.coordinated_units(request.user).exists()
    if not plans and not may_plan:
        raise Http404
    return render(request, "plans/index.html", {"plans": plans, "may_plan": may_plan})


def _plan(request: HttpRequest, round_code: str, unit_code: str) -> dict[str, Any]:
    plan = selectors.plan_of(request.user, round_code=round_code, unit_code=unit_code)
    if plan is None:
        raise Http404
    return plan


def _attachment(plan: dict[str, Any], suffix: str) -> str:
    # Codes are checked on entry (letters, digits, "-", "_", "."): nothing to escape.
    return f'attachment; filename="plan-{plan["round"].code}-{plan["unit"].code}.{suffix}"'


@require_GET
@signed_in
def plan_page(request: HttpRequest, round_code: str, unit_code: str) -> HttpResponse:
    return render(request, "plans/plan.html", _plan(request, round_code, unit_code))


# The files a plan downloads as: how each is written, and its content type.
PLAN_FILES = {
    "xlsx": (
        exports.plan_xlsx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "pdf": (exports.plan_pdf, "application/pdf"),
}


@require_GET
@signed_in
def plan_file(request: HttpRequest, round_code: str, unit_code: str, kind: str) -> HttpResponse:
    """The plan as a file of ``kind`` (``PLAN_FILES``), to download."""
    plan = _plan(request, round_code, unit_code)
    write, content_type = PLAN_FILES[kind]
    return HttpResponse(
        write(plan),
        content_type=content_type,
        headers={"Content-Disposition": _attachment(plan, kind)},
    )


def _new_form_context(request: HttpRequest, values: dict[str, str]) -> dict[str, Any]:
    """Choices of the task form: the rounds, units the account plans for, the unit's
    agencies and their staff, and the round's indicators."""
    units = selectors.coordinated_units(request.user).order_by("code")
    unit = units.filter(code=values.get("unit", "")).first()
    # Only rounds covering a unit the account plans for (never another province's round).
    rounds = Round.objects.filter(units__in=units).distinct().order_by("-period_start", "code")
    if unit is not None:
        rounds = rounds.filter(units=unit)
    survey_round = rounds.filter(code=values.get("round", "")).first()
    chosen_units = units.filter(pk=unit.pk) if unit else units
    agencies = Agency.objects.filter(unit__in=chosen_units).select_related("unit")
    desks = PlanStaff.objects.filter(unit__in=chosen_units, user__is_active=True)
    desks = desks.select_related("user", "agency", "unit").order_by("user__username")
    return {
        "values": values,
        # (value, text) of each choice
        "rounds": [(r.code, f"{r.code} · {localized(r, 'name')}") for r in rounds],
        "units": [(u.code, f"{u.code} · {u.name}") for u in units],
        "agencies": [(a.code, f"{a.code} · {localized(a, 'name')}") for a in agencies],
        "owners": [
            (
                str(d.user.pk),
                f"{d.user.get_username()} · {d.agency.code if d.agency else d.unit.code}",
            )
            for d in desks
        ],
        "indicators": (
            Indicator.objects.filter(version_id=survey_round.version_id).order_by(
                "position", "code"
            )
            if survey_round
            else Indicator.objects.none()
        ),
        "target_kinds": Task.TargetKind.choices,
    }


@require_http_methods(["GET", "POST"])
@signed_in
def task_new(request: HttpRequest) -> HttpResponse:
    """The task form; ``?round=&unit=&indicator=`` prefill it (the diagnosis page links here)."""
    if not selectors.coordinated_units(request.user).exists():
        raise PermissionDenied(_("You may not create tasks."))
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in NEW_FIELDS}
        try:
            task = services.create_task(user=request.user, data=services.TaskInput(**values))
        except ValidationError as problem:
            errors = problem.message_dict
        else:
            return redirect("plans:task", task_id=task.pk)
    else:
        values = {name: request.GET.get(name, "") for name in NEW_FIELDS}
    context = _new_form_context(request, values)
    return render(
        request, "plans/task_new.html", {**context, "errors": errors}, status=400 if errors else 200
    )


@require_http_methods(["GET", "POST"])
@signed_in
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = (
        selectors.tasks_visible_to(request.user)
        .select_related("round", "unit", "agency", "owner", "created_by")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise Http404
    may_update = selectors.can_update(request.user, task)
    errors: dict[str, list[str]] = {}
    values = {"status": "", "drop_reason": "", "text": ""}
    if request.method == "POST":
        if not may_update:
            raise PermissionDenied(_("You may see this task but not update it."))
        values = {name: request.POST.get(name, "") for name in values}
        try:
            services.update_task(
                user=request.user,
                task_id=task.pk,
                evidence=request.FILES.get("evidence"),
                **values,
            )
        except services.TaskNotFound as missing:
            raise Http404 from missing
        except ValidationError as problem:
            errors = problem.message_dict
        else:
            return redirect("plans:task", task_id=task.pk)
    return render(
        request,
        "plans/task.html",
        {
            "task": task,
            "notes": selectors.notes_of(task),
            "readings": selectors.progress([task])[task.pk],
            "may_update": may_update,
            "next_statuses": [
                (s, label)
                for s, label in Task.Status.choices
                if s in services.TRANSITIONS[task.status]
            ],
            "values": values,
            "errors": errors,
            "max_mb": settings.PLANS_EVIDENCE_MAX_BYTES // 2**20,
        },
        status=400 if errors else 200,
    )


@require_GET
@signed_in
def evidence(request: HttpRequest, note_id: int) -> FileResponse:
    """An evidence file, to accounts that see its task; always a download, never shown inline."""
    note = (
        TaskNote.objects.filter(pk=note_id, task__in=selectors.tasks_visible_to(request.user))
        .exclude(evidence="")
        .first()
    )
    if note is None:
        raise Http404
    response = FileResponse(
        note.evidence.open("rb"),
        as_attachment=True,
        filename=note.evidence_name or "evidence",
        content_type=note.evidence_type or "application/octet-stream",
    )
    response["Cache-Control"] = "private, no-store"
    return response
