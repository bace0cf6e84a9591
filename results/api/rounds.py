"""The list of survey rounds with their published runs (``GET /api/v1/rounds/``).

It belongs to results, not to the survey frame: which run of a round is published is
scoring's output, and an app never reads from one downstream of it.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.conditional import ConditionalMixin
from config.params import QueryChoiceField, validated
from config.schema import error_responses
from results import selectors as results_selectors
from surveys.api.serializers import RoundListSchema, round_document


class RoundListView(ConditionalMixin, APIView):
    """Survey rounds, each with the units it covers and its published scoring run.

    ``state``: ``open`` (default: rounds accepting responses now), ``published`` (rounds
    with published results) or ``all``.
    """

    permission_classes = [AllowAny]

    class Params(serializers.Serializer):
        state = QueryChoiceField(choices=["open", "published", "all"], default="open")

    @extend_schema(
        summary=_("Survey rounds"),
        parameters=[
            OpenApiParameter(
                "state",
                OpenApiTypes.STR,
                enum=["open", "published", "all"],
                description=_(
                    "open (default): accepting responses now; published: with results; all."
                ),
            )
        ],
        responses={200: RoundListSchema, **error_responses(400)},
    )
    def get(self, request: Request) -> Response:
        state = validated(self.Params, request.query_params)["state"]
        rounds = results_selectors.rounds(state=state)
        return Response({"results": [round_document(r) for r in rounds]})
