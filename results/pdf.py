"""Printable documents: HTML templates rendered to PDF by WeasyPrint, in a font that has
every Vietnamese letter.

The fonts ship with the project (``results/fonts``, DejaVu Sans, its licence beside it), so
a PDF reads the same on any machine, whatever fonts the system has: a report with
"Đắk Lắk" or "Thừa Thiên Huế" never falls back to boxes. Templates extend
``results/print/base.html`` and get the font faces and the page layout from it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string

FONTS = Path(__file__).resolve().parent / "fonts"
FONT_FAMILY = "SIPAS Sans"


@cache
def font_faces() -> str:
    """``@font-face`` rules for the shipped fonts (regular and bold), by file URL."""
    faces = (("DejaVuSans.ttf", "normal"), ("DejaVuSans-Bold.ttf", "bold"))
    return "\n".join(
        f'@font-face {{ font-family: "{FONT_FAMILY}"; font-weight: {weight}; '
        f'src: url("{(FONTS / name).as_uri()}"); }}'
        for name, weight in faces
    )


def render_pdf(
    template_name: str, context: dict[str, Any], *, request: HttpRequest | None = None
) -> bytes:
    """The PDF of a template: rendered with Django, laid out by WeasyPrint.

    Nothing is fetched over the network: images and charts go inline (SVG in the HTML), the
    fonts are files of the project.
    """
    from weasyprint import HTML  # imported on use: it loads Pango when first imported

    html = render_to_string(
        template_name,
        {**context, "pdf_font_faces": font_faces(), "pdf_font_family": FONT_FAMILY},
        request=request,
    )
    return HTML(string=html, base_url=str(FONTS), url_fetcher=_fetcher()).write_pdf()


@cache
def _fetcher() -> Any:
    """WeasyPrint's fetcher limited to the project's font files (no network, no other file)."""
    from weasyprint.urls import URLFetcher

    class ShippedFontsOnly(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.startswith(FONTS.as_uri() + "/"):
                raise ValueError(f"a printable document only loads the shipped fonts, not {url}")
            return super().fetch(url, headers)

    return ShippedFontsOnly(allowed_protocols=("file",))
