"""Agency results of a unit in a round: ``GET /api/v1/rounds/<code>/units/<unit>/agencies/``.

Who may read them is ``results.agencies.may_see`` (national staff, the unit's province
staff, the public only for a national round whose ``publish_agency_results`` is on); every
other request, like an unknown round or unit, is 404. The answer is not kept in the results
cache (``results.api.caching``), so a staff-only document can never be served to anyone
else; a staff-only answer is ``Cache-Control: private, no-store``.
"""

from __future__ import annotations

from django.http import Http404
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from results import agencies
from results.api.diagnosis import unit_document_schema
from results.api.serializers import (
    IndicatorNodeSerializer,
    PlaceSerializer,
    PublishedRunSerializer,
    RoundNameSerializer,
    TextsSerializer,
    ValueSerializer,
)
from results.api.throttling import ResultsReadThrottle


class AgencyOnIndicatorSerializer(PlaceSerializer):
    name = TextsSerializer()
    value = ValueSerializer(
        allow_null=True, help_text=_("The agency's value; null when it has no score.")
    )


class AgencyIndicatorSerializer(IndicatorNodeSerializer):
    unit = ValueSerializer(allow_null=True, help_text=_("The unit's own value."))
    agencies = AgencyOnIndicatorSerializer(many=True)


class AgencySerializer(PlaceSerializer):
    name = TextsSerializer()
    kind = serializers.CharField()


class AgencyRoundSerializer(RoundNameSerializer):
    local = serializers.BooleanField(help_text=_("A province's local round (never public)."))
    public = serializers.BooleanField(help_text=_("Whether these agency results are public."))


class AgencyResultsSerializer(serializers.Serializer):
    round = AgencyRoundSerializer()
    unit = PlaceSerializer()
    run = PublishedRunSerializer()
    headline = serializers.CharField(allow_null=True, help_text=_("The main index's code."))
    agencies = AgencySerializer(many=True)
    indicators = AgencyIndicatorSerializer(many=True)


class AgencyResultsView(APIView):
    """The values per agency of a unit in a round's published run."""

    permission_classes = [AllowAny]  # results.agencies.may_see decides, as 404
    throttle_classes = [ResultsReadThrottle]

    @unit_document_schema(
        _("Results per agency of a unit in a round"),
        # xgettext:no-python-format
        _(
            "Every indicator of the round's published run for each agency of the unit named "
            "by the responses, with its 95% interval and respondents, and the unit's own "
            "value beside; a suppressed value is withheld (null value and interval). Seen by "
            "national staff and the staff of the unit's province (local rounds included); by "
            "the public only for a national round whose setting “agency results public” is "
            "on. Anyone else gets 404, as for an unknown round. Staff-only answers are sent "
            "with Cache-Control: private, no-store."
        ),
        AgencyResultsSerializer,
    )
    def get(self, request: Request, code: str, unit: str) -> Response:
        found = agencies.viewable(request.user, code, unit)
        if found is None:
            raise Http404(_("There are no agency results to show here."))
        run, found_unit = found
        doc = agencies.agency_results(run, found_unit)
        response = Response(AgencyResultsSerializer(doc).data)
        if request.user.is_authenticated or not doc["round"]["public"]:
            patch_cache_control(response, private=True, no_store=True)
        else:
            patch_cache_control(response, public=True, no_cache=True)
        patch_vary_headers(response, ("Cookie", "Authorization"))
        return response
