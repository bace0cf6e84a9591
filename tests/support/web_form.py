"""What the tests of the public form read from its pages and post back, as a browser would."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any


def form_data(answers: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    """Answers as a browser posts them: strings, ``true``/``false``, lists for checkboxes."""
    data: dict[str, Any] = {}
    for code in codes:
        value = answers.get(code)
        if value is None:
            continue
        if isinstance(value, bool):
            data[code] = "true" if value else "false"
        elif isinstance(value, list):
            data[code] = value
        else:
            data[code] = str(value)
    return data


def section_on(page: Any) -> str:
    """The code of the section a form page shows."""
    return re.search(r'name="section" value="([^"]+)"', page.content.decode()).group(1)


def progress_on(page: Any) -> tuple[int, int, str]:
    """The part number, the most parts, and the text a reader gets, from a section page."""
    html = page.content.decode()
    bar = re.search(r'<progress value="(\d+)" max="(\d+)" aria-labelledby="progress-label">', html)
    label = re.search(r'<p id="progress-label">([^<]+)</p>', html)
    return int(bar[1]), int(bar[2]), label[1]


class _QuestionnaireInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.inputs: list[tuple[str, str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = "questionnaire" in a.get("class", "").split()
        elif self.inside and tag in {"input", "textarea", "select", "button"}:
            field = (tag, a.get("name", ""), a.get("id", ""), a.get("type", ""))
            if field[1] != "csrfmiddlewaretoken":
                self.inputs.append(field)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def questionnaire_inputs(page: Any) -> list[tuple[str, str, str, str]]:
    """Tag, name, id and type of every input and button of the page's questionnaire form."""
    parser = _QuestionnaireInputs()
    parser.feed(page.content.decode())
    return parser.inputs
