"""Scoring runs and the indicator values they computed.

Every computation of a round is a ``Run``. Its values (``Score`` rows) are written while the
run is ``running``/``computed`` and become visible only when the run is published, which
supersedes the round's previous published run in one transaction: readers filter on the
published run, so they see the old values or the new ones, never a mix. Partial unique
constraints hold at most one running and one published run per round. Population margins
(staff data per round and unit) let a run rake the weights; its factors and the responses'
raked weights are stored under the run.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.model_fields import optional_key
from feedback.models import Response
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
    # When its task was last handed to the broker (empty: when it started).
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    response_count = models.PositiveIntegerField(_("responses"), default=0)
    # Valid answers feeding the indices (hidden, skipped and unscored questions excluded).
    answer_count = models.PositiveIntegerField(_("valid answers scored"), default=0)
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
    unit = optional_key(Unit, models.PROTECT, related_name="scores")
    agency = optional_key(Agency, models.PROTECT, related_name="scores")
    value = models.FloatField(_("value"), null=True, blank=True)
    n = models.PositiveIntegerField(_("respondents"), default=0)
    valid = models.PositiveIntegerField(_("valid answers"), default=0)
    weight_sum = models.FloatField(_("sum of weights"), default=0.0)
    se = models.FloatField(_("standard error"), null=True, blank=True)
    deff = models.FloatField(_("design effect"), null=True, blank=True)
    n_eff = models.FloatField(_("effective sample size"), null=True, blank=True)
    # xgettext:no-python-format
    ci_low = models.FloatField(_("95% interval, low"), null=True, blank=True)
    # xgettext:no-python-format
    ci_high = models.FloatField(_("95% interval, high"), null=True, blank=True)
    rank = models.PositiveIntegerField(_("rank"), null=True, blank=True)
    rank_of = models.PositiveIntegerField(_("ranked units"), null=True, blank=True)
    # xgettext:no-python-format
    rank_low = models.PositiveIntegerField(_("rank, 95% interval, best"), null=True, blank=True)
    # xgettext:no-python-format
    rank_high = models.PositiveIntegerField(_("rank, 95% interval, worst"), null=True, blank=True)
    suppressed = models.BooleanField(_("suppressed (too few respondents)"), default=False)
    change = models.FloatField(_("change since the previous round"), null=True, blank=True)
    change_p = models.FloatField(_("p-value of the change"), null=True, blank=True)
    change_significant = models.BooleanField(_("change significant"), null=True, blank=True)

    class Meta:
        verbose_name = _("score")
        verbose_name_plural = _("scores")
        indexes = [models.Index(fields=["run", "indicator"], name="score_run_indicator")]

    def __str__(self) -> str:
        return f"{self.indicator_id}@{self.unit_id or 'national'}={self.value}"


# What a published score holds, in the order every list of them follows (the exports' columns,
# the results API, the admin): its value and precision, then (issue 13) the change since the
# previous round, the design effect and the rank interval.
SCORE_VALUE_FIELDS = (
    "value",
    "n",
    "valid",
    "se",
    "ci_low",
    "ci_high",
    "rank",
    "rank_of",
    "suppressed",
)
SCORE_CHANGE_FIELDS = (
    "change",
    "change_significant",
    "deff",
    "n_eff",
    "rank_low",
    "rank_high",
    "change_p",
)
SCORE_FIELDS = (*SCORE_VALUE_FIELDS, *SCORE_CHANGE_FIELDS)
# What a suppressed score withholds wherever it is published (``None``): every figure but the
# counts (respondents, valid answers), the rank and the number of units ranked.
HIDDEN_WHEN_SUPPRESSED = tuple(
    name for name in SCORE_FIELDS if name not in ("n", "valid", "rank", "rank_of", "suppressed")
)


class PopulationMargin(models.Model):
    """A staff-supplied population count of one unit in one category of a raking dimension.

    ``sex_age`` categories join the sex and age band choice codes with ``|`` (``nam|18_25``),
    ``area`` categories are area choice codes (``do_thi``); which questions give sex, age and
    area is the setting ``RAKING_QUESTIONS``. Uploaded per round as a CSV that replaces the
    round's margins (``scoring.margins``).
    """

    class Dimension(models.TextChoices):
        SEX_AGE = "sex_age", _("sex × age band")
        AREA = "area", _("area")

    round = models.ForeignKey(
        Round, on_delete=models.CASCADE, related_name="population_margins", verbose_name=_("round")
    )
    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="population_margins", verbose_name=_("unit")
    )
    dimension = models.CharField(_("dimension"), max_length=16, choices=Dimension.choices)
    category = models.CharField(_("category"), max_length=65)
    population = models.FloatField(_("population"))

    class Meta:
        ordering = ["round", "unit__code", "dimension", "category"]
        verbose_name = _("population margin")
        verbose_name_plural = _("population margins")
        constraints = [
            models.UniqueConstraint(
                fields=["round", "unit", "dimension", "category"],
                name="scoring_one_margin_per_category",
            ),
            models.CheckConstraint(
                condition=Q(population__gte=0), name="scoring_margin_population_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.unit_id} {self.dimension} {self.category}={self.population:g}"


class RakingFactor(models.Model):
    """A run's raking factor for one unit and demographic cell (kept for audit).

    A role the round's margins do not use is stored as ``""``. ``design_weight`` is the sum
    of the design weights of the cell's ``responses``; their raked weight is that × ``factor``.
    """

    # Indexed as the first column of the unique constraint.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="raking_factors", db_index=False
    )
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    sex = models.CharField(_("sex"), max_length=64, blank=True)
    age = models.CharField(_("age band"), max_length=64, blank=True)
    area = models.CharField(_("area"), max_length=64, blank=True)
    responses = models.PositiveIntegerField(_("responses"))
    design_weight = models.FloatField(_("sum of design weights"))
    factor = models.FloatField(_("factor"))

    class Meta:
        verbose_name = _("raking factor")
        verbose_name_plural = _("raking factors")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "unit", "sex", "age", "area"], name="scoring_one_factor_per_cell"
            )
        ]

    def __str__(self) -> str:
        return f"{self.unit_id} {self.sex}|{self.age}|{self.area}×{self.factor:g}"


class ResponseWeight(models.Model):
    """A response's final (raked) weight in a run; responses without a row keep their own.

    Deleted with the run. Written by one ``INSERT … SELECT`` (``scoring.raking``).
    """

    # Indexed as the first column of the unique constraint.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="response_weights", db_index=False
    )
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    weight = models.FloatField(_("weight"))

    class Meta:
        verbose_name = _("response weight")
        verbose_name_plural = _("response weights")
        constraints = [
            # Also the index the scoring statements look weights up by.
            models.UniqueConstraint(fields=["run", "response"], name="scoring_one_weight_per_run")
        ]

    def __str__(self) -> str:
        return f"{self.response_id}@{self.run_id}={self.weight:g}"
