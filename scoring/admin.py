"""Admin for scoring runs and their scores: read-only records, and recomputes started here.

Runs and scores are audit records: nobody adds, changes or deletes them in the admin. Staff
with ``scoring.add_run`` start a recompute from the run list ("Recompute a round"), with
the action on selected runs, or from the round's own page (``admin_rounds``); the run is
computed and published by the Celery task.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from config.admin_mixins import ObjectContextMixin, ReadOnlyMixin, ToolLinkMixin
from config.queueing import BrokerUnavailable
from scoring import admin_raking  # also registers the margins' and factors' admins
from scoring.admin_rounds import START_RUNS, start_recompute
from scoring.models import SCORE_VALUE_FIELDS, Run, Score
from surveys import scoping
from surveys.admin import ProvinceScopedMixin, ScopedRelatedFilter
from surveys.models import Round

# Form choices and list filters on runs reach a province's own rounds only.
scoping.OWNER_PATHS[Run] = "round__owner_unit"


class RecomputeForm(forms.Form):
    round = forms.ModelChoiceField(
        Round.objects.order_by("-opens_at", "code"), label=_("survey round"), to_field_name="code"
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["round"].queryset = scoping.rounds_for(user).order_by("-opens_at", "code")


# A run's state as the list and the page show it.
RUN_STATE = ["status", "started_at", "finished_at", "published_at", "response_count"]


@admin.register(Run)
class RunAdmin(
    ReadOnlyMixin, ProvinceScopedMixin, ToolLinkMixin, ObjectContextMixin, admin.ModelAdmin
):
    """Runs are started ("Recompute a round"), never typed in, and kept for audit."""

    owner_path = "round__owner_unit"
    list_display = ["id", "round", *RUN_STATE, "answer_count"]
    list_display_links = ["id", "round"]
    list_filter = ["status", ("round", ScopedRelatedFilter)]
    list_select_related = ["round"]
    date_hierarchy = "started_at"
    fields = [
        "round",
        *RUN_STATE,
        "excluded_responses",
        "answer_count",
        "versions",
        "settings_used",
        "code_version",
        "progress",
        "error",
        "scores_link",
    ]
    readonly_fields = fields
    actions = ["recompute_rounds"]

    tool_url_name = "admin:scoring_run_recompute"
    tool_label = _("Recompute a round")
    tool_permission = "recompute"
    change_form_template = "admin/scoring/run/change_form.html"  # with the raking warnings

    def has_recompute_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(START_RUNS)

    def get_urls(self) -> list[Any]:
        urls = [
            path(
                "recompute/",
                self.admin_site.admin_view(self.recompute_view),
                name="scoring_run_recompute",
            ),
        ]
        return urls + super().get_urls()

    def object_context(self, request: HttpRequest, run: Run) -> dict[str, Any]:
        """The raking warnings, settings and factors of the run shown."""
        report = run.settings_used.get("raking")
        context: dict[str, Any] = {
            "raking_warnings": admin_raking.raking_warnings(report),
            "raking_factors_url": reverse("admin:scoring_rakingfactor_changelist")
            + f"?run__id__exact={run.pk}",
        }
        if report and (bounds := report.get("factor_bounds")):  # raked with bounds
            context["raking_settings"] = {
                "lower": admin_raking.short_number(bounds[0]),
                "upper": admin_raking.short_number(bounds[1]),
                "deff_warning": admin_raking.short_number(report["deff_warning"]),
            }
        return context

    @admin.display(description=_("responses excluded by review"))
    def excluded_responses(self, run: Run) -> str:
        """How many responses the review excluded from this run, per unit."""
        excluded = run.settings_used.get("excluded") or {}
        units = excluded.get("units") or {}
        if not units:
            return "0"
        return format_html(
            "{} ({})",
            excluded.get("responses", 0),
            ", ".join(f"{code}: {n}" for code, n in sorted(units.items())),
        )

    @admin.display(description=_("scores"))
    def scores_link(self, run: Run) -> str:
        url = reverse("admin:scoring_score_changelist") + f"?run__id__exact={run.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Scores of this run"))

    @admin.action(description=_("Recompute selected rounds' scores"), permissions=["recompute"])
    def recompute_rounds(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        codes = queryset.order_by("round__code").values_list("round__code", flat=True).distinct()
        for code in codes:
            try:
                self.start_recompute(request, code)
            except BrokerUnavailable as problem:
                self.message_user(request, f"{code}: {problem.detail}", messages.ERROR)
                return

    def start_recompute(self, request: HttpRequest, round_code: str) -> Run:
        return start_recompute(request, round_code)

    def recompute_view(self, request: HttpRequest) -> HttpResponse:
        """A form to recompute one round; an unknown round is a form error."""
        if not self.has_recompute_permission(request):
            raise PermissionDenied
        form = RecomputeForm(request.POST if request.method == "POST" else None, user=request.user)
        if form.is_valid():
            try:
                self.start_recompute(request, form.cleaned_data["round"].code)
            except ValidationError as error:
                form.add_error(None, error)  # keyed by field: round
            except BrokerUnavailable as problem:
                form.add_error(None, problem.detail)
            else:
                return HttpResponseRedirect(reverse("admin:scoring_run_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "form_id": "recompute-form",
            "title": _("Recompute a round"),
            "intro": _(
                "Computes every indicator of the round from its responses in the background "
                "and publishes the values when done; the published values stay until then."
            ),
            "submit": _("Recompute"),
        }
        return TemplateResponse(request, "admin/scoring/tool_form.html", context)


@admin.register(Score)
class ScoreAdmin(ReadOnlyMixin, ProvinceScopedMixin, admin.ModelAdmin):
    owner_path = "run__round__owner_unit"  # a local round's values: its province and national
    list_display = ["indicator", "scope", "unit", "agency", *SCORE_VALUE_FIELDS, "change", "run"]
    list_filter = [
        "scope",
        "suppressed",
        ("run", ScopedRelatedFilter),
        ("indicator", ScopedRelatedFilter),
    ]
    list_select_related = ["indicator", "unit", "agency", "run__round"]
    search_fields = ["indicator__code", "unit__code", "agency__code"]
    show_full_result_count = False  # a run has thousands of scores; skip the second count
    readonly_fields = [field.name for field in Score._meta.fields]
