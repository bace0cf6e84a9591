"""Admin of version mappings (series across questionnaire versions, docs/series.md).

A mapping's rows are edited inline and checked together against both versions
(``surveys.mapping.rows_errors``), each problem shown on its row and field; or replaced at
once from a CSV file ("Load rows from CSV"), all or nothing. "Add 'same' rows for matching
codes" proposes a row for every code the two versions share with comparable answers.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from config.admin_mixins import Page, ToolPagesMixin
from surveys import mapping as series
from surveys.models import QuestionnaireVersion, VersionMapping, VersionMappingRow

EXAMPLE_CSV = (
    "kind,from_code,to_code,relation\n"
    "question,S01,S01,same\n"
    "question,S05,S05b,reworded\n"
    "indicator,S05,S05b,reworded\n"
    "question,E08,,none\n"
)


class MappingRowFormSet(forms.BaseInlineFormSet):
    """Checks the rows together against the mapping's two versions."""

    def clean(self) -> None:
        super().clean()
        mapping = self.instance
        if mapping.from_version_id is None or mapping.to_version_id is None:
            return
        kept = [
            form
            for form in self.forms
            if form.is_bound
            and hasattr(form, "cleaned_data")
            and form.cleaned_data
            and not form.cleaned_data.get("DELETE")
        ]
        rows = [
            (
                form.cleaned_data.get("kind") or "",
                (form.cleaned_data.get("from_code") or "").strip(),
                (form.cleaned_data.get("to_code") or "").strip(),
                form.cleaned_data.get("relation") or "",
            )
            for form in kept
        ]
        check = series.MappingCheck(mapping.from_version, mapping.to_version)
        for index, errors in series.rows_errors(check, rows):
            for field, problems in errors.items():
                for problem in problems:
                    if field in kept[index].fields:
                        kept[index].add_error(field, problem)


class VersionMappingRowInline(admin.TabularInline):
    """The rows, edited by whoever may add or change mappings (no permissions of their own)."""

    model = VersionMappingRow
    formset = MappingRowFormSet
    fields = ["kind", "from_code", "to_code", "relation"]
    extra = 1

    def _may_edit(self, request: HttpRequest) -> bool:
        return request.user.has_perm("surveys.change_versionmapping") or request.user.has_perm(
            "surveys.add_versionmapping"
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request) or request.user.has_perm("surveys.view_versionmapping")


class MappingUploadForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))


@admin.register(VersionMapping)
class VersionMappingAdmin(ToolPagesMixin, admin.ModelAdmin):
    list_display = ["__str__", "from_version", "to_version", "row_count"]
    list_filter = ["from_version__questionnaire"]
    list_select_related = ["from_version__questionnaire", "to_version__questionnaire"]
    fields = ["from_version", "to_version", "note"]
    inlines = [VersionMappingRowInline]
    change_form_template = "admin/surveys/versionmapping/change_form.html"
    own_pages = (
        Page("<int:pk>/upload/", "upload_view", "surveys_versionmapping_upload"),
        Page("<int:pk>/fill/", "fill_view", "surveys_versionmapping_fill", post_only=True),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[VersionMapping]:
        return super().get_queryset(request).annotate(row_count=Count("rows"))

    @admin.display(description=_("rows"), ordering="row_count")
    def row_count(self, obj: VersionMapping) -> int:
        return obj.row_count  # type: ignore[attr-defined]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in {"from_version", "to_version"}:
            kwargs["queryset"] = (
                QuestionnaireVersion.objects.exclude(status=QuestionnaireVersion.Status.DRAFT)
                .select_related("questionnaire")
                .order_by("questionnaire__code", "number")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _mapping(self, request: HttpRequest, pk: int) -> VersionMapping:
        mapping = get_object_or_404(
            VersionMapping.objects.select_related("from_version", "to_version"), pk=pk
        )
        if not self.has_change_permission(request, mapping):
            raise PermissionDenied
        return mapping

    def upload_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Replace the mapping's rows with a CSV file; the file's problems stay on the form."""
        mapping = self._mapping(request, pk)
        post = request.method == "POST"
        form = MappingUploadForm(request.POST if post else None, request.FILES if post else None)
        if form.is_valid():
            try:
                stored = series.replace_rows(mapping=mapping, data=form.cleaned_data["file"].read())
            except ValidationError as error:
                form.add_error(None, error)  # keyed by field: file
            else:
                done = ngettext(
                    "%(n)d row of the mapping stored.", "%(n)d rows of the mapping stored.", stored
                )
                return self._back_to(request, mapping, done % {"n": stored})
        return self.tool_page(
            request,
            "admin/surveys/versionmapping/upload.html",
            mapping=mapping,
            form=form,
            example=EXAMPLE_CSV,
            title=_("Load mapping rows from CSV"),
        )

    def fill_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        mapping = self._mapping(request, pk)
        added = series.fill_matching_rows(mapping=mapping)
        done = ngettext(
            "%(n)d row added for a matching code.", "%(n)d rows added for matching codes.", added
        )
        return self._back_to(request, mapping, done % {"n": added})

    def _back_to(self, request: HttpRequest, mapping: VersionMapping, done: str) -> HttpResponse:
        """Say what was done, back on the mapping's page."""
        self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:surveys_versionmapping_change", args=[mapping.pk])
        )
