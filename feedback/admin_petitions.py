"""Admin for petitions, their categories, the calendar exceptions and the handlers.

Staff see only the petitions of the agencies (or units) their ``PetitionStaff`` rows name;
superusers see all. A petition's fields are read-only here: its status changes only through
the form's "change status" fields, which call ``change_petition_status`` (recorded with who
and when), so the admin and the API follow the same workflow and rules.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.errors import DomainError
from feedback.models import (
    OPEN_STATUSES,
    CalendarDay,
    Petition,
    PetitionCategory,
    PetitionEvent,
    PetitionStaff,
)
from feedback.petitions import selectors, services

User = get_user_model()


@admin.register(PetitionCategory)
class PetitionCategoryAdmin(admin.ModelAdmin):
    list_display = ["code", "name_vi", "name_en", "deadline_days", "is_active", "position"]
    list_editable = ["deadline_days", "is_active", "position"]
    search_fields = ["code", "name_vi", "name_en"]


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    list_display = ["day", "is_working_day", "name"]
    list_filter = ["is_working_day"]
    date_hierarchy = "day"


@admin.register(PetitionStaff)
class PetitionStaffAdmin(admin.ModelAdmin):
    list_display = ["user", "unit", "agency"]
    list_filter = ["unit"]
    list_select_related = ["user", "unit", "agency__unit"]
    autocomplete_fields = ["user"]
    search_fields = ["user__username", "user__email"]


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("open past the deadline"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(status__in=OPEN_STATUSES, deadline__lt=timezone.localdate())
        return queryset


class PetitionEventInline(admin.TabularInline):
    model = PetitionEvent
    fields = ["at", "previous_status", "status", "actor", "agency", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TransitionForm(forms.ModelForm):
    """The change form: the petition read-only, plus the fields of one status change."""

    actor: Any = None  # set per request by ``PetitionAdmin.get_form``

    new_status = forms.ChoiceField(label=_("change status to"), required=False)
    agency_code = forms.ChoiceField(label=_("agency"), required=False)
    assign_to = forms.ModelChoiceField(User.objects.none(), label=_("assign to"), required=False)
    reply_text = forms.CharField(
        label=_("public reply"), widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    reason = forms.CharField(
        label=_("reason for rejection (public)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )
    note = forms.CharField(
        label=_("internal note"), widget=forms.Textarea(attrs={"rows": 2}), required=False
    )

    class Meta:
        model = Petition
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        petition = self.instance
        allowed = services.TRANSITIONS.get(petition.status, set())
        self.fields["new_status"].choices = [("", "—")] + [
            (value, label) for value, label in Petition.Status.choices if value in allowed
        ]
        agencies = petition.unit.agencies.order_by("code") if petition.unit_id else []
        self.fields["agency_code"].choices = [("", "—")] + [(a.code, str(a)) for a in agencies]
        self.fields["agency_code"].initial = petition.agency.code if petition.agency else ""
        handlers = PetitionStaff.objects.filter(unit_id=petition.unit_id).values("user")
        self.fields["assign_to"].queryset = User.objects.filter(pk__in=handlers, is_active=True)
        self.fields["assign_to"].initial = petition.assignee_id
        self.fields["reply_text"].initial = petition.reply

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("new_status"):
            if self.changed_data:
                raise ValidationError(_("Choose the status to change to."))
            return data
        assignee = data.get("assign_to")
        try:
            self.instance = services.change_petition_status(
                petition_id=self.instance.pk,
                actor=self.actor,
                status=data["new_status"],
                note=data.get("note", ""),
                reply=data.get("reply_text") or None,
                reason=data.get("reason", ""),
                agency_code=data.get("agency_code", ""),
                assignee_id=assignee.pk if assignee else None,
            )
        except ValidationError as problem:
            names = {
                "reply": "reply_text",
                "agency": "agency_code",
                "status": "new_status",
                "assignee": "assign_to",
            }
            for field, messages in problem.message_dict.items():
                name = names.get(field, field)
                self.add_error(name if name in self.fields else None, messages)
        except DomainError as problem:
            self.add_error(None, problem.detail)
        return data


@admin.register(Petition)
class PetitionAdmin(admin.ModelAdmin):
    form = TransitionForm
    list_display = [
        "tracking_code",
        "category",
        "unit",
        "agency",
        "status",
        "deadline",
        "overdue",
        "submitted_at",
    ]
    list_filter = ["status", OverdueFilter, "category", "channel"]
    list_select_related = ["category", "unit", "agency__unit"]
    search_fields = ["tracking_code"]
    date_hierarchy = "submitted_at"
    readonly_fields = [
        "tracking_code",
        "category",
        "unit",
        "agency",
        "status",
        "assignee",
        "deadline",
        "overdue",
        "description",
        "address",
        "lat",
        "long",
        "contact_name",
        "contact_email",
        "contact_phone",
        "contact_consent",
        "channel",
        "submitted_at",
        "updated_at",
        "closed_at",
        "reply",
        "rejection_reason",
        "rating",
        "rated_at",
    ]
    fieldsets = [
        (None, {"fields": readonly_fields}),
        (
            _("Change status"),
            {"fields": ["new_status", "agency_code", "assign_to", "reply_text", "reason", "note"]},
        ),
    ]
    inlines = [PetitionEventInline]

    @admin.display(boolean=True, description=_("overdue"))
    def overdue(self, obj: Petition) -> bool:
        return obj.is_overdue

    def get_queryset(self, request: HttpRequest) -> QuerySet[Petition]:
        return selectors.petitions_visible_to(request.user)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        return type("PetitionTransitionForm", (form,), {"actor": request.user})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # petitions come from citizens, through the form, the API or Open311

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_view_permission(request, obj):
            return False
        visible = selectors.petitions_visible_to(request.user)
        return obj is None or visible.filter(pk=obj.pk).exists()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return super().has_change_permission(request)
        return selectors.can_handle(request.user, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: Petition, form: Any, change: bool) -> None:
        pass  # the form's clean() already made the change through the service

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass
