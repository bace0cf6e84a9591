"""The survey round's admin page, completed by scoring: each unit's responses against
``MIN_PUBLISH_N`` and its value in the published run, and a button to recompute the round.

Data flows surveys → feedback → scoring, so the survey app cannot read responses or runs.
Scoring therefore replaces the survey app's round admin with a subclass that adds this
section, as a project replaces Django's ``UserAdmin``; the survey app knows nothing of it.
The button starts a run through the same service as "Recompute a round" on the run list.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import select_template
from django.urls import reverse
from django.utils.translation import gettext as _

from config.admin_mixins import ObjectContextMixin, Page, ToolPagesMixin
from config.queueing import BrokerUnavailable
from scoring import selectors, services
from scoring.models import Run
from surveys import admin as surveys_admin
from surveys.models import Round

START_RUNS = "scoring.add_run"


def start_recompute(request: HttpRequest, round_code: str) -> Run:
    """Start (or join) the round's run and queue its task, which computes and publishes
    it, and say so; ``BrokerUnavailable`` (nothing started) if the task cannot be queued."""
    run, created = services.request_recompute(round_code=round_code)
    if created:
        message = _("Run %(id)s of round %(round)s started.")
    else:
        message = _("Run %(id)s of round %(round)s is already running.")
    messages.success(request, message % {"id": run.pk, "round": round_code})
    return run


admin.site.unregister(Round)


@admin.register(Round)
class RoundAdmin(ObjectContextMixin, ToolPagesMixin, surveys_admin.RoundAdmin):
    """The survey app's round admin, with the section "Responses and publication"."""

    change_form_template = "admin/scoring/round/change_form.html"
    own_pages = (Page("<path:object_id>/recompute/", "recompute_view", "surveys_round_recompute"),)

    def object_context(self, request: HttpRequest, survey_round: Round) -> dict[str, Any]:
        return {"publication": self.publication(request, survey_round)}

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        # The page extends the change form the survey app would use (its own, if it ever has
        # one), so that this subclass adds a section without hiding anything of it.
        opts = self.opts
        context["base_change_form"] = select_template(
            [
                f"admin/{opts.app_label}/{opts.model_name}/change_form.html",
                f"admin/{opts.app_label}/change_form.html",
                "admin/change_form.html",
            ]
        ).template
        return super().render_change_form(request, context, *args, **kwargs)

    def publication(self, request: HttpRequest, survey_round: Round) -> dict[str, Any]:
        published, latest = selectors.latest_runs(round_id=survey_round.pk)
        return {
            "units": selectors.round_publication(survey_round=survey_round, run=published),
            "min_n": settings.MIN_PUBLISH_N,
            "published_run": published,
            "latest_run": latest,
            "can_recompute": request.user.has_perm(START_RUNS),
            "recompute_url": reverse("admin:surveys_round_recompute", args=[survey_round.pk]),
        }

    def recompute_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Recompute this round (POST), then back to its page with what happened."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(START_RUNS):
            raise PermissionDenied
        survey_round = self.get_object(request, unquote(object_id))
        if survey_round is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, survey_round):
            raise PermissionDenied
        try:
            start_recompute(request, survey_round.code)
        except BrokerUnavailable as problem:
            messages.error(request, problem.detail)
        url = reverse("admin:surveys_round_change", args=[survey_round.pk])
        return HttpResponseRedirect(f"{url}#publication")
