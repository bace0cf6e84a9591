"""Admin building blocks every app uses: records written elsewhere, shown only; tool pages."""

from __future__ import annotations

from typing import Any, NamedTuple

from django.contrib import admin
from django.forms import Form
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_POST


class ViewOnlyMixin:
    """Records written by citizens, workers or services: shown, never added or changed here.

    ``obj`` is optional so that one signature serves model admins and inlines alike.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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
