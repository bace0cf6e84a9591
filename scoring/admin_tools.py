"""Pieces the scoring admins share: records nobody edits, a change list with a button to a
tool page, and a change form with context read from the object shown."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import Promise


class ReadOnlyMixin:
    """Records written by the computation only: nobody adds, changes or deletes them here
    (they are kept for audit; retention is not the admin's job)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ToolLinkMixin:
    """The change list (``admin/scoring/tool_change_list.html``) links to the admin URL
    named ``tool_url_name``, labelled ``tool_label``, for those with the permission
    ``has_<tool_permission>_permission`` grants (as Django names actions' permissions)."""

    change_list_template = "admin/scoring/tool_change_list.html"
    tool_url_name: str
    tool_label: Promise
    tool_permission: str

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        allowed = getattr(self, f"has_{self.tool_permission}_permission")(request)
        return super().changelist_view(  # type: ignore[misc]
            request,
            {
                **(extra_context or {}),
                "tool_url": reverse(self.tool_url_name) if allowed else None,
                "tool_label": self.tool_label,
            },
        )


class ObjectContextMixin:
    """The change form gets ``object_context(request, obj)`` for the object it shows."""

    def object_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        return {}

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is not None:
            context |= self.object_context(request, obj)
        return super().change_view(request, object_id, form_url, context)  # type: ignore[misc]
