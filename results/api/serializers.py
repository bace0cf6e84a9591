"""Output shapes of the results API (they render the documents and describe the schema).

A suppressed value (too few respondents, or withheld so that such a value cannot be computed
back: ``scoring.suppression``) is published as ``null`` with ``suppressed: true``: ``value``,
``se``, ``ci_low``, ``ci_high``, the design effect and effective size, the rank interval and
the change with its p-value and flag never carry its numbers; ``n`` and ``valid`` stay (they
are no value and the suppression already assumes them known). A published value resting on
a withheld child says so (``children_suppressed``).

Every published value, whatever the endpoint, is rendered by ``ValueSerializer`` or
``PublishedValueSerializer`` (with the precision, rank-interval and change fields of issue
13), so each endpoint documents them alike; the method and its formulas are in
``docs/results-api.md``. A document showing fewer of them removes the others (``field =
None``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from scoring.models import HIDDEN_WHEN_SUPPRESSED
from surveys.api.serializers import PublishedRunSchema, RoundUnitSchema

# --- Shapes shared by the documents -----------------------------------------------------------


def code_list(help_text: str) -> serializers.ListField:
    """A list of codes (of units, indicators, questions), described by ``help_text``."""
    return serializers.ListField(child=serializers.CharField(), help_text=help_text)


class TextsSerializer(serializers.Serializer):
    vi = serializers.CharField()
    en = serializers.CharField(allow_blank=True)


class PlaceSerializer(RoundUnitSchema):  # a unit's code and name, as the rounds list it
    pass


class RoundNameSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = TextsSerializer()


class PublishedRunSerializer(PublishedRunSchema):
    min_n = serializers.IntegerField(help_text=_("Respondents below which a value is withheld."))


class IndicatorNodeSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = TextsSerializer()
    kind = serializers.CharField(help_text=_("index, field, element or item."))
    parent = serializers.CharField(allow_null=True, help_text=_("Code of the parent node."))


class SuppressingSerializer(serializers.Serializer):
    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if data.get("suppressed"):
            for field in HIDDEN_WHEN_SUPPRESSED:
                if field in data:
                    data[field] = None
        return data


# (Comments, not docstrings: a serializer's docstring would describe it, untranslated, in the
# schema.)
class ValueSerializer(SuppressingSerializer):  # a published value, its interval, respondents
    value = serializers.FloatField(
        allow_null=True, help_text=_("Percentage 0–100; null when suppressed.")
    )
    n = serializers.IntegerField(help_text=_("Respondents."))
    se = serializers.FloatField(allow_null=True, help_text=_("Standard error."))
    # xgettext:no-python-format
    ci_low = serializers.FloatField(allow_null=True, help_text=_("95% interval, low end."))
    # xgettext:no-python-format
    ci_high = serializers.FloatField(allow_null=True, help_text=_("95% interval, high end."))
    suppressed = serializers.BooleanField(
        help_text=_(
            "The value is not published: too few respondents, or withheld so that no such "
            "value can be computed back from the published ones."
        )
    )
    children_suppressed = serializers.BooleanField(
        help_text=_(
            "Published over at least one suppressed child: some of the parts it is made "
            "of are withheld (too few respondents, or so that they cannot be computed back)."
        )
    )


class PublishedValueSerializer(ValueSerializer):  # with its rank, and issue 13's figures
    valid = serializers.IntegerField(help_text=_("Valid answers."))
    rank = serializers.IntegerField(
        allow_null=True, help_text=_("Rank among units, 1 = highest; null when not ranked.")
    )
    rank_of = serializers.IntegerField(allow_null=True, help_text=_("Number of ranked units."))
    deff = serializers.FloatField(
        allow_null=True,
        help_text=_(
            "Design effect: the design-based variance over the variance of a simple random "
            "sample of the same size (1 = as precise as a simple sample; above 1, villages "
            "and weights cost precision). Null when it cannot be computed or when suppressed."
        ),
    )
    n_eff = serializers.FloatField(
        allow_null=True,
        help_text=_(
            "Effective sample size, respondents divided by the design effect: the size of "
            "a simple random sample as precise as this value. Null when suppressed."
        ),
    )
    rank_low = serializers.IntegerField(
        allow_null=True,
        help_text=_(
            "Best rank of the 95% interval of the rank (from seeded draws of every unit's "
            "value on the logit scale; the same run always gives the same interval). "
            "Units whose rank intervals overlap cannot be told apart. Null when not ranked."
        ),
    )
    rank_high = serializers.IntegerField(
        allow_null=True,
        help_text=_("Worst rank of the 95% interval of the rank. Null when not ranked."),
    )
    change = serializers.FloatField(
        allow_null=True,
        help_text=_(
            "Change since the previous round, in points (the previous round recomputed over "
            "this round's units). Null in a first round or when suppressed."
        ),
    )
    change_p = serializers.FloatField(
        allow_null=True,
        help_text=_(
            "Two-sided p-value of the change: normal test of the change over "
            "√(SE² + SE_previous²), the design-based SEs of both rounds. Null when suppressed."
        ),
    )
    change_significant = serializers.BooleanField(
        allow_null=True,
        help_text=_(
            "Whether the change is significant after Benjamini–Hochberg control of the false "
            "discovery rate at 5% across the units of the indicator in this round (national "
            "values: across all indicators of the round). Null when not tested or suppressed."
        ),
    )


SCORE_EXAMPLE = {
    "unit": "19",
    "indicator": "SIPAS",
    "value": 86.21,
    "n": 412,
    "valid": 398,
    "se": 1.12,
    "ci_low": 84.02,
    "ci_high": 88.4,
    "rank": 2,
    "rank_of": 63,
    "suppressed": False,
    "run": 17,
    "deff": 1.8,
    "n_eff": 228.9,
    "rank_low": 1,
    "rank_high": 5,
    "change": 3.6,
    "change_p": 0.0164,
    "change_significant": True,
    "children_suppressed": False,
}


class ScorePlaceSerializer(serializers.Serializer):
    unit = serializers.CharField(
        source="unit__code",
        allow_null=True,
        help_text=_(
            "Unit code; null for the national value (its method: the run's settings, "
            "national_value)."
        ),
    )
    indicator = serializers.CharField(source="indicator__code", help_text=_("Indicator code."))
    run = serializers.IntegerField(source="run_id", help_text=_("The published run."))


@extend_schema_serializer(
    examples=[
        OpenApiExample("A province", value=SCORE_EXAMPLE, response_only=True),
        OpenApiExample(
            "A suppressed value (too few respondents)",
            value=SCORE_EXAMPLE
            | dict.fromkeys(HIDDEN_WHEN_SUPPRESSED)
            | {
                "unit": "06",
                "n": 12,
                "valid": 11,
                "rank": None,
                "rank_of": None,
                "suppressed": True,
            },
            response_only=True,
        ),
    ]
)
class ScoreSerializer(ScorePlaceSerializer, PublishedValueSerializer):
    pass


class RankedScoreSerializer(ScoreSerializer):
    name = serializers.CharField(source="unit__name", help_text=_("Unit name."))


class NationalSerializer(PublishedValueSerializer):
    rank = rank_of = rank_low = rank_high = None  # the nation is not ranked
    method = serializers.ChoiceField(
        choices=["pooled", "population"],
        help_text=_(
            "pooled: over all respondents with their weights; population: the unit values "
            "weighted by the units' populations (the round's setting)."
        ),
    )


class RankingSerializer(serializers.Serializer):
    round = serializers.CharField()
    indicator = serializers.CharField()
    run = serializers.IntegerField(allow_null=True)
    published_at = serializers.DateTimeField(allow_null=True)
    national = NationalSerializer(
        allow_null=True, help_text=_("The national value; its method says how it is computed.")
    )
    national_mean = serializers.FloatField(
        allow_null=True, help_text=_("The mean of the published unit values.")
    )
    results = RankedScoreSerializer(many=True)


class TrendRoundSerializer(serializers.Serializer):
    round = serializers.CharField(source="run__round__code")
    indicator = serializers.CharField(
        source="indicator__code",
        help_text=_(
            "The indicator's code in this round's questionnaire version (another code when a "
            "version mapping links a reworded indicator)."
        ),
    )
    series_break = serializers.BooleanField(
        help_text=_(
            "True when this point cannot be compared with the one before: the two rounds use "
            "questionnaire versions that no mapping links for this indicator. Its change is "
            "then empty."
        )
    )
    period_start = serializers.DateField(source="run__round__period_start")
    period_end = serializers.DateField(source="run__round__period_end")
    run = serializers.IntegerField(source="run_id")
    published_at = serializers.DateTimeField(source="run__published_at")


class TrendPointSerializer(TrendRoundSerializer, PublishedValueSerializer):
    pass


class TrendSerializer(serializers.Serializer):
    unit = serializers.CharField()
    indicator = serializers.CharField()
    predecessors = code_list(_("Codes of the units this one was made from (2025 merger)."))
    successors = code_list(_("Codes of the units this one became part of."))
    points = TrendPointSerializer(many=True)


class LineageSerializer(serializers.Serializer):
    code = serializers.CharField()
    effective_on = serializers.DateField()


class UnitSerializer(PlaceSerializer):
    kind = serializers.CharField()
    region = serializers.CharField(allow_blank=True)
    valid_from = serializers.DateField(allow_null=True)
    valid_to = serializers.DateField(allow_null=True)
    predecessors = LineageSerializer(many=True)
    successors = LineageSerializer(many=True)


class IndicatorSerializer(IndicatorNodeSerializer):
    aggregation = serializers.CharField(
        help_text=_("mean, weighted_mean, pooled (aggregates) or share (items).")
    )
    weight = serializers.FloatField(help_text=_("Weight in a parent's weighted mean."))
    policy_group = serializers.CharField(allow_null=True)
    satisfied_values = serializers.ListField(
        child=serializers.JSONField(),
        help_text=_("Answer values counted as satisfied by the questions under the node."),
    )
    questions = code_list(_("Codes of every question under the node: what its value is made of."))


class VersionSerializer(serializers.Serializer):
    questionnaire = serializers.CharField()
    number = serializers.IntegerField()
    label = serializers.CharField(allow_blank=True)


class IndicatorTreeSerializer(serializers.Serializer):
    round = serializers.CharField()
    version = VersionSerializer()
    results = IndicatorSerializer(many=True)
