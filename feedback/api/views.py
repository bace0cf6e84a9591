"""``POST /api/v1/responses/``: a citizen's response from an app or portal."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import services
from feedback.models import Response as ResponseModel


class ResponseCreateView(APIView):
    permission_classes = [AllowAny]
    throttle_scope = "response-submit"

    class Input(serializers.Serializer):
        round = serializers.CharField(max_length=32)
        unit = serializers.CharField(max_length=16)
        agency = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
        client_id = serializers.UUIDField()
        token = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        answers = serializers.DictField(child=serializers.JSONField(allow_null=True))

    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        submission = services.submit_response(
            round_code=fields["round"],
            unit_code=fields["unit"],
            agency_code=fields["agency"],
            answers=fields["answers"],
            client_id=fields["client_id"],
            invitation_token=fields["token"],
            channel=ResponseModel.Channel.API,
        )
        response = submission.response
        body = {
            "receipt": response.receipt,
            "round": response.round.code,
            "unit": response.unit.code,
            "submitted_at": response.submitted_at.isoformat(),
            "answers_stored": response.answers.count(),
        }
        headers = {} if submission.created else {"Idempotent-Replayed": "true"}
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)
