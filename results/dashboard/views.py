"""Pages of the public dashboard: each view parses, calls selectors, values and figures, renders."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext as _

from config.pages import problem
from results import agencies, selectors
from results.dashboard import agencies as agency_pages
from results.dashboard import diagnosis, figures, values
from scoring.models import Run
from surveys.models import Round, Unit


def not_found(request: HttpRequest, message: str) -> HttpResponse:
    """A friendly 404 page (``config.pages``) with a way back to the results."""
    return problem(
        request,
        title=_("Not found"),
        message=message,
        status=404,
        layout="results/_layout.html",
        back=(reverse("dashboard:index"), _("See the rounds with published results")),
    )


def _pick(choices: list[selectors.Choice], key: str | None) -> selectors.Choice | None:
    if not choices:
        return None
    if not key:
        return choices[0]
    return next((c for c in choices if c.key == key), None)


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "results/index.html", {"runs": selectors.published_runs()})


def round_ranking(request: HttpRequest, round_code: str) -> HttpResponse:
    survey_round, run = selectors.round_and_published_run(round_code)
    if survey_round is None:
        return not_found(request, _("There is no survey round “%(code)s”.") % {"code": round_code})
    if run is None:
        return render(request, "results/unpublished.html", {"round": survey_round})
    choices = values.indicator_choices(survey_round.version_id)
    choice = _pick(choices, request.GET.get("indicator"))
    if choice is None:
        return not_found(
            request,
            _("Round “%(round)s” has no indicator “%(code)s”.")
            % {"round": round_code, "code": request.GET.get("indicator", "")},
        )
    ranking = values.ranking(run, choice)
    context = {
        "round": survey_round,
        "run": run,
        "choice_groups": figures.choice_groups(choices),
        "selected": choice.key,
        "choice": choice,
        "ranking": ranking,
        "figure": figures.ranking_figure(ranking),
        "min_n": settings.MIN_PUBLISH_N,
    }
    return render(request, "results/round.html", context)


def unit_results(request: HttpRequest, round_code: str, unit_code: str) -> HttpResponse:
    survey_round, run = selectors.round_and_published_run(round_code)
    if survey_round is None:
        return not_found(request, _("There is no survey round “%(code)s”.") % {"code": round_code})
    if run is None:
        return render(request, "results/unpublished.html", {"round": survey_round})
    unit = selectors.unit_by_code(unit_code)
    if unit is None:
        return not_found(request, _("There is no unit “%(code)s”.") % {"code": unit_code})
    choices = values.indicator_choices(survey_round.version_id)
    breakdown = values.unit_breakdown(run, unit, choices)
    if all(row.unit is None for row in breakdown) and not selectors.round_covers(run, unit):
        return not_found(
            request,
            _("%(unit)s was not covered by the round “%(round)s”.")
            % {"unit": unit.name, "round": round_code},
        )
    asked = request.GET.get("indicator")
    trend_choice = _pick(choices, asked)
    if trend_choice is None and asked:
        return not_found(request, _("There is no indicator “%(code)s”.") % {"code": asked})
    # A questionnaire with items only (no index above them) has nothing to follow over rounds.
    trend = values.unit_trend(unit, trend_choice.indicator_code) if trend_choice else []
    lineage = values.unit_lineage(unit)
    overall = breakdown[0] if breakdown else None
    elements = [row for row in breakdown if row.choice.kind != "policy_group"]
    groups = [row for row in breakdown if row.choice.kind == "policy_group"]
    context = {
        "round": survey_round,
        "run": run,
        "unit": unit,
        "overall": overall,
        "elements": elements,
        "groups": groups,
        "elements_figure": figures.breakdown_figure(
            elements,
            figure_id="elements",
            caption=_("%(unit)s: index, fields and elements against the national value")
            % {"unit": unit.name},
            unit_name=unit.name,
        ),
        "groups_figure": figures.breakdown_figure(
            groups,
            figure_id="groups",
            caption=_("%(unit)s: policy groups against the national value") % {"unit": unit.name},
            unit_name=unit.name,
        )
        if groups
        else None,
        "choice_groups": figures.choice_groups(choices),
        "selected": trend_choice.key if trend_choice else "",
        "trend_choice": trend_choice,
        "trend": trend,
        "trend_has_break": any(p.series_break for p in trend),
        "trend_figure": figures.trend_figure(
            trend,
            figure_id="trend",
            caption=_("%(unit)s: %(indicator)s over rounds")
            % {"unit": unit.name, "indicator": trend_choice.name},
            unit_name=unit.name,
        )
        if trend and trend_choice
        else None,
        "lineage": lineage,
        "min_n": settings.MIN_PUBLISH_N,
        "agencies_url": _agencies_url(request, survey_round, run, unit),
    }
    return render(request, "results/unit.html", context)


def unit_latest(request: HttpRequest, unit_code: str) -> HttpResponse:
    """The unit's page in the latest round with published results that covered it."""
    run = selectors.latest_run_covering(unit_code)
    if run is None:
        return not_found(
            request, _("No published results cover the unit “%(code)s”.") % {"code": unit_code}
        )
    return redirect("dashboard:unit", round_code=run.round.code, unit_code=unit_code)


def unit_diagnosis(request: HttpRequest, round_code: str, unit_code: str) -> HttpResponse:
    """The diagnosis of a unit in a round with published results (404 before publication)."""
    survey_round, run = selectors.round_and_published_run(round_code)
    if survey_round is None:
        return not_found(request, _("There is no survey round “%(code)s”.") % {"code": round_code})
    if run is None:
        return render(request, "results/unpublished.html", {"round": survey_round}, status=404)
    unit = selectors.unit_in_round(run, unit_code)
    if unit is None:
        return not_found(
            request,
            _("The round “%(round)s” did not cover the unit “%(code)s”.")
            % {"round": round_code, "code": unit_code},
        )
    context = diagnosis.context(run, unit) | {
        "round": survey_round,
        "run": run,
        "task_url": _task_url(request),
        "agencies_url": _agencies_url(request, survey_round, run, unit),
    }
    return render(request, "results/diagnosis.html", context)


def _task_url(request: HttpRequest) -> str | None:
    """Where staff plan an action for a weakness (the action plans' task form, by URL name:
    results imports nothing from the apps downstream of it); None for the public."""
    if not (request.user.is_authenticated and request.user.is_staff):
        return None
    try:
        return reverse("plans:task-new")
    except NoReverseMatch:
        return None


def _agencies_url(request: HttpRequest, survey_round: Round, run: Run, unit: Unit) -> str | None:
    """The unit's agency results page, when the viewer may see it and it has values."""
    if not agencies.may_see(request.user, survey_round, unit):
        return None
    if not agencies.has_agency_results(run, unit):
        return None
    return reverse("dashboard:agencies", args=[survey_round.code, unit.code])


def unit_agencies(request: HttpRequest, round_code: str, unit_code: str) -> HttpResponse:
    """The values per agency of a unit in a round's published run, national or local, for
    those ``results.agencies.may_see`` lets in; 404 for everyone else, as an unknown page."""
    found = agencies.viewable(request.user, round_code, unit_code)
    if found is None:
        return not_found(request, _("There are no agency results to show here."))
    run, unit = found
    response = render(request, "results/agencies.html", agency_pages.context(run, unit))
    if request.user.is_authenticated or not agencies.is_public(run.round):
        patch_cache_control(response, private=True, no_store=True)
    patch_vary_headers(response, ("Cookie",))
    return response
