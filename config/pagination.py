"""Pagination for list endpoints: page numbers, with a client-chosen page size up to a cap.

A ``page`` or ``page_size`` that is not a whole number from 1 (``page_size`` up to the cap) is
a 400 naming it; a page past the last one is a 404 naming ``page``. The schema says so.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request


def whole_number(request: Request, name: str, *, cap: int | None = None) -> int | None:
    """The parameter as a whole number from 1 (to ``cap``), None when absent; else a 400."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise ValidationError({name: [_("A whole number from 1 is required.")]})
    if cap is not None and int(value) > cap:
        raise ValidationError({name: [_("At most %(cap)d.") % {"cap": cap}]})
    return int(value)


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()

    def get_page_size(self, request: Request) -> int:
        return whole_number(request, self.page_size_query_param, cap=self.max_page_size) or (
            self.page_size
        )

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        whole_number(request, self.page_query_param)
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise NotFound({self.page_query_param: [_("There is no such page.")]}) from exc
