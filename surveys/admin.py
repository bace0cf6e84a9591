"""Admin for the survey frame and questionnaires.

Versions are edited with nested inlines (section → question → choice). A version that is
not a draft is shown read-only; "Start a new draft" copies it. Publishing checks the whole
version and lists every problem as a message instead of failing.
"""

from __future__ import annotations

from typing import Any

import nested_admin
import nested_admin.formsets
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from surveys import selectors, services
from surveys.models import (
    Agency,
    Choice,
    Indicator,
    PolicyGroup,
    Question,
    Questionnaire,
    QuestionnaireVersion,
    Round,
    Section,
    Unit,
    UnitLineage,
)
from surveys.validation import describe_error_key

# --- Survey frame -------------------------------------------------------------------------


class PredecessorInline(admin.TabularInline):
    model = UnitLineage
    fk_name = "successor"
    extra = 0
    autocomplete_fields = ["predecessor"]
    verbose_name = _("predecessor")
    verbose_name_plural = _("predecessors (merged into this unit)")


class AgencyInline(admin.TabularInline):
    model = Agency
    extra = 0
    fields = ["code", "name_vi", "name_en", "kind"]


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "region", "valid_from", "valid_to"]
    list_filter = ["kind", "region", ("valid_to", admin.EmptyFieldListFilter)]
    search_fields = ["code", "name"]
    inlines = [PredecessorInline, AgencyInline]


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["code", "name_vi", "unit", "kind"]
    list_filter = ["kind"]
    list_select_related = ["unit"]
    search_fields = ["code", "name_vi", "name_en", "unit__name"]
    autocomplete_fields = ["unit"]


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["code", "name_vi", "version", "opens_at", "closes_at", "unit_count"]
    list_select_related = ["version__questionnaire"]
    search_fields = ["code", "name_vi", "name_en"]
    filter_horizontal = ["units"]
    date_hierarchy = "opens_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Round]:
        return super().get_queryset(request).annotate(unit_count=Count("units"))

    @admin.display(description=_("units"), ordering="unit_count")
    def unit_count(self, obj: Round) -> int:
        return obj.unit_count  # type: ignore[attr-defined]


# --- Questionnaires -----------------------------------------------------------------------


class VersionScopedInlineMixin:
    """Limit foreign-key choices of an inline to the version being edited."""

    scoped_fields: dict[str, Any] = {}

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        model = self.scoped_fields.get(db_field.name)
        if model is not None:
            version_id = getattr(request, "_editing_version_id", None)
            kwargs["queryset"] = model.objects.filter(version_id=version_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


class FrozenUnlessDraftMixin:
    """Content of a version can be changed only while the version is a draft."""

    def _editable(self, obj: Any) -> bool:
        version = obj if isinstance(obj, QuestionnaireVersion) else getattr(obj, "version", None)
        return version is None or version.is_editable

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class FrozenInlineMixin(FrozenUnlessDraftMixin):
    """An inline's ``obj`` is its parent: nothing can be added under a frozen version.

    Only inlines take ``obj`` in ``has_add_permission``; a model admin's takes none.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)  # type: ignore[misc]


class ChoiceInline(FrozenInlineMixin, nested_admin.NestedTabularInline):
    model = Choice
    extra = 0
    fields = ["position", "code", "label_vi", "label_en"]
    sortable_field_name = "position"


class QuestionFormSet(nested_admin.formsets.NestedInlineFormSet):
    """Refuses two questions of one section with the same code, on the forms themselves."""

    def clean(self) -> None:
        super().clean()
        seen: dict[str, forms.Form] = {}
        for form in self.forms:
            if not form.has_changed() and not form.instance.pk:
                continue
            data = getattr(form, "cleaned_data", None) or {}
            code = data.get("code")
            if not code or data.get("DELETE"):
                continue
            if code in seen:
                form.add_error(
                    "code", _("Two questions here have the code %(code)s.") % {"code": code}
                )
            seen[code] = form


class QuestionInline(VersionScopedInlineMixin, FrozenInlineMixin, nested_admin.NestedStackedInline):
    model = Question
    formset = QuestionFormSet
    extra = 0
    inlines = [ChoiceInline]
    sortable_field_name = "position"
    scoped_fields = {"show_if_question": Question, "indicator": Indicator}
    fieldsets = [
        (None, {"fields": [("code", "type", "required", "position"), ("label_vi", "label_en")]}),
        (
            _("Help and bounds"),
            {"fields": [("help_vi", "help_en"), ("min_value", "max_value", "max_length")]},
        ),
        (_("Display condition"), {"fields": [("show_if_question", "show_if_values")]}),
        (
            _("Scoring"),
            {
                "fields": [
                    ("indicator", "satisfied_values", "excluded_from_indices", "personal_data")
                ]
            },
        ),
    ]


class SectionInline(FrozenInlineMixin, nested_admin.NestedStackedInline):
    model = Section
    extra = 0
    inlines = [QuestionInline]
    sortable_field_name = "position"
    fields = [("code", "position"), ("title_vi", "title_en"), ("intro_vi", "intro_en")]


class PolicyGroupInline(FrozenInlineMixin, nested_admin.NestedTabularInline):
    model = PolicyGroup
    extra = 0
    fields = ["position", "code", "name_vi", "name_en"]
    classes = ["collapse"]


class IndicatorInline(
    VersionScopedInlineMixin, FrozenInlineMixin, nested_admin.NestedTabularInline
):
    model = Indicator
    extra = 0
    fields = [
        "position",
        "code",
        "parent",
        "kind",
        "name_vi",
        "name_en",
        "aggregation",
        "weight",
        "policy_group",
    ]
    scoped_fields = {"parent": Indicator, "policy_group": PolicyGroup}
    classes = ["collapse"]


@admin.register(Questionnaire)
class QuestionnaireAdmin(admin.ModelAdmin):
    list_display = ["code", "title_vi", "title_en", "version_count"]
    search_fields = ["code", "title_vi", "title_en"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Questionnaire]:
        return super().get_queryset(request).annotate(version_count=Count("versions"))

    @admin.display(description=_("versions"), ordering="version_count")
    def version_count(self, obj: Questionnaire) -> int:
        return obj.version_count  # type: ignore[attr-defined]


@admin.register(QuestionnaireVersion)
class QuestionnaireVersionAdmin(nested_admin.NestedModelAdmin):
    list_display = ["__str__", "questionnaire", "number", "status", "published_at", "preview_link"]
    list_filter = ["status", "questionnaire"]
    list_select_related = ["questionnaire"]
    readonly_fields = ["status", "based_on", "created_at", "published_at", "retired_at"]
    fields = [
        ("questionnaire", "number", "label"),
        ("status", "based_on"),
        ("created_at", "published_at", "retired_at"),
    ]
    inlines = [PolicyGroupInline, IndicatorInline, SectionInline]
    actions = ["publish_selected", "retire_selected", "start_draft_from_selected"]
    change_form_template = "admin/surveys/questionnaireversion/change_form.html"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The forms catch duplicate codes they can see; two sections given the same new
        # question code in one save can only be caught by the database. Then nothing is
        # saved and the editor is told why, instead of getting a server error.
        try:
            with transaction.atomic():
                return super().changeform_view(request, object_id, form_url, extra_context)
        except IntegrityError:
            self.message_user(
                request,
                _(
                    "Nothing was saved: two sections, questions, choices or indicators of "
                    "this version would share a code. Codes must be unique within a version."
                ),
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        request._editing_version_id = obj.pk if obj is not None else None  # type: ignore[attr-defined]
        return obj

    def get_urls(self) -> list[Any]:
        urls = [
            path(
                "<int:version_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="surveys_questionnaireversion_preview",
            ),
            path(
                "<int:version_id>/new-draft/",
                self.admin_site.admin_view(require_POST(self.new_draft_view)),
                name="surveys_questionnaireversion_new_draft",
            ),
            path(
                "<int:version_id>/publish/",
                self.admin_site.admin_view(require_POST(self.publish_view)),
                name="surveys_questionnaireversion_publish",
            ),
        ]
        return urls + super().get_urls()

    @admin.display(description=_("preview"))
    def preview_link(self, obj: QuestionnaireVersion) -> str:
        url = reverse("admin:surveys_questionnaireversion_preview", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("preview"))

    # Views ----------------------------------------------------------------------------

    def preview_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = get_object_or_404(QuestionnaireVersion, pk=version_id)
        if not self.has_view_or_change_permission(request, version):
            raise PermissionDenied
        language = request.GET.get("language")
        if language not in dict(settings.LANGUAGES):
            language = translation.get_language()
        with translation.override(language):
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "version": version,
                "sections": selectors.version_sections(version_id=version.pk),
                "title": _("Preview of %(version)s") % {"version": version},
            }
            return render(request, "admin/surveys/questionnaireversion/preview.html", context)

    def new_draft_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = get_object_or_404(QuestionnaireVersion, pk=version_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        draft = services.start_draft(version_id=version.pk)
        self.message_user(request, _("New draft %(draft)s created.") % {"draft": draft})
        return HttpResponseRedirect(
            reverse("admin:surveys_questionnaireversion_change", args=[draft.pk])
        )

    def publish_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = get_object_or_404(QuestionnaireVersion, pk=version_id)
        if not self.has_change_permission(request, version):
            raise PermissionDenied
        self._publish(request, version)
        return HttpResponseRedirect(
            reverse("admin:surveys_questionnaireversion_change", args=[version.pk])
        )

    # Actions --------------------------------------------------------------------------

    def _publish(self, request: HttpRequest, version: QuestionnaireVersion) -> bool:
        try:
            services.publish_version(version_id=version.pk)
        except ValidationError as exc:
            problems = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
            for where, messages_ in problems.items():
                prefix = f"{version}: {describe_error_key(where)}: " if where else f"{version}: "
                for message in messages_:
                    self.message_user(request, prefix + message, messages.ERROR)
            return False
        self.message_user(request, _("%(v)s published.") % {"v": version}, messages.SUCCESS)
        return True

    @admin.action(description=_("Publish selected drafts"), permissions=["change"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for version in queryset:
            self._publish(request, version)

    @admin.action(description=_("Retire selected published versions"), permissions=["change"])
    def retire_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for version in queryset:
            try:
                services.retire_version(version_id=version.pk)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{version}: {' '.join(exc.messages)}", messages.ERROR)
        if done:
            self.message_user(
                request,
                ngettext("%d version retired.", "%d versions retired.", done) % done,
                messages.SUCCESS,
            )

    @admin.action(description=_("Start a new draft from selected versions"), permissions=["add"])
    def start_draft_from_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for version in queryset:
            draft = services.start_draft(version_id=version.pk)
            self.message_user(
                request, _("New draft %(draft)s created.") % {"draft": draft}, messages.SUCCESS
            )


# Flat admins, for search and direct links (the version page is the main editor).


@admin.register(Question)
class QuestionAdmin(FrozenUnlessDraftMixin, admin.ModelAdmin):
    list_display = ["code", "version", "section", "type", "required", "indicator"]
    list_filter = ["type", "required", "excluded_from_indices", "version__questionnaire"]
    list_select_related = ["version__questionnaire", "section", "indicator"]
    search_fields = ["code", "label_vi", "label_en"]
    readonly_fields = ["version"]
    inlines = []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in {"section", "show_if_question", "indicator"}:
            kwargs["queryset"] = db_field.related_model.objects.filter(
                version__status=QuestionnaireVersion.Status.DRAFT
            ).select_related("version__questionnaire")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Indicator)
class IndicatorAdmin(FrozenUnlessDraftMixin, admin.ModelAdmin):
    list_display = ["code", "name_vi", "kind", "aggregation", "parent", "version"]
    list_filter = ["kind", "aggregation", "version__questionnaire"]
    list_select_related = ["parent", "version__questionnaire"]
    search_fields = ["code", "name_vi", "name_en"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in {"version", "parent", "policy_group"}:
            model = db_field.related_model
            filters = (
                {"status": QuestionnaireVersion.Status.DRAFT}
                if model is QuestionnaireVersion
                else {"version__status": QuestionnaireVersion.Status.DRAFT}
            )
            kwargs["queryset"] = model.objects.filter(**filters)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
