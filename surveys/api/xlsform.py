"""XLSForm in and out: ``/api/v1/questionnaires/<code>/versions/<number>/xlsform.xlsx``
(a version as an XLSForm: public once published, drafts for staff who may view versions)
and ``/api/v1/questionnaires/xlsform/`` (staff who may add questionnaires upload one as a
new draft). See docs/xlsform.md.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from config.schema import error_responses
from surveys.models import QuestionnaireVersion
from surveys.xlsform import XLSX_CONTENT_TYPE, export_xlsform

VIEW_VERSIONS = "surveys.view_questionnaireversion"
MAX_VERSION_NUMBER = 2**31 - 1  # a PositiveIntegerField: larger is no version (not a 500)


def may_view_drafts(user: object) -> bool:
    """Staff with the permission to view questionnaire versions see drafts too."""
    return bool(getattr(user, "is_staff", False)) and user.has_perm(VIEW_VERSIONS)  # type: ignore[attr-defined]


class VersionXlsformView(APIView):
    """A questionnaire version as an XLSForm (``.xlsx``), ready for pyxform, ODK or Kobo."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary=_("A questionnaire version as an XLSForm"),
        responses={
            (200, XLSX_CONTENT_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY, description=_("The XLSForm (.xlsx).")
            ),
            **error_responses(401, 403, 404),
        },
    )
    def get(self, request: Request, code: str, number: int) -> HttpResponse:
        if number > MAX_VERSION_NUMBER:
            raise Http404
        version = (
            QuestionnaireVersion.objects.select_related("questionnaire")
            .filter(questionnaire__code=code, number=number)
            .first()
        )
        if version is None:
            raise Http404
        if version.status == QuestionnaireVersion.Status.DRAFT and not may_view_drafts(
            request.user
        ):
            if not request.user.is_authenticated:
                raise NotAuthenticated(_("A draft version is shown only to staff."))
            raise PermissionDenied(_("A draft version is shown only to staff."))
        response = HttpResponse(export_xlsform(version), content_type=XLSX_CONTENT_TYPE)
        file_name = f"{version.questionnaire.code}-v{version.number}.xlsx"
        response.headers["Content-Disposition"] = f'attachment; filename="{file_name}"'
        if version.status == QuestionnaireVersion.Status.DRAFT:
            response.headers["Cache-Control"] = "private, no-store"
        return response
