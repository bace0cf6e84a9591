"""Start a recompute of a round and follow its run."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.queueing import unavailable_response
from config.schema import error_responses
from scoring import services
from scoring.api.serializers import RunSerializer
from scoring.models import Run
from surveys import scoping


class CanStartRuns(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm("scoring.add_run"))


def run_document(run: Run, *, show_error: bool) -> dict[str, Any]:
    """A run as the API shows it; why it failed in full only to staff who may see runs.

    An error is an exception's message, which may name tables or values: others are told
    only that the computation failed.
    """
    error = run.error if show_error or not run.error else _("The computation failed.")
    return {
        "id": run.pk,
        "round": run.round.code,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "published_at": run.published_at.isoformat() if run.published_at else None,
        "responses": run.response_count,
        "excluded": run.settings_used.get("excluded") or {"responses": 0, "units": {}},
        "answers": run.answer_count,
        "versions": run.versions,
        "settings": run.settings_used,
        "code_version": run.code_version,
        "progress": run.progress,
        "error": error,
    }


class RecomputeView(APIView):
    """``POST /api/v1/rounds/<code>/recompute/``: 202 with the run (a running one is reused)."""

    permission_classes = [CanStartRuns]

    @extend_schema(
        summary=_("Recompute a round's scores"),
        request=None,
        responses={
            202: RunSerializer,
            **error_responses(400, 401, 403, 404),
            **unavailable_response(),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        # Province staff recompute their own local rounds only; others' are unknown to them.
        if not scoping.rounds_for(request.user).filter(code=code).exists():
            raise NotFound({"round": [_("There is no survey round %(code)s.") % {"code": code}]})
        run, _created = services.request_recompute(round_code=code)
        return Response(run_document(run, show_error=True), status=status.HTTP_202_ACCEPTED)


class RunDetailView(APIView):
    """``GET /api/v1/runs/<id>/``: status, times, counts and settings of a run."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary=_("One scoring run"), responses={200: RunSerializer, **error_responses(404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        run = get_object_or_404(Run.objects.select_related("round"), pk=pk)
        staff = request.user.has_perm("scoring.view_run")
        # A local round's runs are its province's and national staff's business only.
        if run.round.is_local and not (
            staff and scoping.rounds_for(request.user).filter(pk=run.round_id).exists()
        ):
            raise NotFound
        return Response(run_document(run, show_error=staff))
