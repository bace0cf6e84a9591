"""Printable documents carry the shipped font, render every Vietnamese letter, fetch nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from results.pdf import FONT_FAMILY, render_pdf

NAMES = "Đắk Lắk, Thừa Thiên Huế, Bà Rịa – Vũng Tàu: mức độ hài lòng"


@pytest.fixture
def template(settings, tmp_path: Path) -> str:
    (tmp_path / "doc.html").write_text(
        '{% extends "results/print/base.html" %}{% block content %}'
        "<h1>{{ title }}</h1><p>{{ body }}</p>{{ extra|safe }}{% endblock %}",
        encoding="utf-8",
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    return "doc.html"


def test_vietnamese_text_is_embedded_in_the_shipped_font(template: str) -> None:
    pdf = render_pdf(template, {"title": NAMES, "body": "Chỉ số SIPAS", "extra": ""})

    reader = PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text()
    assert "Đắk Lắk" in text and "Thừa Thiên Huế" in text and "Chỉ số SIPAS" in text
    fonts = {
        str(font.get_object()["/BaseFont"])
        for font in reader.pages[0]["/Resources"]["/Font"].values()
    }
    assert fonts and all(FONT_FAMILY.replace(" ", "-") in name for name in fonts), fonts


def test_a_document_cannot_load_other_files_or_the_network(template: str) -> None:
    pdf = render_pdf(
        template,
        {
            "title": "x",
            "body": "y",
            # An attachment would embed the file whole in the PDF.
            "extra": '<link rel="attachment" href="file:///etc/passwd">'
            '<a rel="attachment" href="file:///etc/hostname">h</a>'
            '<img src="http://127.0.0.1:9/x.png">',
        },
    )
    assert b"/EmbeddedFile" not in pdf
    assert PdfReader(io.BytesIO(pdf)).pages[0].extract_text().strip().startswith("x")
