"""The public web form in a real browser, on a 360 px phone, in Vietnamese and English."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.utils import timezone, translation

from feedback.models import Answer, Response
from surveys.models import Question, Round, Unit
from tests.support.responses import valid_answers

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}


def fits_the_screen(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def choice_label(question: Question, value: Any, language: str) -> str:
    with translation.override(language):
        if question.type == Question.Type.YESNO:
            return translation.gettext("Yes") if value else translation.gettext("No")
        return question.choices.get(code=str(value)).label


def answer_page(page: Any, answers: dict[str, Any], language: str) -> None:
    """Answer every question on the page that has an answer, clicking labels like a person."""
    codes = page.locator(".question[id^='q-']").evaluate_all("els => els.map(e => e.id.slice(2))")
    for code in codes:
        if code not in answers:
            continue
        question = Question.objects.get(version__rounds__code="demo", code=code)
        box = page.locator(f"#q-{code}")
        value = answers[code]
        if question.type in Question.TEXT_TYPES:
            box.locator("input, textarea").fill(value)
        else:
            for item in value if isinstance(value, list) else [value]:
                box.get_by_label(choice_label(question, item, language), exact=True).check()


def send(page: Any, press: Any) -> None:
    """Send the form (a click or a key) and wait for the next page."""
    with page.expect_navigation():
        press()


def stored(response: Response) -> dict[str, Any]:
    return dict(Answer.objects.filter(response=response).values_list("question__code", "value"))


def fill_sipas(page: Any, live_server: Any, language: str) -> Response:
    """Fill the whole SIPAS questionnaire on the demo round; returns the stored response."""
    first_age_band = Question.objects.get(version__rounds__code="demo", code="A02").choices.first()
    answers = valid_answers(A02=first_age_band.code)  # the one the Space key picks
    page.goto(f"{live_server.url}/")
    page.locator("a[href='/rounds/demo/']").click()
    page.select_option("#id_unit", "19")
    assert fits_the_screen(page)
    send(page, page.locator("form.questionnaire button.primary").click)

    # Section A: leave the required A02 empty, get the error, follow the summary, correct it.
    page.locator("#q-A01").get_by_label(
        choice_label(
            Question.objects.get(version__rounds__code="demo", code="A01"), "nu", language
        ),
        exact=True,
    ).check()
    send(page, page.locator("button[value=next]").click)
    assert page.locator("#err-A02").is_visible()
    assert "A02" in page.locator("#err-A02").inner_text()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.locator("#q-A02 input").first.get_attribute("aria-invalid") == "true"
    page.locator("#error-summary a").first.click()
    assert page.evaluate("document.activeElement.name") == "A02"
    page.keyboard.press("Space")  # the keyboard alone answers a radio group
    assert fits_the_screen(page)
    send(page, page.locator("button[value=next]").click)
    assert not page.locator("#error-summary").count()

    seen, parts = [], []
    while page.locator("input[name=section]").count():
        section = page.locator("input[name=section]").get_attribute("value")
        seen.append(section)
        progress = page.locator("progress")
        assert progress.get_attribute("value") == str(len(seen) + 1)
        parts.append((int(progress.get_attribute("value")), int(progress.get_attribute("max"))))
        if section == "B5":
            assert page.locator("#q-S01").is_visible()  # shown because Q8_4 is "Có"/"Yes"
        answer_page(page, answers, language)
        assert fits_the_screen(page)
        if section == "B3":
            page.locator("#q-Q8_7 input").last.focus()
            send(
                page, lambda: page.keyboard.press("Enter")
            )  # Enter sends the step, like the Next button
        else:
            send(page, page.locator("button[value=next]").click)
    assert seen == ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]
    # Progress only moves forward and ends full on the last section.
    assert all(k2 / n2 > k / n and n2 <= n for (k, n), (k2, n2) in itertools.pairwise(parts))
    assert parts[-1] == (8, 8)
    assert page.locator("progress").count() == 0
    receipt = page.locator("#receipt").inner_text()
    assert fits_the_screen(page)
    response = Response.objects.get(receipt=receipt)
    assert response.channel == Response.Channel.WEB and response.unit.code == "19"
    assert stored(response) == answers | {"Q2": ["loa_xa", "internet"], "Q11": "Tốt"}
    return response


@pytest.mark.parametrize(("language", "locale"), [("vi", "vi-VN"), ("en", "en-GB")])
def test_a_citizen_fills_the_sipas_questionnaire_on_a_phone(
    browser, live_server, sipas, language: str, locale: str
) -> None:
    context = browser.new_context(viewport=PHONE, locale=locale)
    page = context.new_page()
    fill_sipas(page, live_server, language)
    assert page.locator("html").get_attribute("lang") == language
    context.close()


def test_a_conditional_question_shows_and_hides_as_the_citizen_answers(
    browser,
    live_server,
    make_draft,
) -> None:
    from surveys.loaders import load_units
    from surveys.services import publish_version

    load_units()
    version = publish_version(version_id=make_draft().pk)
    now = timezone.now()
    survey_round = Round.objects.create(
        code="small",
        name_vi="Thử",
        name_en="Trial",
        period_start=now.date() - dt.timedelta(days=30),
        period_end=now.date(),
        opens_at=now - dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(days=1),
        version=version,
    )
    survey_round.units.set(Unit.objects.filter(code="19"))

    context = browser.new_context(viewport=PHONE, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{live_server.url}/rounds/small/")
    page.select_option("#id_unit", "19")
    send(page, page.locator("form.questionnaire button.primary").click)
    assert page.locator("#q-USED").is_visible()
    assert not page.locator("#q-SAT").is_visible()
    page.locator("#q-USED").get_by_label("Có", exact=True).check()
    assert page.locator("#q-SAT").is_visible()
    page.locator("#q-USED").get_by_label("Không", exact=True).check()
    assert not page.locator("#q-SAT").is_visible()
    page.locator("#q-USED").get_by_label("Có", exact=True).check()
    page.locator("#q-SAT").get_by_label("Mức 4", exact=True).check()
    assert fits_the_screen(page)
    send(page, page.locator("button[value=next]").click)
    receipt = page.locator("#receipt").inner_text()
    assert stored(Response.objects.get(receipt=receipt)) == {"USED": True, "SAT": 4}
    context.close()
