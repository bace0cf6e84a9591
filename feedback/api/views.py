"""``POST /api/v1/responses/``: a citizen's response from an app or portal.

Abuse control (``config.abuse``), in the order applied: a body larger than
``FEEDBACK_MAX_BODY_BYTES`` is refused before it is parsed (413), anonymous clients are rate
limited per hashed client address (429), and a filled honeypot field ``website`` is refused
(400).
"""

from __future__ import annotations

import copy
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.abuse import HoneypotField, SubmissionThrottle, check_body_size
from config.fields import ClientIdField
from config.params import validated
from config.schema import error_responses
from feedback import services
from feedback.models import DESIGN_CODE_MAX_LENGTH
from feedback.models import Response as ResponseModel
from surveys.models import Agency


def design_code_field(*, help_text: str) -> serializers.CharField:
    """An optional sample design code (``psu``, ``stratum``): empty when left out."""
    return serializers.CharField(
        max_length=DESIGN_CODE_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text=help_text,
    )


class AnswersField(serializers.DictField):
    """Question code → value as parsed from the JSON body; ``feedback.validation`` checks
    each value against its question.

    The child ``JSONField`` would only check that a value can be written as JSON, which a
    value just parsed from JSON always can; it is kept for the schema, not run per answer.
    """

    def run_child_validation(self, data: dict[Any, Any]) -> dict[str, Any]:
        return {str(key): value for key, value in data.items()}


class ResponseCreateView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [SubmissionThrottle]
    throttle_scope = "response-submit"

    @extend_schema_serializer(component_name="ResponseSubmission")
    class Input(serializers.Serializer):
        round = serializers.CharField(max_length=32)
        unit = serializers.CharField(max_length=16)
        agency = serializers.CharField(
            max_length=Agency.CODE_MAX_LENGTH,
            required=False,
            allow_blank=True,
            default="",
            help_text=(
                "Code of an agency of `unit`, unique in the country (e.g. `01-TTPVHCC`); an "
                "unknown code, or one of another unit's agency, is a 400 on `agency`."
            ),
        )
        client_id = ClientIdField()
        token = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        psu = design_code_field(
            help_text=(
                "Primary sampling unit the respondent was drawn in (e.g. a village or commune "
                "code), read within its stratum; surrounding spaces are removed. Empty: the "
                "response is its own PSU. With an invitation that has a PSU, leave it out or "
                "send the same code (another code is a 400 on `psu`)."
            ),
        )
        stratum = design_code_field(
            help_text=(
                "Sampling stratum of the respondent. Empty: the response's unit. With an "
                "invitation that has a stratum, leave it out or send the same code."
            ),
        )
        answers = AnswersField(child=serializers.JSONField(allow_null=True))
        website = HoneypotField()

        def get_fields(self) -> dict[str, serializers.Field]:
            """The declared fields, each copied shallowly for this instance to bind.

            DRF deep-copies them for every request, a tenth of a submission's CPU time
            (bench/ingest.py). A request changes none of a field's own state before it is
            bound (the bound copy's ``field_name``, ``parent``, ``source`` and validators
            are its own); the answers' child field is shared and never run.
            """
            return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        check_body_size(request)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        summary=_("Submit a citizen's response"),
        request=Input,
        responses={
            201: inline_serializer(
                "ResponseReceipt",
                {
                    "receipt": serializers.CharField(),
                    "round": serializers.CharField(),
                    "unit": serializers.CharField(),
                    "submitted_at": serializers.DateTimeField(),
                    "answers_stored": serializers.IntegerField(),
                },
            ),
            **error_responses(400, 403, 409, 413, 429),
        },
        examples=[
            OpenApiExample(
                "A response",
                value={
                    "round": "demo",
                    "unit": "19",
                    "client_id": "6f1c0f9e-4c1b-4f0e-9a57-0b5b8f8e1a01",
                    "psu": "19-TanCuong",
                    "answers": {"Q8_4": True, "S01": 4, "P01": 5},
                },
                request_only=True,
            ),
            OpenApiExample(
                "Stored",
                value={
                    "receipt": "K7Q2M-9XH4C",
                    "round": "demo",
                    "unit": "19",
                    "submitted_at": "2026-05-04T09:30:00+07:00",
                    "answers_stored": 3,
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        fields = validated(self.Input, request.data)
        submission = services.submit_response(
            round_code=fields["round"],
            unit_code=fields["unit"],
            agency_code=fields["agency"],
            answers=fields["answers"],
            client_id=fields["client_id"],
            invitation_token=fields["token"],
            channel=ResponseModel.Channel.API,
            account_id=request.user.pk if request.user.is_authenticated else None,
            psu=fields["psu"],
            stratum=fields["stratum"],
        )
        response = submission.response
        body = {
            "receipt": response.receipt,
            "round": response.round.code,
            "unit": response.unit.code,
            "submitted_at": response.submitted_at.isoformat(),
            "answers_stored": submission.answers_stored,
        }
        headers = {} if submission.created else {"Idempotent-Replayed": "true"}
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)
