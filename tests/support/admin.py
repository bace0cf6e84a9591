"""What a browser would post back from an admin page, for tests of the admin's forms."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from html.parser import HTMLParser
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from surveys.models import QuestionnaireVersion


def admin_url(model: str, view: str, *args: Any) -> str:
    return reverse(f"admin:surveys_{model}_{view}", args=args)


class FormInputs(HTMLParser):
    """What a browser would submit for one ``<form id=…>`` of a page, untouched."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.depth = 0  # > 0 while inside the form
        self.data: dict[str, list[str]] = defaultdict(list)
        self.select: str | None = None
        self.options: list[str] = []
        self.selected: list[str] = []
        self.textarea: str | None = None
        self.text: list[str] = []
        self.fields = 0  # inputs, selects and text areas posted (not the empty row template)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            if self.depth or a.get("id") == self.form_id:
                self.depth += 1
            return
        if not self.depth or "disabled" in a:
            return
        name = a.get("name", "")
        posted = a.get("type", "").lower() not in {"submit", "button", "image", "reset"}
        if tag in {"input", "select", "textarea"} and name and "__prefix__" not in name and posted:
            self.fields += 1
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    self.data[name].append(a.get("value") or "on")
                return
            self.data[name].append(a.get("value", ""))
        elif tag == "select" and name:
            self.select, self.options, self.selected = name, [], []
        elif tag == "option" and self.select is not None:
            self.options.append(a.get("value", ""))
            if "selected" in a:
                self.selected.append(a.get("value", ""))
        elif tag == "textarea" and name:
            self.textarea, self.text = name, []

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.depth:
            self.depth -= 1
        elif tag == "select" and self.select is not None:
            self.data[self.select].extend(self.selected or self.options[:1])
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            text = "".join(self.text)
            self.data[self.textarea].append(text.removeprefix("\r\n").removeprefix("\n"))
            self.textarea = None


def form_data(client: Client, url: str, form_id: str) -> dict[str, list[str]]:
    """GET ``url`` and return the data its form would post back unchanged."""
    page = client.get(url)
    assert page.status_code == 200
    parser = FormInputs(form_id)
    parser.feed(page.content.decode())
    assert parser.data, f"no form #{form_id} on {url}"
    return dict(parser.data)


def fill_round_form(
    page: Any, admin: str, *, code: str, name_vi: str, version_id: int, units: list[str]
) -> None:
    """Fill the admin's "add round" page in a browser: a round of ``version_id`` over the
    units labelled ``units`` ("19 Thái Nguyên"), open from yesterday for a month. Not saved."""
    today = timezone.localdate()
    page.goto(f"{admin}/round/add/")
    page.fill("#id_code", code)
    page.fill("#id_name_vi", name_vi)
    page.fill("#id_period_start", (today - dt.timedelta(days=30)).isoformat())
    page.fill("#id_period_end", today.isoformat())
    page.fill("#id_opens_at_0", (today - dt.timedelta(days=1)).isoformat())
    page.fill("#id_opens_at_1", "00:00:00")
    page.fill("#id_closes_at_0", (today + dt.timedelta(days=30)).isoformat())
    page.fill("#id_closes_at_1", "00:00:00")
    page.select_option("#id_version", str(version_id))
    page.select_option("#id_units_from", label=units)
    page.click("#id_units_add")


QUESTION_ID = re.compile(r"questions-\d+-id")  # a question row of a section's page


def edit_questions(
    client: Client, version: QuestionnaireVersion, changes: dict[str, dict[str, str]]
) -> Any:
    """Post the section page of the questions back as rendered, with some fields changed.

    All the questions named must be in one section: each section has its own page.
    """
    questions = {code: version.questions.get(code=code) for code in changes}
    (section_id,) = {q.section_id for q in questions.values()}
    url = admin_url("section", "change", section_id)
    data = form_data(client, url, "section_form")
    for code, fields in changes.items():
        question_pk = str(questions[code].pk)
        prefix = next(
            name.removesuffix("-id")
            for name, values in data.items()
            if QUESTION_ID.fullmatch(name) and values == [question_pk]
        )
        for field, value in fields.items():
            assert data.get(f"{prefix}-{field}") != [value]
            data[f"{prefix}-{field}"] = [value]
    data["_save"] = ["Save"]
    return client.post(url, data)


def post_change_form(client: Client, model: str, obj: Any, **fields: str) -> Any:
    """Post ``obj``'s admin change page back as rendered, with ``fields`` changed."""
    url = admin_url(model, "change", obj.pk)
    data = form_data(client, url, f"{model}_form")
    data.update({name: [value] for name, value in fields.items()})
    return client.post(url, data)
