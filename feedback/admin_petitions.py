"""Admin for petitions, their categories, the calendar exceptions and the handlers.

Staff see only the petitions of the agencies (or units) their ``PetitionStaff`` rows name;
superusers see all. A petition's fields are read-only here: its status changes only through
the form's "change status" fields. The form checks them with ``check_status_change`` (a
refusal is shown with its reason, nothing saved) and ``save_model`` calls
``change_petition_status`` (recorded with who and when), so the admin and the API follow
the same workflow and rules. The history is rendered by the change form's template with
translated labels.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.errors import DomainError
from config.links import public_base_url
from feedback.models import (
    OPEN_STATUSES,
    CalendarDay,
    Petition,
    PetitionCategory,
    PetitionStaff,
)
from feedback.petitions import selectors, services
from surveys.models import Agency, localized

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


class CategoryFilter(admin.RelatedFieldListFilter):
    """The category filter, titled in the admin's language (the field has no label)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = _("category")


class ChannelFilter(admin.ChoicesFieldListFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = _("channel")


class TransitionForm(forms.ModelForm):
    """The change form: the petition read-only, plus the fields of one status change.

    ``clean()`` only asks ``services.check_status_change`` whether the change is allowed,
    so a refusal is shown on the form with its reason; ``PetitionAdmin.save_model`` makes
    the change through ``services.change_petition_status``, as the API does.
    """

    actor: Any = None  # set per request by ``PetitionAdmin.get_form``

    new_status = forms.ChoiceField(
        label=_("change status to"),
        required=False,
        choices=[("", "—"), *Petition.Status.choices],
    )
    # Not named after a model field: the ModelForm would copy it onto the petition.
    to_agency = forms.ModelChoiceField(
        Agency.objects.none(),
        label=_("agency"),
        required=False,
        empty_label="—",
        help_text=_("Only the unit's coordinators can send a petition to another agency."),
    )
    assign_to = forms.ModelChoiceField(
        User.objects.none(), label=_("assign to"), required=False, empty_label="—"
    )
    reply_text = forms.CharField(
        label=_("public reply"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text=_("Needed to resolve the petition; the citizen reads it on the tracking page."),
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
        # Every status is accepted, so that a stale page gets the service's reason for a
        # refusal; only the allowed next steps are offered.
        self.fields["new_status"].widget.choices = [("", "—")] + [
            (value, label) for value, label in Petition.Status.choices if value in allowed
        ]
        agency = self.fields["to_agency"]
        agency.queryset = selectors.agencies_of_unit(petition.unit_id)
        agency.label_from_instance = lambda a: localized(a, "name")
        agency.initial = petition.agency_id
        self.fields["assign_to"].queryset = selectors.petition_handlers(unit_id=petition.unit_id)
        self.fields["assign_to"].initial = petition.assignee_id
        self.fields["reply_text"].initial = petition.reply

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        if not data.get("new_status"):
            if self.has_changed():
                self.add_error("new_status", _("Choose the status to change to."))
            return data
        try:
            services.check_status_change(
                petition=self.instance, actor=self.actor, **self.change_arguments()
            )
        except (ValidationError, DomainError) as problem:
            self.add_refusal(problem)
        return data

    def change_arguments(self) -> dict[str, Any]:
        """The validated fields as ``change_petition_status`` takes them."""
        data = self.cleaned_data
        agency, assignee = data.get("to_agency"), data.get("assign_to")
        return {
            "status": data["new_status"],
            "note": data.get("note", ""),
            "reply": data.get("reply_text") or None,
            "reason": data.get("reason", ""),
            "agency_id": agency.pk if agency else None,
            "assignee_id": assignee.pk if assignee else None,
        }

    def add_refusal(self, problem: ValidationError | DomainError) -> None:
        """Put the service's reasons on the fields they name (or on top of the form)."""
        domain = isinstance(problem, DomainError)
        if domain:
            on_fields, general = problem.fields, [problem.detail]
        elif hasattr(problem, "error_dict"):
            on_fields, general = problem.message_dict, []
        else:
            on_fields, general = {}, list(problem.messages)
        placed = False
        for field, texts in on_fields.items():
            name = FORM_FIELDS.get(field, field)
            if name in self.fields:
                self.add_error(name, texts)
                placed = True
            elif not domain:
                general.extend(texts)
        if general and not (placed and domain):  # a domain error's detail repeats its field's
            self.add_error(None, general)


# Names of the service's fields on the form.
FORM_FIELDS = {
    "reply": "reply_text",
    "status": "new_status",
    "agency": "to_agency",
    "assignee": "assign_to",
}


@admin.register(Petition)
class PetitionAdmin(admin.ModelAdmin):
    form = TransitionForm
    change_form_template = "admin/feedback/petition/change_form.html"
    list_display = [
        "tracking_code",
        "category_name",
        "unit_name",
        "agency_name",
        "status",
        "deadline",
        "overdue",
        "submitted_at",
    ]
    list_filter = [
        "status",
        OverdueFilter,
        ("category", CategoryFilter),
        ("channel", ChannelFilter),
    ]
    list_select_related = ["category", "unit", "agency__unit"]
    search_fields = ["tracking_code"]
    date_hierarchy = "submitted_at"
    readonly_fields = [
        "tracking_code",
        "category_name",
        "unit_name",
        "agency_name",
        "status",
        "assignee_name",
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
            {"fields": ["new_status", "to_agency", "assign_to", "reply_text", "reason", "note"]},
        ),
    ]

    @admin.display(boolean=True, description=_("overdue"))
    def overdue(self, obj: Petition) -> bool:
        return obj.is_overdue

    @admin.display(description=_("category"), ordering="category__position")
    def category_name(self, obj: Petition) -> str:
        return localized(obj.category, "name")

    @admin.display(description=_("province or city"), ordering="unit__name")
    def unit_name(self, obj: Petition) -> str:
        return obj.unit.name

    @admin.display(description=_("agency"), ordering="agency__name_vi")
    def agency_name(self, obj: Petition) -> str:
        return localized(obj.agency, "name") if obj.agency else "—"

    @admin.display(description=_("assignee"))
    def assignee_name(self, obj: Petition) -> str:
        # Not a link to the account: handlers may not open the user admin.
        return obj.assignee.get_username() if obj.assignee else "—"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Petition]:
        return selectors.petitions_visible_to(request.user)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        return type("PetitionTransitionForm", (form,), {"actor": request.user})

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None:
            context["petition_history"] = [
                {
                    "at": event.at,
                    "previous": Petition.Status(event.previous_status).label
                    if event.previous_status
                    else "",
                    "status": Petition.Status(event.status).label,
                    "actor": event.actor.get_username() if event.actor else "",
                    "agency": localized(event.agency, "name") if event.agency else "",
                    "note": event.note,
                }
                for event in selectors.petition_history(petition_id=obj.pk)
            ]
            context["petition_closed"] = obj.is_closed
        return super().render_change_form(request, context, add, change, form_url, obj)

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
        if not form.cleaned_data.get("new_status"):
            return
        try:
            form.instance = services.change_petition_status(
                petition_id=obj.pk,
                actor=request.user,
                link_base=public_base_url(request),
                **form.change_arguments(),
            )
        except (ValidationError, DomainError) as problem:
            # Changed by someone else since the form was checked: nothing is saved.
            detail = problem.detail if isinstance(problem, DomainError) else problem.messages
            request.petition_refusal = " ".join([detail] if isinstance(detail, str) else detail)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # a petition has no inlines; its history is written by the service

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> str:
        status = form.cleaned_data.get("new_status")
        if not status or getattr(request, "petition_refusal", ""):
            return ""
        return gettext("Status changed to “%(status)s”.") % {
            "status": Petition.Status(status).label
        }

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if message:  # only a status change is a change; the history records it too
            return super().log_change(request, obj, message)
        return None

    def response_change(self, request: HttpRequest, obj: Petition) -> HttpResponse:
        refusal = getattr(request, "petition_refusal", "")
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)
