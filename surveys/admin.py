"""Admin for the survey frame and questionnaires.

A version is edited on three small pages (version → section → question with its choices),
see "Questionnaires" below. A version that is not a draft is shown read-only; "Start a new
draft" copies it. Publishing checks the whole version and lists every problem as a message
instead of failing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from config.admin_mixins import Page, ToolLinkMixin, ToolPagesMixin
from surveys import scoping, services
from surveys.models import (
    Agency,
    Choice,
    Indicator,
    PolicyGroup,
    ProvinceStaff,
    Question,
    Questionnaire,
    QuestionnaireVersion,
    Round,
    Section,
    StratumPopulation,
    Unit,
    UnitLineage,
    local_round_units_message,
)
from surveys.validation import (
    PlannedQuestion,
    describe_error_key,
    misplaced_conditions,
    ranked,
)
from surveys.xlsform import MAX_FILE_BYTES as XLSFORM_MAX_FILE_BYTES
from surveys.xlsform import XlsformRefused, import_xlsform

logger = logging.getLogger(__name__)

# --- Scoping ----------------------------------------------------------------------------------


class ProvinceScopedMixin:
    """Rows, and the choices of every foreign key and many-to-many field, limited to the
    user's scope (``surveys.scoping``): province staff see and pick only their province's.

    ``owner_path`` leads from the model to its owner unit. Choices are narrowed after the
    field is built, so a forged id in a POST fails the field's own check ("Select a valid
    choice") like any unknown id. Downstream apps use this mixin for their admins too.
    """

    owner_path = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        if not self.owner_path:
            return queryset
        return scoping.limit(queryset, request.user, self.owner_path)

    def scoped_choices(self, db_field: Any, queryset: QuerySet, request: HttpRequest) -> QuerySet:
        return scoping.limit_choices(queryset, request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        if field is not None and hasattr(field, "queryset"):
            field.queryset = self.scoped_choices(db_field, field.queryset, request)
        return field

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        if field is not None and hasattr(field, "queryset"):
            field.queryset = self.scoped_choices(db_field, field.queryset, request)
        return field


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter on a related model offering only what the user's scope reaches (the
    stock filter lists every row of the related model, other provinces' included)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        ordering = self.field_admin_ordering(field, request, model_admin) or [
            *field.related_model._meta.ordering
        ]
        related = scoping.limit_choices(field.related_model._default_manager.all(), request.user)
        if ordering:
            related = related.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in related]


class OwnerProvinceFormMixin:
    """Province staff's new questionnaires and rounds belong to their province, whatever is
    posted: the owner is set on the instance before the form is validated."""

    owner_unit_id: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[misc]
        if self.owner_unit_id is not None:
            self.instance.owner_unit_id = self.owner_unit_id  # type: ignore[attr-defined]


def owner_form(form: type, user: Any) -> type:
    """``form`` with the owner of what it saves fixed to the province staff's province."""
    unit_id = scoping.scope_of(user).unit_id
    if scoping.is_national(user):
        return form
    return type(form.__name__, (OwnerProvinceFormMixin, form), {"owner_unit_id": unit_id or 0})


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
class UnitAdmin(ProvinceScopedMixin, admin.ModelAdmin):
    owner_path = "pk"
    list_display = ["code", "name", "kind", "region", "valid_from", "valid_to"]
    list_filter = ["kind", "region", ("valid_to", admin.EmptyFieldListFilter)]
    search_fields = ["code", "name"]
    inlines = [PredecessorInline, AgencyInline]


@admin.register(Agency)
class AgencyAdmin(ProvinceScopedMixin, admin.ModelAdmin):
    owner_path = "unit"
    list_display = ["code", "name_vi", "unit", "kind"]
    list_filter = ["kind"]
    list_select_related = ["unit"]
    search_fields = ["code", "name_vi", "name_en", "unit__name"]
    autocomplete_fields = ["unit"]


@admin.register(ProvinceStaff)
class ProvinceStaffAdmin(admin.ModelAdmin):
    """Who works for which province; saving one also gives the account the group
    "Province staff" and admin access (``scoping.appoint``). National staff only."""

    list_display = ["user", "unit"]
    list_select_related = ["user", "unit"]
    search_fields = ["user__username", "unit__code", "unit__name"]
    autocomplete_fields = ["unit"]
    raw_id_fields = ["user"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return scoping.is_national(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scoping.is_national(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return scoping.is_national(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scoping.is_national(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scoping.is_national(request.user) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ProvinceStaff, form: Any, change: bool) -> None:
        saved = scoping.appoint(user=obj.user, unit=obj.unit)
        obj.pk = saved.pk


class StratumPopulationInline(ProvinceScopedMixin, admin.TabularInline):
    model = StratumPopulation
    fields = ["stratum", "unit", "population"]
    autocomplete_fields = ["unit"]
    extra = 0


class RoundForm(forms.ModelForm):
    """A local round covers its owner province only (checked again by the model and by
    ``scoping.guard_round_units`` whatever writes the units)."""

    class Meta:
        model = Round
        fields = [  # the admin passes the fields it shows; this is the default
            "code",
            "name_vi",
            "name_en",
            "period_start",
            "period_end",
            "opens_at",
            "closes_at",
            "version",
            "units",
            "owner_unit",
            "allow_open_link",
            "publish_agency_results",
            "variance_method",
            "national_value",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        owner = data.get("owner_unit", self.instance.owner_unit)
        units = data.get("units")
        if owner is not None and units is not None and any(u.pk != owner.pk for u in units):
            self.add_error("units", local_round_units_message())
        return data


@admin.register(Round)
class RoundAdmin(ProvinceScopedMixin, admin.ModelAdmin):
    form = RoundForm
    owner_path = "owner_unit"
    inlines = [StratumPopulationInline]
    list_display = [
        "code",
        "name_vi",
        "version",
        "opens_at",
        "closes_at",
        "unit_count",
        "owner_unit",
    ]
    list_filter = [("owner_unit", admin.EmptyFieldListFilter)]
    list_select_related = ["version__questionnaire", "owner_unit"]
    search_fields = ["code", "name_vi", "name_en"]
    filter_horizontal = ["units"]
    date_hierarchy = "opens_at"
    radio_fields = {"variance_method": admin.VERTICAL}  # Taylor, or jackknife replicates

    def get_queryset(self, request: HttpRequest) -> QuerySet[Round]:
        return super().get_queryset(request).annotate(unit_count=Count("units"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if not scoping.is_national(request.user) or obj is not None:
            readonly.append("owner_unit")  # a round does not change hands
        return readonly

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        return owner_form(super().get_form(request, obj, change, **kwargs), request.user)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        if (unit_id := scoping.scope_of(request.user).unit_id) is not None:
            initial.setdefault("units", [unit_id])
        return initial

    def scoped_choices(self, db_field: Any, queryset: QuerySet, request: HttpRequest) -> QuerySet:
        if db_field.name == "version":  # the province's own versions, or national ones
            return scoping.limit(queryset, request.user, "questionnaire__owner_unit", shared=True)
        return super().scoped_choices(db_field, queryset, request)

    @admin.display(description=_("units"), ordering="unit_count")
    def unit_count(self, obj: Round) -> int:
        return obj.unit_count  # type: ignore[attr-defined]


# --- Questionnaires -----------------------------------------------------------------------
#
# The editor has three levels, each a small page, so that a version of SIPAS size (75
# questions, hundreds of choices) opens and saves in well under two seconds:
#   version page  – version fields, policy groups, indicators, and its sections as rows
#                   (reorder by number or by dragging, add, delete, open one);
#   section page  – the section's texts and its questions as rows (reorder, edit code,
#                   type, label, delete, open one; "add a question here");
#   question page – one question with all its fields, display condition and choices.
# Positions count from 1 within their parent. A page plans the order its save will give
# (``surveys.validation.ranked``), checks display conditions against that order before
# writing (``misplaced_conditions``), and numbers the siblings 1..n after saving
# (``surveys.services.order_*``).


class FrozenUnlessDraftMixin:
    """Content of a version can be changed only while the version is a draft."""

    def _editable(self, obj: Any) -> bool:
        if isinstance(obj, QuestionnaireVersion):
            return obj.is_editable
        if isinstance(obj, Choice):
            obj = obj.question
        version = getattr(obj, "version", None)
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


class SavesOrExplainsMixin:
    """A save that two rows would make break a unique code is refused with a message.

    The forms catch duplicate codes they can see; the database catches the rest (two rows
    of one save given the same new code). Then nothing is saved, and the editor is told
    why instead of getting a server error.
    """

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            with transaction.atomic():
                return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]
        except IntegrityError as exc:
            logger.warning("Admin save refused by the database: %s", exc)
            self.message_user(  # type: ignore[attr-defined]
                request,
                _(
                    "Nothing was saved: two sections, questions, choices or indicators of "
                    "this version would share a code. Codes must be unique within a version."
                ),
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())


def optional_position(form: type[forms.ModelForm], help_text: str = "") -> None:
    """An empty position means "last" (a read-only page has no position field)."""
    field = form.base_fields.get("position")
    if field is not None:
        field.required = False
        field.help_text = help_text or field.help_text


class PositionedFormSet(forms.BaseInlineFormSet):
    """Rows with a ``position``: plans their order (1..n) and applies it after saving.

    ``planned`` lists the rows kept, in their new order, as the row's id or, for a row
    being added, ``("new", index of its form)``.
    """

    planned: list[Any]

    def row_key(self, index: int, form: forms.ModelForm) -> Any:
        return form.instance.pk if form.instance.pk is not None else ("new", index)

    def wanted(self) -> list[tuple[Any, int | None, bool, forms.ModelForm]]:
        """``(key, wanted position, moved, form)`` of the rows kept, in their current order."""
        rows = []
        for index, form in enumerate(self.forms):
            if not hasattr(form, "cleaned_data") or self._should_delete_form(form):
                continue
            if form.instance.pk is None and not form.has_changed():
                continue  # an extra row left empty
            moved = form.instance.pk is None or "position" in form.changed_data
            rows.append((self.row_key(index, form), form.cleaned_data.get("position"), moved, form))
        return rows

    def removed(self) -> list[int]:
        return [
            form.instance.pk
            for form in self.forms
            if form.instance.pk is not None
            and hasattr(form, "cleaned_data")
            and self._should_delete_form(form)
        ]

    def clean(self) -> None:
        super().clean()
        rows = self.wanted()
        self.planned = ranked([row[:3] for row in rows])
        # Rows are saved with their final number (an empty one means "last"); rows the
        # save leaves alone are numbered afterwards by ``surveys.services``.
        final = {key: n for n, key in enumerate(self.planned, start=1)}
        for key, _position, _moved, form in rows:
            form.instance.position = final[key]

    def planned_ids(self) -> list[int]:
        """The planned order as ids, once saved (new rows have one by then)."""
        ids = []
        for key in self.planned:
            if isinstance(key, tuple):
                key = self.forms[key[1]].instance.pk
            if key is not None:
                ids.append(key)
        return ids


class UniqueCodeFormSet(PositionedFormSet):
    """Refuses two rows of one formset with the same code, on the rows themselves."""

    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for _key, _position, _moved, form in self.wanted():
            code = form.cleaned_data.get("code")
            if code in seen:
                form.add_error("code", _("Two rows here have the code %(code)s.") % {"code": code})
            seen.add(code)


class DragHandleMedia:
    """Rows of the inline can be reordered by dragging (the numbers follow) or by number."""

    classes = ["reorderable"]

    class Media:
        js = ["surveys/admin/reorder.js"]
        css = {"all": ["surveys/admin/editor.css"]}


# Version page ---------------------------------------------------------------------------


class SectionFormSet(UniqueCodeFormSet):
    """Sections of a version: moving or deleting one must leave every condition earlier."""

    def clean(self) -> None:
        super().clean()
        if self.instance.pk is None or any(form.errors for form in self.forms):
            return
        problems = misplaced_conditions(
            version_id=self.instance.pk,
            sections={key: (position, moved) for key, position, moved, _f in self.wanted()},
            removed_sections=self.removed(),
        )
        if problems:
            raise ValidationError(
                [f"{code}: {message}" for code, message in sorted(problems.values())]
            )


class SectionInline(DragHandleMedia, FrozenInlineMixin, admin.TabularInline):
    model = Section
    formset = SectionFormSet
    extra = 0
    fields = ["position", "code", "title_vi", "title_en", "questions_link"]
    readonly_fields = ["questions_link"]
    verbose_name_plural = _("sections (open one to edit its questions)")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        optional_position(formset.form)
        return formset

    def get_queryset(self, request: HttpRequest) -> QuerySet[Section]:
        return super().get_queryset(request).annotate(question_count=Count("questions"))

    @admin.display(description=_("questions"))
    def questions_link(self, obj: Section) -> str:
        if obj.pk is None:
            return ""
        count = getattr(obj, "question_count", None)
        if count is None:
            count = obj.questions.count()
        url = reverse("admin:surveys_section_change", args=[obj.pk])
        label = ngettext("%d question: edit", "%d questions: edit", count) % count
        return format_html('<a href="{}">{}</a>', url, label)


class PolicyGroupInline(ProvinceScopedMixin, FrozenInlineMixin, admin.TabularInline):
    model = PolicyGroup
    extra = 0
    fields = ["position", "code", "name_vi", "name_en"]
    classes = ["collapse"]


@admin.register(Questionnaire)
class QuestionnaireAdmin(ProvinceScopedMixin, ToolLinkMixin, ToolPagesMixin, admin.ModelAdmin):
    owner_path = "owner_unit"
    list_display = ["code", "title_vi", "title_en", "version_count", "owner_unit"]
    list_select_related = ["owner_unit"]
    search_fields = ["code", "title_vi", "title_en"]
    own_pages = (Page("copy/", "copy_view", "surveys_questionnaire_copy"),)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if not scoping.is_national(request.user) or obj is not None:
            readonly.append("owner_unit")
        return readonly

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        return owner_form(super().get_form(request, obj, change, **kwargs), request.user)

    def tool_link(self, request: HttpRequest) -> tuple[str, Any] | None:
        copy = (reverse("admin:surveys_questionnaire_copy"), _("New questionnaire from a copy"))
        return copy if self._may_copy(request) else None

    def _may_copy(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request) and request.user.has_perm(
            "surveys.add_questionnaireversion"
        )

    def copy_view(self, request: HttpRequest) -> HttpResponse:
        """A new questionnaire, owned by the province of province staff, whose first draft
        copies a published version (SIPAS by default)."""
        if not self._may_copy(request):
            raise PermissionDenied
        form = self.posted_form(request, CopyQuestionnaireForm, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            owner = data.get("owner_unit")
            if not scoping.is_national(request.user):
                owner = scoping.province_of(request.user)
            draft = services.copy_questionnaire(
                version_id=data["source"].pk,
                code=data["code"],
                title_vi=data["title_vi"],
                title_en=data["title_en"],
                owner_unit_id=owner.pk if owner is not None else None,
            )
            self.message_user(
                request, _("New draft %(draft)s created.") % {"draft": draft}, messages.SUCCESS
            )
            return HttpResponseRedirect(
                reverse("admin:surveys_questionnaireversion_change", args=[draft.pk])
            )
        return self.tool_page(
            request,
            "admin/surveys/questionnaire/copy.html",
            form=form,
            title=_("New questionnaire from a copy"),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Questionnaire]:
        return super().get_queryset(request).annotate(version_count=Count("versions"))

    @admin.display(description=_("versions"), ordering="version_count")
    def version_count(self, obj: Questionnaire) -> int:
        return obj.version_count  # type: ignore[attr-defined]


@admin.register(QuestionnaireVersion)
class QuestionnaireVersionAdmin(
    ProvinceScopedMixin, SavesOrExplainsMixin, ToolLinkMixin, ToolPagesMixin, admin.ModelAdmin
):
    owner_path = "questionnaire__owner_unit"
    list_display = ["__str__", "questionnaire", "number", "status", "published_at", "preview_link"]
    list_filter = ["status", ("questionnaire", ScopedRelatedFilter)]
    list_select_related = ["questionnaire"]
    readonly_fields = ["status", "based_on", "created_at", "published_at", "retired_at"]
    fields = [
        ("questionnaire", "number", "label"),
        ("status", "based_on"),
        ("created_at", "published_at", "retired_at"),
    ]
    inlines = [SectionInline, PolicyGroupInline]
    actions = ["publish_selected", "retire_selected", "start_draft_from_selected"]
    change_form_template = "admin/surveys/questionnaireversion/change_form.html"
    own_pages = (
        Page(
            "<int:version_id>/new-draft/",
            "new_draft_view",
            "surveys_questionnaireversion_new_draft",
            post_only=True,
        ),
        Page(
            "<int:version_id>/publish/",
            "publish_view",
            "surveys_questionnaireversion_publish",
            post_only=True,
        ),
        Page(
            "import-xlsform/", "import_xlsform_view", "surveys_questionnaireversion_import_xlsform"
        ),
    )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        # The indicator tree is listed, not edited, here: each indicator opens on its own
        # page. Editable rows would repeat the tree in a select on every row (68 × 68
        # options for SIPAS) and validate every row on each save, seconds in all.
        version = kwargs.get("obj")
        if version is not None:
            context["indicators"] = version.indicators.select_related(
                "parent", "policy_group"
            ).order_by("position", "code")
        return super().render_change_form(request, context, *args, **kwargs)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if isinstance(formset, SectionFormSet):
            services.order_sections(version_id=form.instance.pk, section_ids=formset.planned_ids())

    def tool_link(self, request: HttpRequest) -> tuple[str, Any] | None:
        url = reverse("admin:surveys_questionnaireversion_import_xlsform")
        return (url, _("Import an XLSForm")) if self._may_import(request) else None

    def _may_import(self, request: HttpRequest) -> bool:
        # An XLSForm makes a national questionnaire: national staff only.
        return (
            scoping.is_national(request.user)
            and self.has_add_permission(request)
            and request.user.has_perm("surveys.add_questionnaire")
        )

    @admin.display(description=_("preview"))
    def preview_link(self, obj: QuestionnaireVersion) -> str:
        # The public form's preview (feedback app), linked by name: surveys imports no feedback.
        url = reverse("feedback:version_preview", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("preview"))

    # Views ----------------------------------------------------------------------------

    def new_draft_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = get_object_or_404(self.get_queryset(request), pk=version_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        draft = services.start_draft(version_id=version.pk)
        self.message_user(request, _("New draft %(draft)s created.") % {"draft": draft})
        return HttpResponseRedirect(
            reverse("admin:surveys_questionnaireversion_change", args=[draft.pk])
        )

    def publish_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = get_object_or_404(self.get_queryset(request), pk=version_id)
        if not self.has_change_permission(request, version):
            raise PermissionDenied
        self._publish(request, version)
        return HttpResponseRedirect(
            reverse("admin:surveys_questionnaireversion_change", args=[version.pk])
        )

    def import_xlsform_view(self, request: HttpRequest) -> HttpResponse:
        """Upload an XLSForm: a new draft, or every problem listed by sheet, row and column."""
        if not self._may_import(request):
            raise PermissionDenied
        problems: list[Any] = []
        form = XlsformUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                imported = import_xlsform(upload.read())
            except XlsformRefused as refused:
                problems = refused.problems
            else:
                self.message_user(
                    request,
                    _("%(v)s imported as a new draft.") % {"v": imported.version},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:surveys_questionnaireversion_change", args=[imported.version.pk])
                )
        return self.tool_page(
            request,
            "admin/surveys/questionnaireversion/import_xlsform.html",
            title=_("Import an XLSForm"),
            form=form,
            problems=problems,
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


class CopyQuestionnaireForm(forms.Form):
    """A new questionnaire whose first draft copies a published version."""

    source = forms.ModelChoiceField(
        QuestionnaireVersion.objects.none(),
        label=_("copy of"),
        help_text=_("A published version: the built-in SIPAS, or one of your own."),
    )
    code = forms.CharField(
        label=_("code"),
        max_length=Questionnaire._meta.get_field("code").max_length,
        validators=Questionnaire._meta.get_field("code").validators,
    )
    title_vi = forms.CharField(label=_("title (Vietnamese)"), max_length=200)
    title_en = forms.CharField(label=_("title (English)"), max_length=200, required=False)
    owner_unit = forms.ModelChoiceField(
        Unit.objects.all(),
        label=_("owner province"),
        required=False,
        help_text=_("Empty: a national questionnaire."),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        published = scoping.versions_for(user, shared=True).filter(
            status=QuestionnaireVersion.Status.PUBLISHED
        )
        self.fields["source"].queryset = published.order_by("questionnaire__code", "-number")
        sipas = published.filter(questionnaire__code="sipas").first()
        if sipas is not None:
            self.fields["source"].initial = sipas.pk
        if not scoping.is_national(user):
            del self.fields["owner_unit"]  # province staff: their province

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        if Questionnaire.objects.filter(code=code).exists():
            raise ValidationError(_("A questionnaire with this code already exists."))
        return code


class XlsformUploadForm(forms.Form):
    file = forms.FileField(
        label=_("XLSForm file (.xlsx)"),
        help_text=_("Sheets survey, choices and settings; see docs/xlsform.md."),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > XLSFORM_MAX_FILE_BYTES:
            raise ValidationError(
                _("The file is larger than %(n)s MB.") % {"n": XLSFORM_MAX_FILE_BYTES // 2**20}
            )
        return upload


# Section page ---------------------------------------------------------------------------


class OrderCheckedQuestionForm(forms.ModelForm):
    """A question form whose formset (or own ``clean``) checks the order of conditions."""

    def _post_clean(self) -> None:
        self.instance.order_checked_by_form = True
        super()._post_clean()

    def _update_errors(self, errors: ValidationError) -> None:
        # A row shows a few fields: a problem with one it lacks (the bounds a scale needs)
        # is shown for the row, named, instead of failing as Django does for such a field.
        if hasattr(errors, "error_dict"):
            shown: dict[str, list[str]] = {}
            for field, problems in errors.error_dict.items():
                for message in ValidationError(problems).messages:
                    if field in self.fields or field == NON_FIELD_ERRORS:
                        shown.setdefault(field, []).append(message)
                    else:
                        label = capfirst(Question._meta.get_field(field).verbose_name)
                        shown.setdefault(NON_FIELD_ERRORS, []).append(f"{label}: {message}")
            errors = ValidationError(shown)
        super()._update_errors(errors)


class QuestionRowFormSet(UniqueCodeFormSet):
    """Questions of one section as rows: moves and deletes must keep conditions earlier."""

    def clean(self) -> None:
        super().clean()
        section = self.instance
        if section.pk is None or any(form.errors for form in self.forms):
            return
        questions = {
            key: PlannedQuestion(
                code=form.cleaned_data.get("code") or form.instance.code,
                section=section.pk,
                position=position,
                moved=moved,
                condition=form.instance.show_if_question_id,
            )
            for key, position, moved, form in self.wanted()
        }
        problems = misplaced_conditions(
            version_id=section.version_id, questions=questions, removed_questions=self.removed()
        )
        forms_by_key = {key: form for key, _p, _m, form in self.wanted()}
        unplaced = []
        for key, (code, message) in sorted(problems.items(), key=lambda item: item[1]):
            if key in forms_by_key:
                forms_by_key[key].add_error("position", message)
            else:
                unplaced.append(f"{code}: {message}")
        if unplaced:
            raise ValidationError(unplaced)


class QuestionRowInline(DragHandleMedia, FrozenInlineMixin, admin.TabularInline):
    model = Question
    form = OrderCheckedQuestionForm
    formset = QuestionRowFormSet
    extra = 0
    fields = ["position", "code", "type", "required", "label_vi", "condition"]
    readonly_fields = ["condition"]
    show_change_link = True
    verbose_name_plural = _("questions (open one to edit its condition, scoring and choices)")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a question is added on its own page, with its choices

    def get_queryset(self, request: HttpRequest) -> QuerySet[Question]:
        return super().get_queryset(request).select_related("show_if_question", "version")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["widgets"] = {"label_vi": forms.Textarea(attrs={"rows": 2, "cols": 60})}
        formset = super().get_formset(request, obj, **kwargs)
        optional_position(formset.form)
        return formset

    @admin.display(description=_("display condition"))
    def condition(self, obj: Question) -> str:
        if obj.show_if_question_id is None:
            return "–"
        return f"{obj.show_if_question.code} ∈ {json.dumps(obj.show_if_values)}"


@admin.register(Section)
class SectionAdmin(
    ProvinceScopedMixin, SavesOrExplainsMixin, FrozenUnlessDraftMixin, admin.ModelAdmin
):
    """One section of a version and its questions; reached from the version's page."""

    list_display = ["code", "title_vi", "version", "position"]
    list_filter = [("version__questionnaire", ScopedRelatedFilter), "version__status"]
    list_select_related = ["version__questionnaire"]
    search_fields = ["code", "title_vi", "title_en"]
    inlines = [QuestionRowInline]
    change_form_template = "admin/surveys/section/change_form.html"

    owner_path = "version__questionnaire__owner_unit"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False  # not listed on the index: sections are opened from their version

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        head = ["version", "position"] if obj is not None else ["version"]
        return [*head, "code", ("title_vi", "title_en"), ("intro_vi", "intro_en")]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["version", "position"] if obj is not None else []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "version":
            kwargs["queryset"] = QuestionnaireVersion.objects.filter(
                status=QuestionnaireVersion.Status.DRAFT
            ).select_related("questionnaire")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Section, form: Any, change: bool) -> None:
        if not change:  # a new section goes last
            last = Section.objects.filter(version_id=obj.version_id).aggregate(n=Max("position"))
            obj.position = (last["n"] or 0) + 1
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if isinstance(formset, QuestionRowFormSet):
            services.order_questions(
                section_id=form.instance.pk, question_ids=formset.planned_ids()
            )

    def response_post_save_add(self, request: HttpRequest, obj: Section) -> HttpResponse:
        return HttpResponseRedirect(version_url(obj.version_id))

    def response_post_save_change(self, request: HttpRequest, obj: Section) -> HttpResponse:
        return HttpResponseRedirect(version_url(obj.version_id))

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        section = kwargs.get("obj")
        if section is not None:
            siblings = list(
                Section.objects.filter(version_id=section.version_id)
                .order_by("position", "id")
                .only("id", "code", "title_vi", "title_en")
            )
            index = next(i for i, s in enumerate(siblings) if s.pk == section.pk)
            context.update(
                version=section.version,
                previous_section=siblings[index - 1] if index > 0 else None,
                next_section=siblings[index + 1] if index + 1 < len(siblings) else None,
            )
        return super().render_change_form(request, context, *args, **kwargs)


def version_url(version_id: int) -> str:
    return reverse("admin:surveys_questionnaireversion_change", args=[version_id])


def section_url(section_id: int) -> str:
    return reverse("admin:surveys_section_change", args=[section_id])


# Question page --------------------------------------------------------------------------


class ChoiceFormSet(UniqueCodeFormSet):
    """Choices of one question, numbered 1..n in the order shown after a save."""


class ChoiceInline(DragHandleMedia, FrozenInlineMixin, admin.TabularInline):
    model = Choice
    formset = ChoiceFormSet
    fields = ["position", "code", "label_vi", "label_en"]

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 0 if obj is not None else 2  # more rows: "Add another choice"

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        optional_position(formset.form)
        return formset


class QuestionForm(OrderCheckedQuestionForm):
    """One question; its position and condition are checked against the order a save gives."""

    planned_section: list[Any]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        section = data.get("section")
        self.planned_section = []
        if section is None or self.errors:
            return data
        question = self.instance
        key = question.pk if question.pk is not None else "new"
        moved = question.pk is None or bool({"position", "section"} & set(self.changed_data))
        condition = data.get("show_if_question")
        plan = PlannedQuestion(
            code=data.get("code") or question.code,
            section=section.pk,
            position=data.get("position"),
            moved=moved,
            condition=condition.pk if condition is not None else None,
        )
        for other, (code, message) in misplaced_conditions(
            version_id=section.version_id, questions={key: plan}
        ).items():
            if other == key:
                self.add_error("show_if_question", message)
            else:
                self.add_error(
                    "position",
                    _("%(code)s depends on this question and would then come before it.")
                    % {"code": code},
                )
        siblings = (
            Question.objects.filter(section_id=section.pk)
            .exclude(pk=question.pk)
            .order_by("position", "id")
            .values_list("id", "position")
        )
        self.planned_section = ranked(
            [(pk, position, False) for pk, position in siblings] + [(key, plan.position, moved)]
        )
        data["position"] = self.planned_section.index(key) + 1
        return data


@admin.register(Question)
class QuestionAdmin(
    ProvinceScopedMixin, SavesOrExplainsMixin, FrozenUnlessDraftMixin, admin.ModelAdmin
):
    """One question with its display condition, scoring and choices (added here too)."""

    owner_path = "version__questionnaire__owner_unit"
    form = QuestionForm
    list_display = ["code", "version", "section", "type", "required", "indicator"]
    list_filter = [
        "type",
        "required",
        "excluded_from_indices",
        ("version__questionnaire", ScopedRelatedFilter),
    ]
    list_select_related = ["version__questionnaire", "section", "indicator"]
    search_fields = ["code", "label_vi", "label_en"]
    readonly_fields = ["version"]
    inlines = [ChoiceInline]
    change_form_template = "admin/surveys/question/change_form.html"
    fieldsets = [
        (None, {"fields": ["version", ("section", "position"), ("code", "type", "required")]}),
        (None, {"fields": [("label_vi", "label_en")]}),
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

    def _version_id(self, request: HttpRequest, obj: Question | None) -> int | None:
        """The version whose sections, questions and indicators the selects offer."""
        if obj is not None:
            return obj.version_id
        section_id = request.POST.get("section") or request.GET.get("section")
        if section_id and str(section_id).isascii() and str(section_id).isdigit():
            return (
                Section.objects.filter(pk=section_id).values_list("version_id", flat=True).first()
            )
        return None

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        request._editing_version_id = self._version_id(request, obj)  # type: ignore[attr-defined]
        request._editing_question_id = obj.pk if obj is not None else None  # type: ignore[attr-defined]
        form = super().get_form(request, obj, change, **kwargs)
        optional_position(
            form,
            _(
                "1 is first. A number already taken puts this question there and moves the "
                "others down; left empty, the question goes last."
            ),
        )
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in {"section", "show_if_question", "indicator"}:
            version_id = getattr(request, "_editing_version_id", None)
            related = db_field.related_model.objects.select_related("version__questionnaire")
            if version_id is not None:
                related = related.filter(version_id=version_id)
            else:
                related = related.filter(version__status=QuestionnaireVersion.Status.DRAFT)
            if db_field.name == "show_if_question":
                related = related.exclude(pk=getattr(request, "_editing_question_id", None))
                related = related.order_by("section__position", "position", "id")
            kwargs["queryset"] = related
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        section_id = initial.get("section")
        if section_id and str(section_id).isascii() and str(section_id).isdigit():
            last = Question.objects.filter(section_id=section_id).aggregate(n=Max("position"))
            initial["position"] = (last["n"] or 0) + 1
        return initial

    def save_model(self, request: HttpRequest, obj: Question, form: Any, change: bool) -> None:
        old_section = Question.objects.filter(pk=obj.pk).values_list("section_id", flat=True)
        request._question_left_section = old_section.first() if change else None  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        question = form.instance
        order = [question.pk if key == "new" else key for key in form.planned_section]
        services.order_questions(section_id=question.section_id, question_ids=order)
        left = getattr(request, "_question_left_section", None)
        if left is not None and left != question.section_id:
            services.order_questions(section_id=left, question_ids=[])
        for formset in formsets:
            if isinstance(formset, ChoiceFormSet):
                services.order_choices(question_id=question.pk, choice_ids=formset.planned_ids())

    def response_post_save_add(self, request: HttpRequest, obj: Question) -> HttpResponse:
        return HttpResponseRedirect(section_url(obj.section_id))

    def response_post_save_change(self, request: HttpRequest, obj: Question) -> HttpResponse:
        return HttpResponseRedirect(section_url(obj.section_id))

    def response_add(
        self, request: HttpRequest, obj: Question, post_url_continue: Any = None
    ) -> HttpResponse:
        response = super().response_add(request, obj, post_url_continue)
        if "_addanother" in request.POST:
            add = reverse("admin:surveys_question_add")
            return HttpResponseRedirect(f"{add}?section={obj.section_id}")
        return response

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        question = kwargs.get("obj")
        section_id = question.section_id if question is not None else request.GET.get("section")
        section = None
        if section_id and str(section_id).isascii() and str(section_id).isdigit():
            section = (
                Section.objects.select_related("version__questionnaire")
                .filter(pk=section_id)
                .first()
            )
        context["section"] = section
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(Indicator)
class IndicatorAdmin(ProvinceScopedMixin, FrozenUnlessDraftMixin, admin.ModelAdmin):
    owner_path = "version__questionnaire__owner_unit"
    list_display = ["code", "name_vi", "kind", "aggregation", "parent", "version"]
    list_filter = ["kind", "aggregation", ("version__questionnaire", ScopedRelatedFilter)]
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

    def response_post_save_add(self, request: HttpRequest, obj: Indicator) -> HttpResponse:
        return HttpResponseRedirect(version_url(obj.version_id))

    def response_post_save_change(self, request: HttpRequest, obj: Indicator) -> HttpResponse:
        return HttpResponseRedirect(version_url(obj.version_id))


from surveys import admin_mapping  # noqa: E402, F401 (registers the version mappings' admin)
