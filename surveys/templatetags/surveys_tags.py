"""Template filters for bilingual questionnaire content."""

import json
from typing import Any

from django import template

from surveys.models import localized as localized_value

register = template.Library()


@register.filter
def localized(obj: Any, field: str) -> str:
    """``{{ section|localized:"title" }}``: the field in the active language."""
    return localized_value(obj, field)


@register.filter
def json_values(values: Any) -> str:
    """A list of answer values as JSON (``[true]``, ``[4, 5]``, ``["a"]``)."""
    return json.dumps(values, ensure_ascii=False)
