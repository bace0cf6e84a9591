"""Survey frame API: the index, the caller, rounds and their questionnaires."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import error_responses
from surveys import selectors
from surveys.api.serializers import (
    QuestionnaireSchema,
    questionnaire_document,
)
from surveys.models import Round


class ApiRootView(APIView):
    """Index of the API: its version and where to find things."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary=_("Index of the API"),
        responses=inline_serializer(
            "ApiRoot",
            {
                "name": serializers.CharField(),
                "version": serializers.CharField(),
                "health": serializers.URLField(),
                "me": serializers.URLField(),
                "rounds": serializers.URLField(),
                "responses": serializers.URLField(),
                "schema": serializers.URLField(),
                "docs": serializers.URLField(),
                "units": serializers.URLField(),
                "indicators": serializers.URLField(),
                "scores": serializers.URLField(),
                "rankings": serializers.URLField(),
                "runs": serializers.URLField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "SIPAS citizen feedback and survey service",
                "version": "v1",
                "health": request.build_absolute_uri(reverse("health")),
                "me": request.build_absolute_uri(reverse("v1:me")),
                "rounds": request.build_absolute_uri(reverse("v1:rounds")),
                "responses": request.build_absolute_uri(reverse("v1:responses")),
                "schema": request.build_absolute_uri(reverse("schema")),
                "docs": request.build_absolute_uri(reverse("swagger-ui")),
                **{
                    name: request.build_absolute_uri(reverse(f"v1:{name}"))
                    for name in ("units", "indicators", "scores", "rankings", "runs")
                },
            }
        )


class MeView(APIView):
    """The authenticated caller (token or session): lets a client check its token."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary=_("The authenticated caller"),
        responses={
            200: inline_serializer(
                "Me", {"username": serializers.CharField(), "is_staff": serializers.BooleanField()}
            ),
            **error_responses(401),
        },
        examples=[
            OpenApiExample(
                "A token", value={"username": "press-office", "is_staff": False}, response_only=True
            )
        ],
    )
    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"username": user.get_username(), "is_staff": user.is_staff})


class RoundQuestionnaireView(APIView):
    """The published questionnaire version a round uses, as JSON to render a form."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary=_("The questionnaire of a round"),
        responses={200: QuestionnaireSchema, **error_responses(404)},
    )
    def get(self, request: Request, code: str) -> Response:
        survey_round = get_object_or_404(
            Round.objects.select_related("version__questionnaire"), code=code
        )
        sections = list(selectors.version_sections(version_id=survey_round.version_id))
        return Response(questionnaire_document(survey_round, sections))
