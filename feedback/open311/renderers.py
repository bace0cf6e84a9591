"""GeoReport v2 documents as JSON or XML, chosen by the URL's suffix (``.json``, ``.xml``)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

# The XML element of each list item, by the element of the list (GeoReport v2 examples).
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}


class GeoReportJSONRenderer(JSONRenderer):
    """JSON spaced as ``json.dumps`` writes it, served as ``application/json; charset=utf-8``."""

    charset = "utf-8"
    compact = False


class GeoReportXMLRenderer(BaseRenderer):
    """XML under the document's element: the view's ``xml_root`` (``services``,
    ``service_definition``, ``service_requests``), or ``errors`` for an error; the items of a
    list under the specification's element (``<services><service>…``)."""

    media_type = "text/xml"
    format = "xml"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> str:
        context = renderer_context or {}
        failed = getattr(context.get("response"), "exception", False)
        element = ElementTree.Element("errors" if failed else context["view"].xml_root)
        _xml_value(element, data)
        return ElementTree.tostring(element, encoding="unicode", xml_declaration=True)


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


class SuffixNegotiation(DefaultContentNegotiation):
    """The URL's suffix alone picks the renderer: GeoReport clients send any Accept header."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next((r for r in renderers if r.format == format_suffix), renderers[0])
        return renderer, renderer.media_type
