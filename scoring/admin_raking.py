"""Admin of population margins (uploaded as a CSV per round) and of runs' raking factors.

Margins are replaced a round at a time by uploading a file ("Upload margins"), never typed
in row by row, so every stored margin passed the file's validation. Staff need the add and
delete permissions on population margins. Raking factors are read-only audit records; a
factor at one of the run's bounds is marked. ``raking_warnings`` turns a run's raking report
into the warning list of the run's admin page (units at a bound, above the design-effect
warning, or whose margins were not met).
"""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.admin_mixins import Page, ReadOnlyMixin, ToolLinkMixin, ToolPagesMixin
from scoring import margins, raking
from scoring.models import PopulationMargin, RakingFactor
from surveys.models import Round

UPLOAD_MARGINS = ("scoring.add_populationmargin", "scoring.delete_populationmargin")
EXAMPLE_CSV = """unit,dimension,category,population
01,sex_age,nam|18_25,412000
01,area,do_thi,2950000"""


class MarginsUploadForm(forms.Form):
    round = forms.ModelChoiceField(
        Round.objects.order_by("-opens_at", "code"), label=_("survey round"), to_field_name="code"
    )
    file = forms.FileField(label=_("CSV file"))


@admin.register(PopulationMargin)
class PopulationMarginAdmin(ToolLinkMixin, ToolPagesMixin, admin.ModelAdmin):
    list_display = ["round", "unit", "dimension", "category", "population"]
    list_filter = ["round", "dimension"]
    list_select_related = ["round", "unit"]
    search_fields = ["unit__code", "unit__name", "category"]
    readonly_fields = ["round", "unit", "dimension", "category", "population"]

    tool_url_name = "admin:scoring_populationmargin_upload"
    tool_label = _("Upload margins (CSV)")
    tool_permission = "upload"
    own_pages = (Page("upload/", "upload_view", "scoring_populationmargin_upload"),)

    def has_upload_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perms(UPLOAD_MARGINS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # uploaded as a file, so that every row is validated

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """A form to replace a round's margins with a CSV file; its errors stay on the form."""
        if not self.has_upload_permission(request):
            raise PermissionDenied
        post = request.method == "POST"
        form = MarginsUploadForm(request.POST if post else None, request.FILES if post else None)
        if form.is_valid():
            survey_round = form.cleaned_data["round"]
            code = survey_round.code
            try:
                stored = margins.replace_margins(
                    round_code=code, data=form.cleaned_data["file"].read()
                )
            except ValidationError as error:
                form.add_error(None, error)  # keyed by field: file (or round)
            else:
                self.message_user(
                    request,
                    _("%(n)d population margins of round %(round)s stored.")
                    % {"n": stored, "round": code},
                    messages.SUCCESS,
                )
                url = reverse("admin:scoring_populationmargin_changelist")
                return HttpResponseRedirect(f"{url}?round__id__exact={survey_round.pk}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "form_id": "margins-form",
            "example": EXAMPLE_CSV,
            "title": _("Upload population margins"),
            "intro": _(
                "Replaces all population margins of the round with those of the file "
                "(columns unit, dimension, category, population; dimension sex_age or area). "
                "A file with any error stores nothing. The next run of the round rakes its "
                "weights to these margins."
            ),
            "submit": _("Upload"),
        }
        return TemplateResponse(request, "admin/scoring/tool_form.html", context)


def short_number(value: float | None) -> str:
    """A number with at most two decimals, no trailing zeros, in the active language; None
    (an upper bound left out of a raking report, i.e. infinite) is ∞."""
    if value is None or math.isinf(value):
        return "∞"
    return number_format(f"{value:.2f}".rstrip("0").rstrip("."))


def unit_warnings(unit: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """The reasons a unit of a raking report needs a look, as sentences (translated)."""
    reasons = []
    lower, upper = report.get("factor_bounds") or (None, None)
    at_bound = unit.get("cells_at_lower", 0) + unit.get("cells_at_upper", 0)
    if at_bound:
        reasons.append(
            gettext("%(n)d of %(cells)d raking factors at a bound (%(lower)s or %(upper)s)")
            % {
                "n": at_bound,
                "cells": unit.get("cells", at_bound),
                "lower": short_number(lower),
                "upper": short_number(upper),
            }
        )
    if unit.get("deff_above_warning"):
        reasons.append(
            gettext(
                "design effect from weighting %(after)s after raking (%(before)s before), "
                "above %(threshold)s"
            )
            % {
                "after": short_number(unit["deff_after"]),
                "before": short_number(unit["deff_before"]),
                "threshold": short_number(report["deff_warning"]),
            }
        )
    if not unit.get("converged", True):
        if unit.get("max_deviation") is None:
            reasons.append(gettext("no respondent with every demographic answer: not raked"))
        else:
            reasons.append(
                gettext(
                    "margins not met within the factor bounds: largest gap %(gap)s%% "
                    "after %(iterations)d sweeps"
                )
                % {
                    "gap": short_number(100 * unit["max_deviation"]),
                    "iterations": unit.get("iterations", 0),
                }
            )
    return reasons


def raking_warnings(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Units of a run's raking report that need a look: [{unit, reasons}], in unit order.

    Reports of runs made before bounded raking lack bounds and design effects; only their
    convergence is then checked.
    """
    if not report:
        return []
    warnings = []
    for code, unit in report.get("units", {}).items():
        if reasons := unit_warnings(unit, report):
            warnings.append({"unit": code, "reasons": reasons})
    return warnings


@admin.register(RakingFactor)
class RakingFactorAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "run",
        "unit",
        "sex",
        "age",
        "area",
        "responses",
        "design_weight",
        "factor",
        "at_bound",
    ]
    list_filter = ["run"]
    list_select_related = ["run", "unit"]
    search_fields = ["unit__code"]
    readonly_fields = [field.name for field in RakingFactor._meta.fields]

    @admin.display(boolean=True, description=_("at a bound"))
    def at_bound(self, factor: RakingFactor) -> bool | None:
        """Whether the factor is one of its run's bounds (None: a run raked without them)."""
        bounds = (factor.run.settings_used.get("raking") or {}).get("factor_bounds")
        if not bounds:
            return None
        return any(
            math.isclose(factor.factor, bound, rel_tol=raking.AT_BOUND)
            for bound in bounds
            if bound is not None  # no upper bound
        )
