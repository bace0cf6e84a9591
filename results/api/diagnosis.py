"""The diagnosis of a unit in a published round: JSON (``diagnosis/``) and PDF (``diagnosis.pdf``).

Both are functions of the round's published run, cached and validated like every result
document (``results.api.caching``): a new publication changes the ETag and the cache key.
A round without published results, an unknown round or unit, and a unit the round did not
cover are 404, as on the dashboard. The document comes from ``results.diagnosis``; its
shape and formulas are in docs/diagnosis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import Http404, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from config.conditional import not_modified, set_validators
from config.schema import error_responses
from results import diagnosis as diagnoses
from results import publications as current
from results import selectors
from results.api.caching import PublishedDocumentView
from results.api.exports import export_language
from results.api.serializers import (
    IndicatorNodeSerializer,
    PlaceSerializer,
    PublishedRunSerializer,
    PublishedValueSerializer,
    RoundNameSerializer,
    TextsSerializer,
    code_list,
)
from results.api.throttling import ResultsReadThrottle
from results.cache import cached_document, run_key, store_document
from results.selectors import Publication


def _float(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class DiagnosisValueSerializer(PublishedValueSerializer):
    valid = None  # not part of a diagnosis


class DifferenceSerializer(serializers.Serializer):
    difference = _float(_("Unit value minus national value, in points."))
    se = _float(
        _(
            "Standard error of the difference: √(SE_unit²·(1 − 2·share) + SE_national²), "
            "the unit being part of the nation."
        )
    )
    low = _float(_("Low end of the 95% interval of the difference."))
    high = _float(_("High end of the 95% interval of the difference."))
    p = _float(_("Two-sided p-value of the difference (normal test)."))


class DiagnosisIndicatorSerializer(IndicatorNodeSerializer):
    root = serializers.CharField(help_text=_("The index this indicator belongs to."))
    unit = DiagnosisValueSerializer(allow_null=True)
    national = DiagnosisValueSerializer(allow_null=True)
    difference = DifferenceSerializer()
    significant = serializers.BooleanField(
        allow_null=True,
        help_text=_(
            "Whether the difference from the nation is significant after Benjamini–Hochberg "
            "at 5% over the unit's indicators; null when not tested."
        ),
    )
    direction = serializers.ChoiceField(
        choices=["above", "below"], allow_null=True, help_text=_("Side of a significant gap.")
    )


class PriorityItemSerializer(IndicatorNodeSerializer):
    kind = None  # items only
    satisfaction = _float(_("The unit's value on the item."))
    national = _float(_("The national value on the item."))
    importance = _float(
        _(
            "Key-driver importance: weighted Pearson correlation, across the unit's "
            "respondents, of the item with their satisfaction on the other items."
        )
    )
    respondents = serializers.IntegerField(help_text=_("Respondents the importance rests on."))
    quadrant = serializers.ChoiceField(choices=list(diagnoses.QUADRANTS), allow_null=True)


class PrioritySerializer(serializers.Serializer):
    satisfaction_cut = _float(_("Median satisfaction of the items placed."))
    importance_cut = _float(_("Median importance of the items placed."))
    items = PriorityItemSerializer(many=True)


class RegionUnitSerializer(PlaceSerializer, DiagnosisValueSerializer):
    this = serializers.BooleanField(help_text=_("The unit diagnosed."))


class RegionSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    indicator = serializers.CharField(allow_null=True)
    units = RegionUnitSerializer(many=True)


class PreviousSerializer(serializers.Serializer):
    round = serializers.CharField()
    name = TextsSerializer()
    units = PlaceSerializer(many=True, help_text=_("Units of the previous round compared."))


class DiagnosisUnitSerializer(PlaceSerializer):
    region = serializers.CharField(allow_blank=True)


class DiagnosisRunSerializer(PublishedRunSerializer):
    responses = serializers.IntegerField()
    national_value = serializers.CharField()


class DiagnosisSerializer(serializers.Serializer):
    round = RoundNameSerializer()
    unit = DiagnosisUnitSerializer()
    run = DiagnosisRunSerializer()
    main_indicator = serializers.CharField(allow_null=True)
    headline = DiagnosisIndicatorSerializer(allow_null=True)
    previous = PreviousSerializer(allow_null=True)
    indicators = DiagnosisIndicatorSerializer(many=True)
    strengths = code_list(_("Indicators significantly above the nation, largest gap first."))
    weaknesses = code_list(_("Indicators significantly below the nation, largest gap first."))
    expectations = code_list(_("The citizens' expectation items."))
    priority = PrioritySerializer()
    region = RegionSerializer()


UNIT_PARAMETER = OpenApiParameter(
    "unit", str, OpenApiParameter.PATH, description=_("Unit code, e.g. 19.")
)
ROUND_PATH_PARAMETER = OpenApiParameter(
    "code", str, OpenApiParameter.PATH, description=_("Round code, e.g. sipas-2022.")
)


def unit_document_schema(summary: str, description: str, serializer: type) -> Any:
    """``extend_schema`` of a JSON document of a unit in a round (404: no such round or unit,
    or nothing to show)."""
    return extend_schema(
        summary=summary,
        description=description,
        parameters=[ROUND_PATH_PARAMETER, UNIT_PARAMETER],
        responses={200: serializer, **error_responses(404, 429)},
    )


def pdf_key(publication: Publication, round_code: str, unit_code: str, lang: str) -> str:
    """What the PDF depends on: the published run, the round, the unit and the language."""
    return run_key("DiagnosisPdf", [publication], round_code, unit_code, lang)


def published_unit(round_code: str, unit_code: str) -> tuple[Any, Any]:
    """The round's published run and the unit it covers, or 404."""
    run = selectors.published_run(round_code, national=False)
    if run is None:
        raise Http404(_("This round has no published results."))
    unit = selectors.unit_in_round(run, unit_code)
    if unit is None:
        raise Http404(_("The round did not cover this unit."))
    return run, unit


class DiagnosisView(PublishedDocumentView, APIView):
    """The diagnosis of a unit in a round with published results."""

    permission_classes = [AllowAny]
    throttle_classes = [ResultsReadThrottle]

    def publications(self, params: QueryDict, **kwargs: Any) -> Sequence[Publication] | None:
        found = current.publication(round_code=kwargs["code"])
        return [found] if found else None

    def document(self, request: Request, publications: Sequence[Publication], **kwargs: Any) -> Any:
        if not publications:
            raise Http404
        run, unit = published_unit(kwargs["code"], kwargs["unit"])
        return DiagnosisSerializer(diagnoses.cached_diagnosis(run, unit)).data

    @unit_document_schema(
        _("Diagnosis of a unit in a round"),
        _(
            "Every indicator of the unit against the national value, with the difference, "
            "its 95% interval and significance; rank and rank interval; change since the "
            "previous round; strengths and weaknesses; the priority matrix of the items "
            "(satisfaction against key-driver importance); the other units of its region. "
            "Aggregates only. Method: docs/diagnosis.md."
        ),
        DiagnosisSerializer,
    )
    def get(self, request: Request, **kwargs: Any) -> Any:
        return super().get(request, **kwargs)


class DiagnosisPdfView(APIView):
    """The diagnosis as a printable PDF report, in Vietnamese or English (``?lang=``)."""

    permission_classes = [AllowAny]
    throttle_classes = [ResultsReadThrottle]

    @extend_schema(
        summary=_("Diagnosis of a unit in a round as a PDF report"),
        parameters=[
            ROUND_PATH_PARAMETER,
            UNIT_PARAMETER,
            OpenApiParameter(
                "lang",
                str,
                enum=["vi", "en"],
                description=_("Language of the report (default: the request's)."),
            ),
        ],
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description=_("The PDF report.")
            ),
            **error_responses(400, 404, 429),
        },
    )
    def get(self, request: Request, code: str, unit: str) -> HttpResponseBase:
        from results.dashboard.diagnosis import diagnosis_pdf

        lang = export_language(request)
        publication = current.publication(round_code=code)
        if publication is None:
            raise Http404(_("This round has no published results."))
        run, found = published_unit(code, unit)
        headers = HttpResponse()
        # Keyed on the language alone, not the query string: other parameters would each
        # make a new PDF to render.
        key = pdf_key(publication, code, found.code, lang)
        set_validators(headers, f'"{key}"', publication.published_at)
        if answer := not_modified(request, headers):
            return answer
        content = cached_document(key)
        if content is None:
            with translation.override(lang):
                content = diagnosis_pdf(run, found)
            store_document(key, content)
        response = HttpResponse(content, content_type="application/pdf")
        response.headers["Content-Disposition"] = (
            f'inline; filename="{code}-{found.code}-diagnosis-{lang}.pdf"'
        )
        for header in ("ETag", "Last-Modified", "Cache-Control"):
            response.headers[header] = headers.headers[header]
        return response
