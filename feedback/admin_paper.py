"""Admin for paper-form imports: an upload page, and a read-only page per import."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from config.queueing import BrokerUnavailable
from feedback.models import PaperImport
from feedback.paper import services as paper
from surveys.admin import ProvinceScopedMixin, ScopedRelatedFilter

PERMISSION = "feedback.import_paper_forms"
# The change page lists this many report rows at most; the API returns them all.
REPORT_ROWS_SHOWN = 1000


class PaperImportUploadForm(forms.ModelForm):
    file = forms.FileField(
        label=_("file"),
        help_text=_(
            "CSV (UTF-8) or XLSX, one row per paper form: a column per question code, plus "
            "unit (required), agency, weight and row_id (optional)."
        ),
    )

    user: Any = None  # set by the admin: a closed round needs the late-entry permission

    class Meta:
        model = PaperImport
        fields = ["round"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload, survey_round = cleaned.get("file"), cleaned.get("round")
        if upload is None or survey_round is None:
            return cleaned
        if upload.size > paper.MAX_FILE_BYTES:
            raise ValidationError({"file": paper.too_large_message()})
        content = upload.read()
        paper.check_paper_file(
            round_code=survey_round.code, file_name=upload.name, content=content, user=self.user
        )
        cleaned["content"] = content
        return cleaned


@admin.register(PaperImport)
class PaperImportAdmin(ProvinceScopedMixin, admin.ModelAdmin):
    owner_path = "round__owner_unit"  # the round field offers the user's rounds only
    list_display = [
        "file_name",
        "round",
        "status",
        "progress",
        "accepted_rows",
        "rejected_rows",
        "duplicate_rows",
        "uploaded_by",
        "late_entry",
        "created_at",
    ]
    list_filter = ["status", ("round", ScopedRelatedFilter)]
    list_select_related = ["round", "uploaded_by"]
    date_hierarchy = "created_at"
    form = PaperImportUploadForm
    add_fieldsets = [(None, {"fields": ["round", "file"]})]
    fieldsets = [
        (None, {"fields": ["round", "file_name", "uploaded_by", "late_entry", "created_at"]}),
        (_("Progress"), {"fields": ["status", "progress", "attempts", "finished_at", "error"]}),
        (
            _("Report"),
            {"fields": ["accepted_rows", "rejected_rows", "duplicate_rows", "report_table"]},
        ),
    ]
    readonly_fields = ["progress", "report_table"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(PERMISSION) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an import is a record of what happened: read-only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # its responses point to it

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        if object_id is not None or request.method != "POST":
            return super().changeform_view(request, object_id, *args, **kwargs)
        # An upload: not in the admin's usual transaction, because the service commits the
        # import before queueing its task (a worker must find it) and deletes it again if
        # the broker is down.
        try:
            return self._changeform_view(request, object_id, *args, **kwargs)
        except BrokerUnavailable as problem:
            self.message_user(request, problem.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> PaperImport:
        return paper.start_paper_import(
            round_code=form.cleaned_data["round"].code,
            file_name=form.cleaned_data["file"].name,
            content=form.cleaned_data["content"],
            uploaded_by=request.user,
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass  # save_form stored it through the service

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def response_add(
        self, request: HttpRequest, obj: PaperImport, post_url_continue: Any = None
    ) -> HttpResponse:
        # Show the import itself: its progress and report.
        return HttpResponseRedirect(
            reverse(
                "admin:feedback_paperimport_change", args=[obj.pk], current_app=self.admin_site.name
            )
        )

    @admin.display(description=_("progress"))
    def progress(self, obj: PaperImport) -> str:
        return f"{obj.processed_rows} / {obj.total_rows}"

    @admin.display(description=_("report"))
    def report_table(self, obj: PaperImport) -> str:
        entries = obj.report[:REPORT_ROWS_SHOWN]
        rows = format_html_join(
            "\n",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (entry["row"], entry.get("row_id", ""), status, field, message)
                for entry in entries
                for status, field, message in _report_lines(entry)
            ),
        )
        more = ""
        if len(obj.report) > REPORT_ROWS_SHOWN:
            more = format_html(
                "<p>{}</p>",
                _("The first %(n)s rows are shown; the API returns them all.")
                % {"n": REPORT_ROWS_SHOWN},
            )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>"
            "</thead><tbody>{}</tbody></table>{}",
            _("row"),
            _("row id"),
            _("status"),
            _("column"),
            _("problem"),
            rows,
            more,
        )


def _report_lines(entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    if entry["status"] == "accepted":
        return [(str(_("accepted")), "", entry.get("receipt", ""))]
    if entry["status"] == "duplicate":
        return [(str(_("duplicate")), "", entry.get("receipt", ""))]
    return [(str(_("rejected")), e["field"], e["message"]) for e in entry["errors"]]
