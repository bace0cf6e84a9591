"""Admin building blocks every app uses: records written elsewhere, shown only; tool pages and
the change list's button to them; change forms with context read from their object."""

from __future__ import annotations

from typing import Any, NamedTuple

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import Promise
from django.views.decorators.http import require_POST


class ViewOnlyMixin:
    """Records written by citizens, workers or services: shown, never added or changed here.

    ``obj`` is optional so that one signature serves model admins and inlines alike.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyMixin(ViewOnlyMixin):
    """Records written by the computation only: nobody adds, changes or deletes them here
    (they are kept for audit; retention is not the admin's job)."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SuperuserDeletesMixin(ViewOnlyMixin):
    """View-only records that only a superuser may delete."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


class ViewOnlyInline(ViewOnlyMixin, admin.TabularInline):
    """The rows under a record, every listed field read-only, none added or removed."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields


class Page(NamedTuple):
    """One of a model admin's own pages: its route, the admin's view method, the URL name."""

    route: str
    view: str
    name: str
    post_only: bool = False


class ToolPagesMixin:
    """Pages of a model admin beyond its list and forms (copy, generate, import, review):
    ``own_pages`` routes them, behind the admin site's checks and before the admin's own
    URLs; a form bound to the POST; a page on the admin's layout (``admin/tool_form.html``)."""

    own_pages: tuple[Page, ...] = ()

    def get_urls(self) -> list[Any]:
        pages = []
        for page in self.own_pages:
            view = getattr(self, page.view)
            view = require_POST(view) if page.post_only else view
            pages.append(path(page.route, self.admin_site.admin_view(view), name=page.name))  # type: ignore[attr-defined]
        return [*pages, *super().get_urls()]  # type: ignore[misc]

    def posted_form(self, request: HttpRequest, form_class: type[Form], **kwargs: Any) -> Form:
        """``form_class`` bound to the POST, or unbound on a GET."""
        return form_class(request.POST if request.method == "POST" else None, **kwargs)

    def tool_page(self, request: HttpRequest, template: str, **context: Any) -> TemplateResponse:
        """``template`` with the admin site's context, the model's options and ``context``."""
        site = self.admin_site.each_context(request)  # type: ignore[attr-defined]
        return TemplateResponse(request, template, {**site, "opts": self.opts, **context})  # type: ignore[attr-defined]


class ToolLinkMixin:
    """The change list (``admin/change_list_with_tool.html``) gets one more button, before
    Add, to a tool page of the model's admin: ``tool_link`` gives its address and label, or
    None where the user may not use the tool. By default the admin URL named
    ``tool_url_name``, labelled ``tool_label``, for those that
    ``has_<tool_permission>_permission`` lets in (as Django names actions' permissions)."""

    change_list_template = "admin/change_list_with_tool.html"
    tool_url_name: str
    tool_label: Promise
    tool_permission: str

    def tool_link(self, request: HttpRequest) -> tuple[str, Any] | None:
        allowed = getattr(self, f"has_{self.tool_permission}_permission")(request)
        return (reverse(self.tool_url_name), self.tool_label) if allowed else None

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {**(extra_context or {}), "tool_link": self.tool_link(request)}
        return super().changelist_view(request, context)  # type: ignore[misc]


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
