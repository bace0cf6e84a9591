"""``POST /api/v1/responses/<receipt>/review/``: staff allowed to review (``feedback.
review_response``) exclude a response from the indices, with a reason, or accept it again
(``feedback.review.services``). The response and its answers are never deleted."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.params import validated
from config.schema import error_responses
from feedback.models import Response as ResponseModel
from feedback.review import services as review
from surveys import scoping


class CanReviewResponses(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user.has_perm(review.REVIEW_PERMISSION)


ReviewSchema = inline_serializer(
    "ResponseReview",
    {
        "receipt": serializers.CharField(),
        "state": serializers.ChoiceField(choices=ResponseModel.ReviewState.choices),
        "reason": serializers.CharField(allow_blank=True),
        "note": serializers.CharField(allow_blank=True),
        "reviewed_by": serializers.CharField(allow_null=True),
        "reviewed_at": serializers.DateTimeField(allow_null=True),
        "changed": serializers.BooleanField(),
    },
)


def review_document(response: ResponseModel, *, changed: bool) -> dict[str, Any]:
    return {
        "receipt": response.receipt,
        "state": response.review_state,
        "reason": response.review_reason,
        "note": response.review_note,
        "reviewed_by": response.reviewed_by and response.reviewed_by.get_username(),
        "reviewed_at": response.reviewed_at and response.reviewed_at.isoformat(),
        "changed": changed,
    }


class ResponseReviewView(APIView):
    """Set a response's review state; 200 with the state now stored."""

    permission_classes = [IsAuthenticated, CanReviewResponses]

    @extend_schema_serializer(component_name="ResponseReviewInput")
    class Input(serializers.Serializer):
        state = serializers.CharField(
            help_text="`excluded` (left out of the next run's indices) or `accepted`."
        )
        reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text=(
                "Why it is excluded: `duplicate` (duplicate household), `fraud`, `test` or "
                "`other`; required with `excluded`, empty with `accepted`."
            ),
        )
        note = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            trim_whitespace=False,
            help_text=f"Optional, at most {review.NOTE_MAX_LENGTH} characters.",
        )

    @extend_schema(
        summary=_("Exclude a response from the indices, or accept it again"),
        request=Input,
        responses={200: ReviewSchema, **error_responses(400, 401, 403, 404)},
        examples=[
            OpenApiExample(
                "Exclude",
                value={"state": "excluded", "reason": "duplicate", "note": "same household"},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, receipt: str) -> Response:
        responses = scoping.limit(ResponseModel.objects.all(), request.user, "round__owner_unit")
        response = get_object_or_404(responses, receipt=receipt)
        decision = review.checked_review(**validated(self.Input, request.data))
        changed = review.review_responses([response.pk], decision, user=request.user)
        response = ResponseModel.objects.select_related("reviewed_by").get(pk=response.pk)
        return Response(review_document(response, changed=bool(changed)))
