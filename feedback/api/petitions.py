"""Petition API: citizens submit, track and rate; staff list, read and move petitions.

Public: ``POST /petitions/`` (anonymous, rate limited per hashed IP, body size limit,
honeypot ``website``), ``GET /petitions/track/<code>/`` (status history and public reply,
never personal data), ``POST /petitions/track/<code>/rating/``, ``GET /petition-categories/``.
Staff (token or session): ``GET /petitions/`` and ``/petitions/<id>/`` limited to their
agencies, ``POST /petitions/<id>/transitions/``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import BasePagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.abuse import HoneypotField, SubmissionThrottle, check_body_size
from config.fields import ClientIdField
from config.links import public_base_url
from config.params import QueryChoiceField, validated
from feedback.models import Petition, PetitionCategory, PetitionEvent
from feedback.petitions import selectors, services
from feedback.petitions.errors import PetitionNotFound
from surveys.models import Agency, localized

_AGENCY_HELP = (
    "Code of an agency of `unit`, unique in the country (e.g. `01-TTPVHCC`); an unknown "
    "code, or one of another unit's agency, is a 400 on `agency`."
)

ERROR = inline_serializer(
    "PetitionError",
    {
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        # Messages per field; a body that is not a flat object gets errors shaped like it
        # (``config.input_guard``), so the values are lists of messages or nested objects.
        "fields": serializers.DictField(required=False),
    },
)


class CategorySerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()

    class Meta:
        model = PetitionCategory
        fields = ["code", "name", "description", "group", "deadline_days"]

    def get_name(self, obj: PetitionCategory) -> str:
        return localized(obj, "name")

    def get_description(self, obj: PetitionCategory) -> str:
        return localized(obj, "description")


class HistorySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Petition.Status.choices)
    at = serializers.DateTimeField()


class PublicPetitionSerializer(serializers.Serializer):
    """What anyone holding the tracking code sees: no contact details, no staff names."""

    tracking_code = serializers.CharField()
    category = serializers.CharField(source="category.code")
    unit = serializers.CharField(source="unit.code")
    agency = serializers.CharField(source="agency.code", allow_null=True, default=None)
    status = serializers.ChoiceField(choices=Petition.Status.choices)
    submitted_at = serializers.DateTimeField()
    deadline = serializers.DateField()
    overdue = serializers.BooleanField(source="is_overdue")
    reply = serializers.CharField()
    rejection_reason = serializers.CharField()
    rating = serializers.IntegerField(allow_null=True)
    can_rate = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()

    def get_can_rate(self, obj: Petition) -> bool:
        return obj.is_closed and obj.rating is None

    @extend_schema_field(HistorySerializer(many=True))
    def get_history(self, obj: Petition) -> list[dict[str, Any]]:
        return HistorySerializer(obj.events.all(), many=True).data


class StaffEventSerializer(HistorySerializer):
    previous_status = serializers.CharField()
    actor = serializers.CharField(source="actor.get_username", allow_null=True, default=None)
    agency = serializers.CharField(source="agency.code", allow_null=True, default=None)
    note = serializers.CharField()


class StaffPetitionSerializer(PublicPetitionSerializer):
    """What the handling staff see, contact details included."""

    id = serializers.IntegerField()
    description = serializers.CharField()
    address = serializers.CharField()
    lat = serializers.DecimalField(max_digits=9, decimal_places=6, allow_null=True)
    long = serializers.DecimalField(max_digits=9, decimal_places=6, allow_null=True)
    contact_name = serializers.CharField()
    contact_email = serializers.CharField()
    contact_phone = serializers.CharField()
    channel = serializers.CharField()
    assignee = serializers.CharField(source="assignee.get_username", allow_null=True, default=None)
    closed_at = serializers.DateTimeField(allow_null=True)
    history = serializers.SerializerMethodField()

    @extend_schema_field(StaffEventSerializer(many=True))
    def get_history(self, obj: Petition) -> list[dict[str, Any]]:
        return StaffEventSerializer(obj.events.all(), many=True).data


STAFF_RELATED = ["category", "unit", "agency", "assignee"]


def staff_events() -> Prefetch:
    return Prefetch("events", queryset=PetitionEvent.objects.select_related("actor", "agency"))


STAFF_PAGE = inline_serializer(
    "PaginatedStaffPetitionList",
    {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": StaffPetitionSerializer(many=True),
    },
)


class NoPagination(BasePagination):
    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> None:
        return None


class PetitionCategoryListView(ListAPIView):
    """Categories open for new petitions, with their deadline in working days."""

    permission_classes = [AllowAny]
    serializer_class = CategorySerializer
    pagination_class = NoPagination

    def get_queryset(self) -> QuerySet[PetitionCategory]:
        return PetitionCategory.objects.filter(is_active=True)


class PetitionListCreateView(APIView):
    """``POST``: a citizen files a petition. ``GET``: the petitions a staff account handles."""

    throttle_scope = "petition-submit"

    class PetitionSubmitInput(serializers.Serializer):
        category = serializers.CharField(min_length=1, max_length=32)
        unit = serializers.CharField(min_length=1, max_length=16)
        agency = serializers.CharField(
            max_length=Agency.CODE_MAX_LENGTH,
            required=False,
            allow_blank=True,
            default="",
            help_text=_AGENCY_HELP,
        )
        description = serializers.CharField(min_length=1, max_length=20_000)
        address = serializers.CharField(
            max_length=1000, required=False, allow_blank=True, default=""
        )
        lat = serializers.DecimalField(
            max_digits=9, decimal_places=6, required=False, allow_null=True, default=None
        )
        long = serializers.DecimalField(
            max_digits=9, decimal_places=6, required=False, allow_null=True, default=None
        )
        contact_name = serializers.CharField(
            max_length=1000, required=False, allow_blank=True, default=""
        )
        contact_email = serializers.CharField(
            max_length=1000, required=False, allow_blank=True, default=""
        )
        contact_phone = serializers.CharField(
            max_length=1000, required=False, allow_blank=True, default=""
        )
        contact_consent = serializers.BooleanField(required=False, default=False)
        client_id = ClientIdField(required=False, allow_null=True, default=None)
        website = HoneypotField()

    Input = PetitionSubmitInput

    class ListParams(serializers.Serializer):
        status = QueryChoiceField(choices=Petition.Status.values, required=False)
        overdue = QueryChoiceField(choices=["true", "false"], required=False)

    class PetitionCreated(serializers.Serializer):
        tracking_code = serializers.CharField()
        status = serializers.CharField()
        deadline = serializers.DateField()
        tracking_url = serializers.CharField()

    def get_permissions(self) -> list[Any]:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_throttles(self) -> list[Any]:
        return [SubmissionThrottle()] if self.request.method == "POST" else []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "POST":
            check_body_size(request)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request=Input,
        responses={
            201: PetitionCreated,
            200: PetitionCreated,
            400: ERROR,
            409: ERROR,
            413: ERROR,
            429: ERROR,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        fields = validated(self.Input, request.data)
        client_id = fields.pop("client_id")
        fields.pop("website")
        petition, created = services.submit_petition(
            data=services.PetitionInput(**fields),
            channel=Petition.Channel.API,
            client_id=client_id,
            submitted_by=request.user if request.user.is_authenticated else None,
            link_base=public_base_url(request),
        )
        body = {
            "tracking_code": petition.tracking_code,
            "status": petition.status,
            "deadline": petition.deadline.isoformat(),
            "tracking_url": f"/petitions/track/{petition.tracking_code}/",
        }
        if created:
            return Response(body, status=status.HTTP_201_CREATED)
        return Response(body, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})

    @extend_schema(
        operation_id="petitions_list",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=Petition.Status.values),
            OpenApiParameter("overdue", OpenApiTypes.BOOL),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses={200: STAFF_PAGE, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
    )
    def get(self, request: Request) -> Response:
        petitions = selectors.with_overdue(selectors.petitions_visible_to(request.user))
        params = validated(self.ListParams, request.query_params)
        if wanted := params.get("status"):
            petitions = petitions.filter(status=wanted)
        if overdue := params.get("overdue"):
            petitions = petitions.filter(overdue=overdue == "true")
        petitions = petitions.select_related(*STAFF_RELATED).prefetch_related(staff_events())
        paginator = self.settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(petitions.order_by("deadline", "pk"), request, self)
        return paginator.get_paginated_response(StaffPetitionSerializer(page, many=True).data)


class PetitionTrackView(APIView):
    """A petition's status, history and public reply, by its tracking code."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: PublicPetitionSerializer, 404: ERROR}, auth=[])
    def get(self, request: Request, code: str) -> Response:
        petition = selectors.petition_by_code(code)
        if petition is None:
            raise PetitionNotFound()
        return Response(PublicPetitionSerializer(petition).data)


class PetitionRatingView(APIView):
    """The citizen rates the handling once, after the petition is closed."""

    permission_classes = [AllowAny]
    throttle_scope = "petition-submit"
    throttle_classes = [SubmissionThrottle]

    class PetitionRatingInput(serializers.Serializer):
        rating = serializers.IntegerField(min_value=1, max_value=5)

    Input = PetitionRatingInput

    @extend_schema(
        request=Input,
        responses={200: PublicPetitionSerializer, 400: ERROR, 404: ERROR, 409: ERROR, 429: ERROR},
        auth=[],
    )
    def post(self, request: Request, code: str) -> Response:
        rating = validated(self.Input, request.data)["rating"]
        petition = services.rate_petition(tracking_code=code, rating=rating)
        return Response(PublicPetitionSerializer(petition).data)


class PetitionDetailView(APIView):
    """One petition with contact details and full history, for its handlers."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: StaffPetitionSerializer, 401: ERROR, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        petition = (
            selectors.petitions_visible_to(request.user)
            .select_related(*STAFF_RELATED)
            .prefetch_related(staff_events())
            .filter(pk=pk)
            .first()
        )
        if petition is None:
            raise PetitionNotFound()
        return Response(StaffPetitionSerializer(petition).data)


class PetitionTransitionView(APIView):
    """Change a petition's status (assign, start, resolve, reject), recorded with who and when."""

    permission_classes = [IsAuthenticated]

    class PetitionTransitionInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=Petition.Status.choices)
        note = serializers.CharField(required=False, allow_blank=True, default="")
        reply = serializers.CharField(required=False, allow_blank=True, default=None)
        reason = serializers.CharField(required=False, allow_blank=True, default="")
        agency = serializers.CharField(
            source="agency_code",
            max_length=Agency.CODE_MAX_LENGTH,
            required=False,
            allow_blank=True,
            default="",
        )
        assignee = serializers.IntegerField(
            source="assignee_id",
            required=False,
            allow_null=True,
            default=None,
            min_value=1,
            max_value=2**62,
        )

    Input = PetitionTransitionInput

    @extend_schema(
        request=Input,
        responses={
            200: StaffPetitionSerializer,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            409: ERROR,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        petition = services.change_petition_status(
            petition_id=pk,
            actor=request.user,
            link_base=public_base_url(request),
            **validated(self.Input, request.data),  # named as the service names them
        )
        return Response(StaffPetitionSerializer(petition).data)
