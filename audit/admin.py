"""The audit trail in the admin, for superusers only: filter by model, object, user and
date; export the entries shown (the changelist's filters and search) as CSV.

auditlog's own admin is replaced: it is open to any staff with the view permission, and
has no export. Entries are never added, changed or deleted here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from auditlog.admin import LogEntryAdmin as AuditlogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from config.admin_mixins import Page, ToolPagesMixin

CSV_HEADER = [
    "timestamp",
    "user",
    "system",
    "model",
    "object_pk",
    "object",
    "action",
    "changes",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The action column: codes, the same in every language.
ACTIONS = {
    LogEntry.Action.CREATE: "create",
    LogEntry.Action.UPDATE: "update",
    LogEntry.Action.DELETE: "delete",
    LogEntry.Action.ACCESS: "access",
}


def _cell(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_rows(entries: QuerySet[LogEntry]) -> Iterator[list[Any]]:
    """The header, then one row per entry, oldest first."""
    yield CSV_HEADER
    rows = entries.select_related("actor", "content_type").order_by("timestamp", "pk")
    for entry in rows.iterator(chunk_size=2000):
        extra = entry.additional_data if isinstance(entry.additional_data, dict) else {}
        changes = entry.changes if entry.changes is not None else entry.changes_text
        yield [
            _cell(value)
            for value in (
                timezone.localtime(entry.timestamp).isoformat(),
                entry.actor.get_username() if entry.actor else "",
                extra.get("system", ""),
                f"{entry.content_type.app_label}.{entry.content_type.model}",
                entry.object_pk,
                entry.object_repr,
                ACTIONS.get(entry.action, ""),
                json.dumps(changes, ensure_ascii=False, sort_keys=True),
            )
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(entries: QuerySet[LogEntry]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")

    def lines() -> Iterator[str]:
        yield "\ufeff"  # so that Excel reads UTF-8
        for row in csv_rows(entries):
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response


class ActorFilter(admin.SimpleListFilter):
    title = _("user")
    parameter_name = "actor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, Any]]:
        rows = (
            LogEntry.objects.filter(actor__isnull=False)
            .order_by("actor__username")
            .values_list("actor_id", "actor__username")
            .distinct()
        )
        return [("system", _("system (no user)")), *rows]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "system":
            return queryset.filter(actor__isnull=True)
        if self.value():
            return queryset.filter(actor_id=self.value())
        return queryset


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditEntryAdmin(ToolPagesMixin, AuditlogEntryAdmin):
    """Who changed what, when, before and after."""

    list_display = ["created", "resource_url", "action", "msg_short", "user_url", "system"]
    list_filter = [
        "content_type",
        "action",
        ActorFilter,
        ("timestamp", admin.DateFieldListFilter),
    ]
    search_fields = ["object_repr", "object_pk", "actor__username"]
    readonly_fields = [*AuditlogEntryAdmin.readonly_fields, "system"]
    fieldsets = [
        (None, {"fields": ["created", "user_url", "system", "resource_url", "cid"]}),
        (_("Changes"), {"fields": ["action", "msg"]}),
    ]
    actions = ["export_csv"]
    own_pages = (Page("export.csv", "export_view", "auditlog_logentry_export"),)
    change_list_template = "admin/audit/change_list.html"

    # Superusers only, whatever permissions a staff account holds.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("Changes"))
    def msg_short(self, entry: LogEntry) -> str:
        """The changed fields (auditlog's own column is English only)."""
        if entry.action in (LogEntry.Action.DELETE, LogEntry.Action.ACCESS):
            return ""
        fields = list(entry.changes_dict)
        text = ", ".join(fields)
        return _("%(count)d changes: %(fields)s") % {
            "count": len(fields),
            "fields": text if len(text) <= 80 else text[:77] + "…",
        }

    @admin.display(description=_("system actor"))
    def system(self, entry: LogEntry) -> str:
        extra = entry.additional_data if isinstance(entry.additional_data, dict) else {}
        return extra.get("system", "")

    @admin.action(description=_("Export the selected entries as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> HttpResponse:
        return csv_response(queryset)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Every entry the changelist shows with the same filters and search, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        return csv_response(changelist.get_queryset(request))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        query = request.GET.urlencode()
        url = reverse("admin:auditlog_logentry_export") + (f"?{query}" if query else "")
        link = format_html('<a href="{}" class="addlink">{}</a>', url, _("Export as CSV"))
        return super().changelist_view(request, {**(extra_context or {}), "export_link": link})
