"""XLSForm in and out: ``/api/v1/questionnaires/<code>/versions/<number>/xlsform.xlsx``
(a version as an XLSForm: public once published, drafts for staff who may view versions)
and ``/api/v1/questionnaires/xlsform/`` (staff who may add questionnaires upload one as a
new draft). See docs/xlsform.md.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.abuse import body_within_limit
from config.params import validated
from config.parsers import MultiPartParser
from config.schema import error_responses
from surveys import scoping
from surveys.models import QuestionnaireVersion
from surveys.scoping import is_national
from surveys.xlsform import (
    MAX_FILE_BYTES,
    XLSX_CONTENT_TYPE,
    Problem,
    XlsformRefused,
    export_xlsform,
    import_xlsform,
)

VIEW_VERSIONS = "surveys.view_questionnaireversion"
IMPORT_PERMISSIONS = ("surveys.add_questionnaire", "surveys.add_questionnaireversion")
# Room for the multipart envelope around a file of the largest size.
MAX_BODY_BYTES = MAX_FILE_BYTES + 64 * 1024
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
        is_draft = version.status == QuestionnaireVersion.Status.DRAFT
        if (
            is_draft
            and may_view_drafts(request.user)
            and not scoping.versions_for(request.user, shared=True).filter(pk=version.pk).exists()
        ):
            raise Http404  # another province's draft
        if is_draft and not may_view_drafts(request.user):
            if not request.user.is_authenticated:
                raise NotAuthenticated(_("A draft version is shown only to staff."))
            raise PermissionDenied(_("A draft version is shown only to staff."))
        response = HttpResponse(export_xlsform(version), content_type=XLSX_CONTENT_TYPE)
        file_name = f"{version.questionnaire.code}-v{version.number}.xlsx"
        response.headers["Content-Disposition"] = f'attachment; filename="{file_name}"'
        if version.status == QuestionnaireVersion.Status.DRAFT:
            response.headers["Cache-Control"] = "private, no-store"
        return response


class CanImportXlsforms(BasePermission):
    """Staff who may add questionnaires and their versions."""

    message = _("Importing an XLSForm needs the permissions to add questionnaires and versions.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        # An XLSForm makes a national questionnaire: province staff copy one in the admin.
        return bool(user.is_staff) and user.has_perms(IMPORT_PERMISSIONS) and is_national(user)


def refused_response(problems: list[Problem]) -> Response:
    """400 naming every problem: in words under ``fields.file``, and one object each
    (sheet, row, column, message) under ``errors``."""
    return Response(
        {
            "code": "invalid_xlsform",
            "detail": ngettext(
                "The XLSForm was not imported: %(n)s problem.",
                "The XLSForm was not imported: %(n)s problems.",
                len(problems),
            )
            % {"n": len(problems)},
            "fields": {"file": [str(p) for p in problems]},
            "errors": [p.as_dict() for p in problems],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


class XlsformImportView(APIView):
    """Upload an XLSForm (.xlsx with survey, choices and settings sheets): it becomes a new
    draft version of the questionnaire its ``form_id`` names (created when new). Refused
    with every problem by sheet, row and column, and then nothing is stored."""

    permission_classes = [IsAuthenticated, CanImportXlsforms]
    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="XlsformUpload")
    class Input(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)

    @extend_schema(
        summary=_("Import an XLSForm as a new draft version"),
        request={"multipart/form-data": Input},
        responses={
            201: inline_serializer(
                "XlsformImported",
                {
                    "questionnaire": serializers.CharField(),
                    "version": serializers.IntegerField(),
                    "status": serializers.CharField(),
                },
            ),
            **error_responses(400, 401, 403),
        },
        examples=[
            OpenApiExample(
                "Imported",
                value={"questionnaire": "sipas", "version": 3, "status": "draft"},
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "Refused",
                value={
                    "code": "invalid_xlsform",
                    "detail": "The XLSForm was not imported: 1 problem.",
                    "fields": {"file": ["survey, row 7, column type: Repeats are not supported."]},
                    "errors": [
                        {
                            "sheet": "survey",
                            "row": 7,
                            "column": "type",
                            "message": "Repeats are not supported.",
                        }
                    ],
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        too_large = gettext("The file is larger than %(n)s MB.") % {"n": MAX_FILE_BYTES // 2**20}
        if not body_within_limit(request, MAX_BODY_BYTES):
            raise ValidationError({"file": [too_large]})
        upload: Any = validated(self.Input, request.data)["file"]
        if upload.size > MAX_FILE_BYTES:
            raise ValidationError({"file": [too_large]})
        try:
            imported = import_xlsform(upload.read())
        except XlsformRefused as refused:
            return refused_response(refused.problems)
        version = imported.version
        return Response(
            {
                "questionnaire": version.questionnaire.code,
                "version": version.number,
                "status": version.status,
            },
            status=status.HTTP_201_CREATED,
        )
