"""Open311 bodies as JSON or XML, and the specification's error format."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

from django.http import HttpResponse

# The XML element of each list item, by the element of the list (GeoReport v2 examples).
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}


def _xml_value(parent: ElementTree.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _xml_value(ElementTree.SubElement(parent, key), item)
    elif isinstance(value, list):
        for item in value:
            _xml_value(ElementTree.SubElement(parent, ITEM_TAGS.get(parent.tag, "item")), item)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    elif value is not None:
        parent.text = str(value)


def render(body: Any, *, fmt: str, root: str, status: int = 200) -> HttpResponse:
    """``body`` as JSON, or as XML under the element ``root``."""
    if fmt == "xml":
        element = ElementTree.Element(root)
        _xml_value(element, body)
        text = ElementTree.tostring(element, encoding="unicode", xml_declaration=True)
        return HttpResponse(text, status=status, content_type="text/xml; charset=utf-8")
    return HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json; charset=utf-8",
    )


def errors(messages: list[str], *, fmt: str, status: int) -> HttpResponse:
    """``[{"code": status, "description": message}, …]``, the GeoReport v2 error format."""
    body = [{"code": status, "description": message} for message in messages]
    return render(body, fmt=fmt, root="errors", status=status)
