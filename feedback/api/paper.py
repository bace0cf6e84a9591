"""``/api/v1/paper-imports/``: staff upload files of paper questionnaires and follow them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.abuse import body_within_limit
from config.params import validated
from config.parsers import MultiPartParser
from config.queueing import unavailable_response
from config.schema import error_responses
from feedback.models import PaperImport
from feedback.paper import services as paper
from surveys import scoping

# Room for the multipart envelope and the round field around a file of the largest size.
MAX_BODY_BYTES = paper.MAX_FILE_BYTES + 64 * 1024


class CanImportPaperForms(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user.has_perm("feedback.import_paper_forms")


PaperImportSchema = inline_serializer(
    "PaperImport",
    {
        "id": serializers.IntegerField(),
        "url": serializers.URLField(),
        "round": serializers.CharField(),
        "file_name": serializers.CharField(),
        "status": serializers.ChoiceField(choices=PaperImport.Status.choices),
        "total_rows": serializers.IntegerField(),
        "processed_rows": serializers.IntegerField(),
        "accepted_rows": serializers.IntegerField(),
        "rejected_rows": serializers.IntegerField(),
        "duplicate_rows": serializers.IntegerField(),
        "uploaded_by": serializers.CharField(allow_null=True),
        "late_entry": serializers.BooleanField(),
        "error": serializers.CharField(allow_blank=True),
        "created_at": serializers.DateTimeField(),
        "finished_at": serializers.DateTimeField(allow_null=True),
        "report": serializers.ListField(child=serializers.DictField()),
    },
)


def paper_import_document(request: Request, paper_import: PaperImport) -> dict[str, Any]:
    return {
        "id": paper_import.pk,
        "url": request.build_absolute_uri(
            reverse("v1:paper-import", kwargs={"pk": paper_import.pk})
        ),
        "round": paper_import.round.code,
        "file_name": paper_import.file_name,
        "status": paper_import.status,
        "total_rows": paper_import.total_rows,
        "processed_rows": paper_import.processed_rows,
        "accepted_rows": paper_import.accepted_rows,
        "rejected_rows": paper_import.rejected_rows,
        "duplicate_rows": paper_import.duplicate_rows,
        "uploaded_by": paper_import.uploaded_by and paper_import.uploaded_by.get_username(),
        "late_entry": paper_import.late_entry,
        "error": paper_import.error,
        "created_at": paper_import.created_at.isoformat(),
        "finished_at": paper_import.finished_at and paper_import.finished_at.isoformat(),
        "report": paper_import.report,
    }


class PaperImportCreateView(APIView):
    """Upload a CSV or XLSX file: imported now when small (201), else queued (202)."""

    permission_classes = [IsAuthenticated, CanImportPaperForms]
    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="PaperImportUpload")
    class Input(serializers.Serializer):
        round = serializers.CharField(max_length=32)
        file = serializers.FileField(allow_empty_file=True)

    @extend_schema(
        summary=_("Import a file of paper questionnaires"),
        request=Input,
        responses={
            201: PaperImportSchema,
            202: PaperImportSchema,
            **error_responses(400, 401, 403),
            **unavailable_response(),
        },
    )
    def post(self, request: Request) -> Response:
        # Refuse an oversized upload before reading it.
        if not body_within_limit(request, MAX_BODY_BYTES):
            raise ValidationError({"file": [paper.too_large_message()]})
        fields = validated(self.Input, request.data)
        upload = fields["file"]
        if upload.size > paper.MAX_FILE_BYTES:
            raise ValidationError({"file": [paper.too_large_message()]})
        paper_import = paper.start_paper_import(
            round_code=fields["round"],
            file_name=upload.name,
            content=upload.read(),
            uploaded_by=request.user,
        )
        queued = paper_import.total_rows > settings.PAPER_IMPORT_SYNC_MAX_ROWS
        return Response(
            paper_import_document(request, paper_import),
            status=status.HTTP_202_ACCEPTED if queued else status.HTTP_201_CREATED,
        )


class PaperImportDetailView(APIView):
    """Status, progress and report of one import."""

    permission_classes = [IsAuthenticated, CanImportPaperForms]

    @extend_schema(
        summary=_("Status and report of a paper import"),
        responses={200: PaperImportSchema, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        imports = scoping.limit(PaperImport.objects.all(), request.user, "round__owner_unit")
        paper_import = get_object_or_404(imports.select_related("round", "uploaded_by"), pk=pk)
        return Response(paper_import_document(request, paper_import))
