"""Admin of webhooks: staff manage their subscriptions (superusers: everyone's), send a test
event, and read the delivery log. The signing secret is shown once, right after creation.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from config.admin_mixins import Page, SuperuserDeletesMixin, ToolPagesMixin, ViewOnlyInline
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, EventType, Subscription

_OWNER = {Subscription: "owner", Delivery: "subscription__owner"}


def _scoped(request: HttpRequest, queryset: QuerySet) -> QuerySet:
    """The rows of ``queryset`` the user manages: their own; a superuser's: all."""
    if request.user.is_superuser:
        return queryset
    return queryset.filter(**{_OWNER[queryset.model]: request.user})


class StaffAdmin(admin.ModelAdmin):
    """Any staff account, on its own rows (superusers: all)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request) and (
            obj is None or _scoped(request, type(obj).objects.filter(pk=obj.pk)).exists()
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return _scoped(request, super().get_queryset(request))


class SubscriptionForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=_("events"), choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Subscription
        fields = ["url", "events", "include_answers", "is_active", "description"]

    def __init__(self, *args: Any, owner: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        owner = self.instance.owner if self.instance.pk else self.owner
        problems = services.subscription_problems(
            url=data.get("url") if "url" not in self.errors else None,
            events=data.get("events") if "events" not in self.errors else None,
            include_answers=data.get("include_answers"),
            owner=owner,
        )
        for field, errors in problems.items():
            for error in errors:
                self.add_error(field, error)
        return data


@admin.register(Subscription)
class SubscriptionAdmin(ToolPagesMixin, StaffAdmin):
    form = SubscriptionForm
    list_display = ["url", "owner", "is_active", "consecutive_failures", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = [
        "owner",
        "created_at",
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
    ]
    actions = ["send_test_events"]
    own_pages = (Page("<int:pk>/send-test/", "send_test_view", "webhooks_subscription_send_test"),)
    change_form_template = "admin/webhooks/subscription/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_view_permission(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)

        class WithOwner(form):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **inner: Any) -> None:
                super().__init__(*args, owner=request.user, **inner)

        return WithOwner

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        if not change:
            obj.owner = request.user
        elif "is_active" in form.changed_data and obj.is_active:
            services.activate(obj)
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(
                request,
                _(
                    "The signing secret of this subscription is %(secret)s — copy it now: "
                    "it will not be shown again."
                )
                % {"secret": obj.secret},
            )

    def send_test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        subscription = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, subscription):
            raise PermissionDenied
        self._send_test(request, subscription)
        return HttpResponseRedirect(reverse("admin:webhooks_subscription_change", args=[pk]))

    def _send_test(self, request: HttpRequest, subscription: Subscription) -> None:
        delivery = services.send_test_event(subscription)
        messages.success(
            request,
            _("A test event (%(id)s) was queued to %(url)s; see its delivery in the log.")
            % {"id": delivery.message_id, "url": subscription.url},
        )

    @admin.action(description=_("Send a test event"))
    def send_test_events(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            self._send_test(request, subscription)


class AttemptInline(ViewOnlyInline):
    model = DeliveryAttempt
    fields = ["number", "at", "status_code", "duration_ms", "succeeded", "error"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_staff


@admin.register(Delivery)
class DeliveryAdmin(SuperuserDeletesMixin, StaffAdmin):
    """The delivery log: read only."""

    list_display = [
        "message_id",
        "event_type",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "event__type"]
    list_select_related = ["event", "subscription"]
    search_fields = ["message_id", "subscription__url"]
    fields = [
        "message_id",
        "event_type",
        "subscription",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields
    inlines = [AttemptInline]

    @admin.display(description=_("event"))
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type
