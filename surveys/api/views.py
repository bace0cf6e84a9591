"""Survey frame API: the index, the caller, open rounds and their questionnaires."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from surveys import selectors
from surveys.api.serializers import questionnaire_document, round_document
from surveys.models import Round


class ApiRootView(APIView):
    """Index of the API: its version and where to find things."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "SIPAS citizen feedback and survey service",
                "version": "v1",
                "health": request.build_absolute_uri(reverse("health")),
                "me": request.build_absolute_uri(reverse("v1:me")),
                "rounds": request.build_absolute_uri(reverse("v1:rounds")),
                "responses": request.build_absolute_uri(reverse("v1:responses")),
            }
        )


class MeView(APIView):
    """The authenticated caller (token or session): lets a client check its token."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"username": user.get_username(), "is_staff": user.is_staff})


class RoundListView(APIView):
    """Rounds open now, each with the units it covers."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        rounds = selectors.open_rounds().prefetch_related("units")
        return Response({"results": [round_document(r) for r in rounds]})


class RoundQuestionnaireView(APIView):
    """The published questionnaire version a round uses, as JSON to render a form."""

    permission_classes = [AllowAny]

    def get(self, request: Request, code: str) -> Response:
        survey_round = get_object_or_404(
            Round.objects.select_related("version__questionnaire"), code=code
        )
        sections = list(selectors.version_sections(version_id=survey_round.version_id))
        return Response(questionnaire_document(survey_round, sections))
