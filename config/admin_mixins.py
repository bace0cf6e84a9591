"""Admin building blocks every app uses: pages of records written elsewhere, shown only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


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
