"""Time the admin's questionnaire editor on a draft of SIPAS: open and save of each page.

Run by hand against a database you may write to (it migrates, loads SIPAS once and starts
a draft of it); prints one line per page: form fields, open time, save time.

    DATABASE_URL=postgres://…/somedb uv run --frozen python bench/questionnaire_editor.py

Pages measured: the version's change page, and where the editor has them, each section's
page and the largest question's page. A save posts the page back unchanged (the same
request a browser makes after editing one label).
"""

from __future__ import annotations

import os
import re
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402

from surveys import services  # noqa: E402
from surveys.loaders import load_questionnaire, load_units  # noqa: E402
from surveys.models import QuestionnaireVersion  # noqa: E402


class FormFields(HTMLParser):
    """The data a browser would post for a page's main form, and its field count."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside = form_id, False
        self.data: list[tuple[str, str]] = []
        self.fields = 0
        self._select: str | None = None
        self._options: list[str] = []
        self._selected: list[str] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = self.inside or a.get("id") == self.form_id
            return
        if tag == "option" and self._select:
            self._options.append(a.get("value", ""))
            if "selected" in a:
                self._selected.append(a.get("value", ""))
            return
        name = a.get("name", "")
        if not self.inside or not name or "disabled" in a:
            return
        if "__prefix__" in name:
            return  # the empty template form of an inline: not submitted as a field
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            self.fields += 1
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    self.data.append((name, a.get("value") or "on"))
                return
            self.data.append((name, a.get("value", "")))
        elif tag == "select":
            self.fields += 1
            self._select, self._options, self._selected = name, [], []
        elif tag == "textarea":
            self.fields += 1
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            for value in self._selected or self._options[:1]:
                self.data.append((self._select, value))
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.data.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None


def measure(client: Client, url: str, form_id: str) -> tuple[int, float, float, int]:
    """(form fields, seconds to open, seconds to save, status of the save)."""
    started = time.perf_counter()
    page = client.get(url)
    opened = time.perf_counter() - started
    assert page.status_code == 200, (url, page.status_code)
    parser = FormFields(form_id)
    parser.feed(page.content.decode())
    data: dict[str, list[str]] = {}
    for name, value in parser.data:
        data.setdefault(name, []).append(value)
    data["_continue"] = ["Save"]
    started = time.perf_counter()
    saved = client.post(url, data)
    save_time = time.perf_counter() - started
    return parser.fields, opened, save_time, saved.status_code


def main() -> None:
    setup_test_environment()  # the test client's response.context, as in the tests
    call_command("migrate", verbosity=0)
    load_units()
    published, _created = load_questionnaire()
    draft = QuestionnaireVersion.objects.filter(based_on=published, status="draft").first()
    if draft is None:
        draft = services.start_draft(version_id=published.pk)
    user, _new = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    print(f"draft {draft} — {draft.questions.count()} questions, {draft.sections.count()} sections")

    pages = [
        (
            "version",
            reverse("admin:surveys_questionnaireversion_change", args=[draft.pk]),
            "questionnaireversion_form",
        )
    ]
    try:
        for section in draft.sections.order_by("position"):
            url = reverse("admin:surveys_section_change", args=[section.pk])
            pages.append((f"section {section.code}", url, "section_form"))
    except NoReverseMatch:
        pass  # the editor before sections had pages of their own
    largest = max(draft.questions.all(), key=lambda q: q.choices.count())
    pages.append(
        (
            f"question {largest.code}",
            reverse("admin:surveys_question_change", args=[largest.pk]),
            "question_form",
        )
    )
    print(f"{'page':<24} {'fields':>7} {'open s':>8} {'save s':>8} status")
    for name, url, form_id in pages:
        fields, opened, saved, status = measure(client, url, form_id)
        print(f"{name:<24} {fields:>7} {opened:>8.2f} {saved:>8.2f} {status}")
    if re.search("postgres", str(django.db.connection.vendor)) is None:
        print("note: not PostgreSQL; figures for the report are taken on PostgreSQL")


if __name__ == "__main__":
    main()
