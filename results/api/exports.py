"""Downloads: published scores of a round (public) and raw responses with the codebook (staff).

CSV streams row by row (``StreamingHttpResponse``); the raw responses CSV is built by
PostgreSQL and streamed from ``COPY ... TO STDOUT`` (``exports.response_csv``). XLSX streams
too, written as its rows are read (``export_files.xlsx_stream``). SPSS, Stata and Parquet
(``stat_exports``, labels in ``?lang=vi|en``) are written to a temporary file from rows read
by server-side cursors, then sent (``export_files.temporary_file_response``). Raw responses
need the permission ``feedback.view_response`` (staff with *Can view response*): anonymous
callers get 401 and signed-in users or API-consumer tokens without it 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as BadRequest
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from config.conditional import not_modified, set_validators
from config.params import QueryChoiceField
from config.schema import error_responses
from results import export_files, exports, selectors, series_exports, stat_exports
from results.api.caching import document_key
from results.api.throttling import ResultsReadThrottle
from surveys import scoping
from surveys.models import Questionnaire, Round

CSV = "text/csv; charset=utf-8"
XLSX = export_files.XLSX_CONTENT_TYPE
VIEW_RESPONSES = "feedback.view_response"
STAT_CONTENT_TYPES = {
    "sav": "application/x-spss-sav",
    "dta": "application/x-stata-dta",
    "parquet": "application/vnd.apache.parquet",
}


class StatFormatParams(serializers.Serializer):
    lang = QueryChoiceField(choices=stat_exports.LANGUAGES, required=False)


def export_language(request: Request) -> str:
    """``?lang=vi|en`` (400 naming ``lang`` otherwise); by default the request's language."""
    params = StatFormatParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    active = (translation.get_language() or "vi")[:2]
    return params.validated_data.get("lang") or (active if active in ("vi", "en") else "vi")


class CanExportResponses(BasePermission):
    message = _("Exporting raw responses needs the permission to view responses.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user.has_perm(VIEW_RESPONSES)


def csv_response(rows: Any, file_name: str) -> StreamingHttpResponse:
    return csv_bytes_response(exports.csv_stream(rows), file_name)


def csv_bytes_response(content: Iterator[bytes], file_name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, content_type=CSV)
    response.headers["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


def round_or_404(code: str) -> Round:
    survey_round = selectors.round_by_code(code)
    if survey_round is None:
        raise Http404
    return survey_round


def staff_round_or_404(request: Request, code: str) -> Round:
    """A round whose raw responses the user may export: any for national staff, their own
    local rounds for province staff (another province's round is a 404, as unknown)."""
    survey_round = (
        scoping.rounds_for(request.user)
        .select_related("version__questionnaire")
        .filter(code=code)
        .first()
    )
    if survey_round is None:
        raise Http404
    return survey_round


class ExportView(APIView):
    throttle_classes = [ResultsReadThrottle]
    file_format = "csv"


class ScoreExportView(ExportView):
    """The published scores of a round, national and per unit; suppressed values blank."""

    permission_classes = [AllowAny]

    def get(self, request: Request, code: str) -> HttpResponseBase:
        lang = export_language(request) if self.file_format in STAT_CONTENT_TYPES else ""
        publication = selectors.publication(round_code=code)
        if publication is None:
            round_or_404(code)
            raise Http404(_("This round has no published results yet."))
        headers = StreamingHttpResponse()
        key = document_key(request, f"{type(self).__name__}.{self.file_format}", [publication])
        set_validators(headers, f'"{key}"', publication.published_at)
        if answer := not_modified(request, headers):
            return answer
        rows = exports.score_rows(round_code=code, run_id=publication.run_id)
        file_name = f"{code}-scores-run{publication.run_id}.{self.file_format}"
        if self.file_format == "csv":
            response: HttpResponseBase = csv_response(rows, file_name)
        elif self.file_format in STAT_CONTENT_TYPES:
            run_id, kind = publication.run_id, self.file_format
            response = export_files.temporary_file_response(
                lambda path: stat_exports.score_file(code, run_id, kind, lang, path),
                file_name,
                STAT_CONTENT_TYPES[kind],
            )
        else:
            response = export_files.xlsx_response([("scores", rows)], file_name)
        for header in ("ETag", "Last-Modified", "Cache-Control"):
            response.headers[header] = headers.headers[header]
        return response


class ResponseExportView(ExportView):
    """Raw responses of a round, one row per response (staff only), with the codebook."""

    permission_classes = [IsAuthenticated, CanExportResponses]

    def get(self, request: Request, code: str) -> HttpResponseBase:
        lang = export_language(request) if self.file_format in STAT_CONTENT_TYPES else ""
        survey_round = staff_round_or_404(request, code)
        file_name = f"{code}-responses.{self.file_format}"
        if self.file_format == "csv":
            return csv_bytes_response(exports.response_csv(survey_round), file_name)
        if self.file_format in STAT_CONTENT_TYPES:
            kind = self.file_format
            return export_files.temporary_file_response(
                lambda path: stat_exports.response_file(survey_round, kind, lang, path),
                file_name,
                STAT_CONTENT_TYPES[kind],
            )
        sheets, large = exports.response_sheets(survey_round)
        return export_files.xlsx_response(sheets, file_name, large=large)


class CodebookExportView(ExportView):
    """The codebook of a round's responses export: question codes, labels, choice codes."""

    permission_classes = [AllowAny]

    def get(self, request: Request, code: str) -> HttpResponseBase:
        # A local round's codebook goes with its raw responses: to the staff who export them.
        if selectors.round_by_code(code) is None and request.user.has_perm(VIEW_RESPONSES):
            survey_round = staff_round_or_404(request, code)
        else:
            survey_round = round_or_404(code)
        return csv_response(exports.codebook_rows(survey_round), f"{code}-codebook.csv")


LANG_PARAMETER = OpenApiParameter(
    "lang",
    str,
    enum=list(stat_exports.LANGUAGES),
    description=_("Language of the variable and value labels (default: the request's)."),
)


def export_schema(media_type: str, summary: str, *codes: int, lang: bool = False) -> Any:
    return extend_schema_view(
        get=extend_schema(
            summary=summary,
            parameters=[LANG_PARAMETER] if lang else None,
            responses={
                (200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=summary),
                **error_responses(*codes),
            },
        )
    )


@export_schema("text/csv", _("Published scores of a round as CSV"), 404, 429)
class ScoreCsvView(ScoreExportView):
    file_format = "csv"


@export_schema(XLSX, _("Published scores of a round as XLSX"), 404, 429)
class ScoreXlsxView(ScoreExportView):
    file_format = "xlsx"


@export_schema("text/csv", _("Raw responses of a round as CSV (staff)"), 401, 403, 404, 429)
class ResponseCsvView(ResponseExportView):
    file_format = "csv"


@export_schema(
    XLSX,
    _("Raw responses of a round as XLSX with a codebook sheet (staff)"),
    401,
    403,
    404,
    429,
)
class ResponseXlsxView(ResponseExportView):
    file_format = "xlsx"


@export_schema("text/csv", _("Codebook of the responses export as CSV"), 404, 429)
class CodebookCsvView(CodebookExportView):
    pass


SAV, DTA, PARQUET = (STAT_CONTENT_TYPES[k] for k in ("sav", "dta", "parquet"))


@export_schema(SAV, _("Published scores of a round as SPSS"), 400, 404, 429, lang=True)
class ScoreSavView(ScoreExportView):
    file_format = "sav"


@export_schema(DTA, _("Published scores of a round as Stata"), 400, 404, 429, lang=True)
class ScoreDtaView(ScoreExportView):
    file_format = "dta"


@export_schema(PARQUET, _("Published scores of a round as Parquet"), 400, 404, 429, lang=True)
class ScoreParquetView(ScoreExportView):
    file_format = "parquet"


STAFF_CODES = (400, 401, 403, 404, 429)


@export_schema(SAV, _("Raw responses of a round as SPSS (staff)"), *STAFF_CODES, lang=True)
class ResponseSavView(ResponseExportView):
    file_format = "sav"


@export_schema(DTA, _("Raw responses of a round as Stata (staff)"), *STAFF_CODES, lang=True)
class ResponseDtaView(ResponseExportView):
    file_format = "dta"


@export_schema(
    PARQUET,
    _("Raw responses of a round as Parquet with the codebook (staff)"),
    *STAFF_CODES,
    lang=True,
)
class ResponseParquetView(ResponseExportView):
    file_format = "parquet"


# --- The cross-round export (docs/series.md) --------------------------------------------------


class SeriesParams(serializers.Serializer):
    rounds = serializers.CharField(
        max_length=2000,
        help_text=_("Round codes of the questionnaire, separated by commas: rounds=a,b."),
    )


@extend_schema_view(
    get=extend_schema(
        summary=_("Raw responses of several rounds in one CSV with harmonized columns (staff)"),
        description=_(
            "One row per response of each named round, oldest round first. The question "
            "columns are the codes of the latest questionnaire version among the rounds; "
            "answers given on another version are placed through the version mapping (same "
            "or reworded) and a question without equivalent stays empty for that round. The "
            "round and version columns say where each row comes from. Needs the permission "
            "to view responses, as the export of one round."
        ),
        parameters=[
            OpenApiParameter(
                "rounds",
                str,
                required=True,
                description=_("Round codes of the questionnaire, separated by commas: rounds=a,b."),
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY, description=_("The harmonized CSV.")
            ),
            **error_responses(*STAFF_CODES),
        },
    )
)
class SeriesResponseCsvView(ExportView):
    """Raw responses of several rounds of a questionnaire in one CSV (staff only)."""

    permission_classes = [IsAuthenticated, CanExportResponses]

    def get(self, request: Request, code: str) -> HttpResponseBase:
        # A questionnaire the user has no round of (another province's) is unknown, like a
        # code that does not exist: its existence is not told.
        questionnaire = (
            Questionnaire.objects.filter(code=code)
            .filter(
                Q(pk__in=scoping.questionnaires_for(request.user).values("pk"))
                | Q(versions__rounds__in=scoping.rounds_for(request.user))
            )
            .distinct()
            .first()
        )
        if questionnaire is None:
            raise Http404
        params = SeriesParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            # A province's staff export their own rounds only: the others are unknown.
            rounds = series_exports.rounds_of(
                questionnaire,
                params.validated_data["rounds"],
                among=scoping.rounds_for(request.user),
            )
        except ValidationError as error:
            raise BadRequest(error.message_dict) from None
        return csv_response(
            series_exports.series_response_rows(rounds), f"{code}-responses-series.csv"
        )
