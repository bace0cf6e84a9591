"""Read API of published results: units, indicators, scores, rankings, trends, runs.

Views parse parameters, call ``results.selectors`` and render; documents that come from
published runs are answered through ``results.api.caching`` (ETag, Last-Modified, 304, and
a cache keyed on the run), the others get an ETag from their content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.http import Http404, QueryDict
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from config.conditional import ConditionalMixin
from config.params import validated
from config.schema import error_responses
from results import publications as current
from results import selectors
from results.api import filters
from results.api.caching import PublishedDocumentView
from results.api.serializers import (
    IndicatorTreeSerializer,
    RankingSerializer,
    ScoreSerializer,
    TrendSerializer,
    UnitSerializer,
)
from results.api.throttling import ResultsReadThrottle
from results.selectors import Publication
from scoring.api.serializers import RunSerializer
from scoring.api.views import run_document
from scoring.models import Run, Score
from surveys.mapping import series_links
from surveys.models import Unit, code_validator

CODE_PATTERN = code_validator.regex.pattern
CODE = re.compile(CODE_PATTERN)


def code_in(params: QueryDict, name: str) -> str | None:
    """The parameter when it is one well-formed code (a cheap look; ``parse`` validates)."""
    value = params.get(name, "")
    return value if len(value) <= 32 and CODE.match(value) else None


def code_field(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(CODE_PATTERN, max_length=32, **kwargs)


def parse(params: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Validated query parameters; a bad one is a 400 naming it."""
    return validated(params, request.query_params)


class RoundParams(serializers.Serializer):
    round = code_field(help_text=_("Round code, e.g. sipas-2022."))


class RankingParams(RoundParams):
    indicator = code_field(help_text=_("Indicator code, e.g. SIPAS."))


class IndicatorParams(serializers.Serializer):
    indicator = code_field(help_text=_("Indicator code, e.g. SIPAS."))


def unknown_round(code: str) -> ValidationError:
    return ValidationError({"round": [_("There is no survey round %(code)s.") % {"code": code}]})


CODE_SCHEMA = {"type": "string", "pattern": CODE_PATTERN, "maxLength": 32}
ROUND_PARAMETER = OpenApiParameter(
    "round", CODE_SCHEMA, required=True, description=_("Round code, e.g. sipas-2022.")
)
INDICATOR_PARAMETER = OpenApiParameter(
    "indicator", CODE_SCHEMA, required=True, description=_("Indicator code, e.g. SIPAS.")
)
READ_ERRORS = error_responses(400, 429)


class ReadView(GenericAPIView):
    permission_classes = [AllowAny]
    throttle_classes = [ResultsReadThrottle]


# --- Scores -----------------------------------------------------------------------------------


class ScoreListView(PublishedDocumentView, ReadView):
    """Published values of a round: one row per indicator and unit, plus the national value."""

    serializer_class = ScoreSerializer
    filterset_class = filters.ScoreFilter
    filter_backends = [DjangoFilterBackend]
    queryset = Score.objects.none()  # for the schema; rows come from the selector

    def publications(self, params: QueryDict, **kwargs: Any) -> Sequence[Publication] | None:
        code = code_in(params, "round")
        found = current.publication(round_code=code) if code else None
        return [found] if found else None

    def document(self, request: Request, publications: Sequence[Publication], **kwargs: Any) -> Any:
        code = parse(RoundParams, request)["round"]
        if not publications:
            if selectors.round_by_code(code) is None:
                raise unknown_round(code)
            rows = Score.objects.none()
            version_id = None
        else:
            rows = selectors.public_scores(run_id=publications[0].run_id)
            version_id = publications[0].version_id
        filterset = self.filterset_class(
            data=request.query_params, queryset=rows, request=request, version_id=version_id
        )
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(ScoreSerializer(page, many=True).data).data

    @extend_schema(
        summary=_("Published scores of a round"),
        parameters=[ROUND_PARAMETER],
        responses={200: ScoreSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, **kwargs: Any) -> Any:
        return super().get(request, **kwargs)


class RankingView(PublishedDocumentView, ReadView):
    """Units ranked on one indicator, best first, with the national value beside them."""

    def publications(self, params: QueryDict, **kwargs: Any) -> Sequence[Publication] | None:
        code = code_in(params, "round")
        if code is None or code_in(params, "indicator") is None:
            return None
        found = current.publication(round_code=code)
        return [found] if found else None

    def document(self, request: Request, publications: Sequence[Publication], **kwargs: Any) -> Any:
        params = parse(RankingParams, request)
        code, indicator = params["round"], params["indicator"]
        if not publications:
            survey_round = selectors.round_by_code(code)
            if survey_round is None:
                raise unknown_round(code)
            version_id, run_id, published_at = survey_round.version_id, None, None
        else:
            found = publications[0]
            version_id, run_id, published_at = found.version_id, found.run_id, found.published_at
        if not selectors.indicator_code_exists(indicator, version_id=version_id):
            raise ValidationError(
                {"indicator": [_("Unknown indicator in this round: %s") % indicator]}
            )
        found: dict[str, Any] = {"units": [], "national": None, "national_mean": None}
        if run_id is not None:
            found = selectors.ranking(run_id=run_id, indicator_code=indicator)
        mean = found["national_mean"]
        return RankingSerializer(
            {
                "round": code,
                "indicator": indicator,
                "run": run_id,
                "published_at": published_at,
                "national": found["national"],
                "national_mean": mean["value"] if mean else None,
                "results": found["units"],
            }
        ).data

    @extend_schema(
        summary=_("Units ranked on one indicator, with the national value"),
        parameters=[ROUND_PARAMETER, INDICATOR_PARAMETER],
        responses={200: RankingSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, **kwargs: Any) -> Any:
        return super().get(request, **kwargs)


class UnitTrendView(PublishedDocumentView, ReadView):
    """One unit's value of one indicator in every round with published results."""

    def publications(self, params: QueryDict, **kwargs: Any) -> Sequence[Publication] | None:
        return current.publications() if code_in(params, "indicator") else None

    def document_name(self) -> str:
        # The series follows the version mappings, which change without a publication.
        return f"{type(self).__name__}:{series_links().stamp}"

    def document(self, request: Request, publications: Sequence[Publication], **kwargs: Any) -> Any:
        indicator = parse(IndicatorParams, request)["indicator"]
        unit = Unit.objects.filter(code=kwargs["code"]).first()
        if unit is None:
            raise Http404
        if not selectors.indicator_code_exists(indicator):
            raise ValidationError({"indicator": [_("Unknown indicator: %s") % indicator]})
        lineage = selectors.unit_lineage(unit_id=unit.pk)
        return TrendSerializer(
            {
                "unit": unit.code,
                "indicator": indicator,
                "predecessors": [edge["code"] for edge in lineage["predecessors"]],
                "successors": [edge["code"] for edge in lineage["successors"]],
                "points": selectors.unit_trend(unit_id=unit.pk, indicator_code=indicator),
            }
        ).data

    @extend_schema(
        summary=_("A unit's value across rounds"),
        parameters=[INDICATOR_PARAMETER],
        responses={200: TrendSerializer, **error_responses(400, 404, 429)},
    )
    def get(self, request: Request, **kwargs: Any) -> Any:
        return super().get(request, **kwargs)


# --- The frame --------------------------------------------------------------------------------


class UnitListView(ConditionalMixin, ReadView):
    """Units (provinces) with their lineage across the 2025 merger."""

    serializer_class = UnitSerializer
    filterset_class = filters.UnitFilter
    filter_backends = [DjangoFilterBackend]
    queryset = Unit.objects.order_by("code")

    @extend_schema(
        summary=_("Units and their lineage"),
        responses={200: UnitSerializer(many=True), **READ_ERRORS},
        examples=[
            OpenApiExample(
                "A province created by the 2025 merger",
                value={
                    "code": "19-2025",
                    "name": "Thái Nguyên",
                    "kind": "province",
                    "region": "Trung du và miền núi phía Bắc",
                    "valid_from": "2025-07-01",
                    "valid_to": None,
                    "predecessors": [
                        {"code": "06", "effective_on": "2025-07-01"},
                        {"code": "19", "effective_on": "2025-07-01"},
                    ],
                    "successors": [],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        units = self.paginate_queryset(self.filter_queryset(self.get_queryset()).distinct())
        lineage = selectors.lineage_of(unit_ids=[u.pk for u in units])
        documents = [
            {
                "code": u.code,
                "name": u.name,
                "kind": u.kind,
                "region": u.region,
                "valid_from": u.valid_from,
                "valid_to": u.valid_to,
                **lineage[u.pk],
            }
            for u in units
        ]
        return self.get_paginated_response(UnitSerializer(documents, many=True).data)


class IndicatorTreeView(ConditionalMixin, ReadView):
    """The indicator tree of a round's questionnaire version, with what each node is made of."""

    @extend_schema(
        summary=_("The indicator tree of a round"),
        parameters=[ROUND_PARAMETER],
        responses={200: IndicatorTreeSerializer, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        code = parse(RoundParams, request)["round"]
        survey_round = selectors.round_by_code(code)
        if survey_round is None:
            raise unknown_round(code)
        version = survey_round.version
        return Response(
            IndicatorTreeSerializer(
                {
                    "round": survey_round.code,
                    "version": {
                        "questionnaire": version.questionnaire.code,
                        "number": version.number,
                        "label": version.label,
                    },
                    "results": selectors.indicator_tree(version_id=version.pk),
                }
            ).data
        )


class RunListView(ConditionalMixin, ReadView):
    """Scoring runs of every round (history and status), newest first."""

    serializer_class = RunSerializer
    filterset_class = filters.RunFilter
    filter_backends = [DjangoFilterBackend]
    queryset = Run.objects.none()

    def get_queryset(self) -> Any:
        return selectors.runs()

    @extend_schema(
        summary=_("Scoring runs: history and status"),
        responses={200: RunSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        runs = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        staff = request.user.has_perm("scoring.view_run")
        return self.get_paginated_response([run_document(run, show_error=staff) for run in runs])
