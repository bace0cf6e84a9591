"""Output shapes of the results API (they render the documents and describe the schema).

A suppressed value (too few respondents, or withheld so that such a value cannot be computed
back: ``scoring.suppression``) is published as ``null`` with ``suppressed: true``: ``value``,
``se``, ``ci_low``, ``ci_high`` and ``change`` never carry its number; ``n`` and ``valid``
stay (they are no value and the suppression already assumes them known). A published value
resting on a withheld child says so (``children_suppressed``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

HIDDEN_WHEN_SUPPRESSED = ("value", "se", "ci_low", "ci_high", "change", "change_significant")


class TextsSerializer(serializers.Serializer):
    vi = serializers.CharField()
    en = serializers.CharField(allow_blank=True)


class SuppressingSerializer(serializers.Serializer):
    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if data.get("suppressed"):
            for field in HIDDEN_WHEN_SUPPRESSED:
                if field in data:
                    data[field] = None
        return data


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
    "children_suppressed": False,
}


@extend_schema_serializer(
    examples=[
        OpenApiExample("A province", value=SCORE_EXAMPLE, response_only=True),
        OpenApiExample(
            "A suppressed value (too few respondents)",
            value=SCORE_EXAMPLE
            | {
                "unit": "06",
                "value": None,
                "n": 12,
                "valid": 11,
                "se": None,
                "ci_low": None,
                "ci_high": None,
                "rank": None,
                "rank_of": None,
                "suppressed": True,
            },
            response_only=True,
        ),
    ]
)
class ScoreSerializer(SuppressingSerializer):
    unit = serializers.CharField(
        source="unit__code",
        allow_null=True,
        help_text=_("Unit code; null for the national value (pooled over all respondents)."),
    )
    indicator = serializers.CharField(source="indicator__code", help_text=_("Indicator code."))
    value = serializers.FloatField(
        allow_null=True, help_text=_("Percentage 0–100; null when suppressed.")
    )
    n = serializers.IntegerField(help_text=_("Respondents."))
    valid = serializers.IntegerField(help_text=_("Valid answers."))
    se = serializers.FloatField(allow_null=True, help_text=_("Standard error."))
    # xgettext:no-python-format
    ci_low = serializers.FloatField(allow_null=True, help_text=_("95% interval, low end."))
    # xgettext:no-python-format
    ci_high = serializers.FloatField(allow_null=True, help_text=_("95% interval, high end."))
    rank = serializers.IntegerField(
        allow_null=True, help_text=_("Rank among units, 1 = highest; null when not ranked.")
    )
    rank_of = serializers.IntegerField(allow_null=True, help_text=_("Number of ranked units."))
    suppressed = serializers.BooleanField(
        help_text=_(
            "The value is not published: too few respondents, or withheld so that no such "
            "value can be computed back from the published ones."
        )
    )
    run = serializers.IntegerField(source="run_id", help_text=_("The published run."))
    children_suppressed = serializers.BooleanField(
        help_text=_(
            "Published over at least one suppressed child: some of the parts it is made "
            "of are withheld (too few respondents, or so that they cannot be computed back)."
        )
    )


class RankedScoreSerializer(ScoreSerializer):
    name = serializers.CharField(source="unit__name", help_text=_("Unit name."))
    change = serializers.FloatField(
        allow_null=True, help_text=_("Change since the previous round, in points.")
    )
    change_significant = serializers.BooleanField(
        allow_null=True, help_text=_("Whether the change exceeds its 95% margin.")
    )


class NationalSerializer(SuppressingSerializer):
    value = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()
    valid = serializers.IntegerField()
    se = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    suppressed = serializers.BooleanField()
    change = serializers.FloatField(allow_null=True)
    change_significant = serializers.BooleanField(allow_null=True)
    children_suppressed = serializers.BooleanField(
        help_text=_(
            "Published over at least one suppressed child: some of the parts it is made "
            "of are withheld (too few respondents, or so that they cannot be computed back)."
        )
    )


class RankingSerializer(serializers.Serializer):
    round = serializers.CharField()
    indicator = serializers.CharField()
    run = serializers.IntegerField(allow_null=True)
    published_at = serializers.DateTimeField(allow_null=True)
    national = NationalSerializer(
        allow_null=True, help_text=_("The national value, pooled over all respondents.")
    )
    national_mean = serializers.FloatField(
        allow_null=True, help_text=_("The mean of the published unit values.")
    )
    results = RankedScoreSerializer(many=True)


class TrendPointSerializer(SuppressingSerializer):
    round = serializers.CharField(source="run__round__code")
    period_start = serializers.DateField(source="run__round__period_start")
    period_end = serializers.DateField(source="run__round__period_end")
    run = serializers.IntegerField(source="run_id")
    published_at = serializers.DateTimeField(source="run__published_at")
    value = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()
    valid = serializers.IntegerField()
    se = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    rank = serializers.IntegerField(allow_null=True)
    rank_of = serializers.IntegerField(allow_null=True)
    suppressed = serializers.BooleanField()
    change = serializers.FloatField(allow_null=True)
    change_significant = serializers.BooleanField(allow_null=True)
    children_suppressed = serializers.BooleanField(
        help_text=_(
            "Published over at least one suppressed child: some of the parts it is made "
            "of are withheld (too few respondents, or so that they cannot be computed back)."
        )
    )


class TrendSerializer(serializers.Serializer):
    unit = serializers.CharField()
    indicator = serializers.CharField()
    predecessors = serializers.ListField(
        child=serializers.CharField(),
        help_text=_("Codes of the units this one was made from (2025 merger)."),
    )
    successors = serializers.ListField(
        child=serializers.CharField(), help_text=_("Codes of the units this one became part of.")
    )
    points = TrendPointSerializer(many=True)


class LineageSerializer(serializers.Serializer):
    code = serializers.CharField()
    effective_on = serializers.DateField()


class UnitSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    region = serializers.CharField(allow_blank=True)
    valid_from = serializers.DateField(allow_null=True)
    valid_to = serializers.DateField(allow_null=True)
    predecessors = LineageSerializer(many=True)
    successors = LineageSerializer(many=True)


class IndicatorSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = TextsSerializer()
    kind = serializers.CharField()
    parent = serializers.CharField(allow_null=True, help_text=_("Code of the parent node."))
    aggregation = serializers.CharField(
        help_text=_("mean, weighted_mean, pooled (aggregates) or share (items).")
    )
    weight = serializers.FloatField(help_text=_("Weight in a parent's weighted mean."))
    policy_group = serializers.CharField(allow_null=True)
    satisfied_values = serializers.ListField(
        child=serializers.JSONField(),
        help_text=_("Answer values counted as satisfied by the questions under the node."),
    )
    questions = serializers.ListField(
        child=serializers.CharField(),
        help_text=_("Codes of every question under the node: what its value is made of."),
    )


class VersionSerializer(serializers.Serializer):
    questionnaire = serializers.CharField()
    number = serializers.IntegerField()
    label = serializers.CharField(allow_blank=True)


class IndicatorTreeSerializer(serializers.Serializer):
    round = serializers.CharField()
    version = VersionSerializer()
    results = IndicatorSerializer(many=True)
