"""Scoring runs and the indicator values they computed.

Every computation of a round is a ``Run``. Its values (``Score`` rows) are written while the
run is ``running``/``computed`` and become visible only when the run is published, which
supersedes the round's previous published run in one transaction: readers filter on the
published run, so they see the old values or the new ones, never a mix. Partial unique
constraints hold at most one running and one published run per round.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from surveys.models import Agency, Indicator, Round, Unit


class Run(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        COMPUTED = "computed", _("computed")
        PUBLISHED = "published", _("published")
        SUPERSEDED = "superseded", _("superseded")
        FAILED = "failed", _("failed")

    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="scoring_runs", verbose_name=_("round")
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    # Set when a worker takes the run up and at each step of its computation.
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)
    response_count = models.PositiveIntegerField(_("responses"), default=0)
    answer_count = models.PositiveIntegerField(_("answers"), default=0)
    versions = models.JSONField(_("questionnaire versions"), default=list, blank=True)
    settings_used = models.JSONField(_("settings used"), default=dict, blank=True)
    code_version = models.CharField(_("code version"), max_length=64, blank=True)
    progress = models.CharField(_("progress"), max_length=200, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("scoring run")
        verbose_name_plural = _("scoring runs")
        constraints = [
            models.UniqueConstraint(
                fields=["round"],
                condition=Q(status="published"),
                name="scoring_one_published_run_per_round",
            ),
            models.UniqueConstraint(
                fields=["round"],
                condition=Q(status="running"),
                name="scoring_one_running_run_per_round",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.round_id} ({self.status})"


class Score(models.Model):
    """The value of one indicator for one unit (or the nation, ``unit`` null) in a run."""

    class Scope(models.TextChoices):
        UNIT = "unit", _("unit")
        AGENCY = "agency", _("agency")
        NATIONAL = "national", _("national, pooled over all respondents")
        NATIONAL_MEAN = "national_mean", _("national, mean of unit values")

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="scores")
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices)
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="scores")
    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, null=True, blank=True, related_name="scores"
    )
    agency = models.ForeignKey(
        Agency, on_delete=models.PROTECT, null=True, blank=True, related_name="scores"
    )
    value = models.FloatField(_("value"), null=True, blank=True)
    n = models.PositiveIntegerField(_("respondents"), default=0)
    valid = models.PositiveIntegerField(_("valid answers"), default=0)
    weight_sum = models.FloatField(_("sum of weights"), default=0.0)
    se = models.FloatField(_("standard error"), null=True, blank=True)
    ci_low = models.FloatField(_("95% interval, low"), null=True, blank=True)
    ci_high = models.FloatField(_("95% interval, high"), null=True, blank=True)
    rank = models.PositiveIntegerField(_("rank"), null=True, blank=True)
    rank_of = models.PositiveIntegerField(_("ranked units"), null=True, blank=True)
    suppressed = models.BooleanField(_("suppressed (too few respondents)"), default=False)
    change = models.FloatField(_("change since the previous round"), null=True, blank=True)
    change_significant = models.BooleanField(_("change significant"), null=True, blank=True)

    class Meta:
        verbose_name = _("score")
        verbose_name_plural = _("scores")
        indexes = [models.Index(fields=["run", "indicator"], name="score_run_indicator")]

    def __str__(self) -> str:
        return f"{self.indicator_id}@{self.unit_id or 'national'}={self.value}"
