"""API basics: the /api/v1/ index and who the caller is."""

from django.urls import reverse
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


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
            }
        )


class MeView(APIView):
    """The authenticated caller (token or session): lets a client check its token."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"username": user.get_username(), "is_staff": user.is_staff})
