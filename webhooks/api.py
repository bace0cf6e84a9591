"""``/api/v1/webhooks/``: staff manage their webhook subscriptions (superusers: everyone's).

The signing secret is in the answer to the creation only; afterwards it is never shown.
``POST …/<id>/test/`` queues a test event; ``GET …/<id>/deliveries/`` is the delivery log.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import error_responses
from webhooks import services, targets
from webhooks.models import Delivery, DeliveryAttempt, EventType, Subscription


class SubscriptionSerializer(serializers.ModelSerializer):
    url = serializers.CharField(max_length=targets.MAX_URL_LENGTH)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), allow_empty=False, max_length=10
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    owner = serializers.CharField(source="owner.get_username", read_only=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "url",
            "events",
            "include_answers",
            "is_active",
            "description",
            "owner",
            "created_at",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
        ]
        read_only_fields = [
            "id",
            "owner",
            "created_at",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        owner = self.instance.owner if self.instance else self.context["request"].user
        if "events" in attrs:
            attrs["events"] = list(dict.fromkeys(attrs["events"]))
        errors = services.subscription_problems(
            url=attrs.get("url"),
            events=attrs.get("events"),
            include_answers=attrs.get("include_answers"),
            owner=owner,
        )
        if errors:
            raise ValidationError(errors)
        return attrs


class CreatedSubscriptionSerializer(SubscriptionSerializer):
    """The answer to a creation: the only one with the secret."""

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = [*SubscriptionSerializer.Meta.read_only_fields, "secret"]


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "at", "status_code", "duration_ms", "succeeded", "error"]


class DeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="event.type")
    attempts = AttemptSerializer(source="log", many=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "message_id",
            "event",
            "status",
            "created_at",
            "next_attempt_at",
            "finished_at",
            "last_status_code",
            "attempts",
        ]


def subscriptions_of(user: Any) -> QuerySet[Subscription]:
    """The subscriptions a staff user manages: their own; a superuser's: all (none for an
    anonymous user, as when the schema is generated)."""
    subscriptions = Subscription.objects.select_related("owner")
    if not user.is_authenticated:
        return subscriptions.none()
    return subscriptions if user.is_superuser else subscriptions.filter(owner=user)


class StaffOnly:
    permission_classes = [IsAuthenticated, IsAdminUser]


@extend_schema_view(
    get=extend_schema(
        responses={200: SubscriptionSerializer(many=True), **error_responses(401, 403)}
    )
)
class SubscriptionListView(StaffOnly, generics.ListCreateAPIView):
    """Webhook subscriptions: a staff member's own (a superuser's: all). Creating one answers
    its signing secret, shown this once."""

    serializer_class = SubscriptionSerializer

    def get_queryset(self) -> QuerySet[Subscription]:
        return subscriptions_of(self.request.user)

    @extend_schema(responses={201: CreatedSubscriptionSerializer, **error_responses(400, 401, 403)})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = serializer.save(owner=request.user)
        return Response(
            CreatedSubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    get=extend_schema(responses={200: SubscriptionSerializer, **error_responses(401, 403, 404)}),
    put=extend_schema(
        responses={200: SubscriptionSerializer, **error_responses(400, 401, 403, 404)}
    ),
    patch=extend_schema(
        responses={200: SubscriptionSerializer, **error_responses(400, 401, 403, 404)}
    ),
    delete=extend_schema(responses={204: None, **error_responses(401, 403, 404)}),
)
class SubscriptionDetailView(StaffOnly, generics.RetrieveUpdateDestroyAPIView):
    """One webhook subscription: read, change (URL, events, answers, active) or delete."""

    serializer_class = SubscriptionSerializer

    def get_queryset(self) -> QuerySet[Subscription]:
        return subscriptions_of(self.request.user)

    def perform_update(self, serializer: SubscriptionSerializer) -> None:
        instance = serializer.instance
        if serializer.validated_data.get("is_active") and not instance.is_active:
            services.activate(instance)
        serializer.save()


class SubscriptionTestView(StaffOnly, APIView):
    """Send a signed test event to the subscription's URL now (recorded in its deliveries)."""

    @extend_schema(
        request=None, responses={202: DeliverySerializer, **error_responses(401, 403, 404)}
    )
    def post(self, request: Request, pk: int) -> Response:
        subscription = get_object_or_404(subscriptions_of(request.user), pk=pk)
        delivery = services.send_test_event(subscription)
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    get=extend_schema(
        responses={200: DeliverySerializer(many=True), **error_responses(401, 403, 404)}
    )
)
class DeliveryListView(StaffOnly, generics.ListAPIView):
    """The subscription's deliveries, newest first, each with its attempts (status, time)."""

    serializer_class = DeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        if getattr(self, "swagger_fake_view", False):  # the schema is being generated
            return Delivery.objects.none()
        subscription = get_object_or_404(subscriptions_of(self.request.user), pk=self.kwargs["pk"])
        return (
            Delivery.objects.filter(subscription=subscription)
            .select_related("event")
            .prefetch_related(Prefetch("log", DeliveryAttempt.objects.order_by("number", "id")))
        )
