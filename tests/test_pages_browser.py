"""Pages in a real browser (headless Chromium through Playwright)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from feedback.models import Response, ResponseDraft
from surveys.services import start_draft

pytestmark = pytest.mark.browser


def test_admin_previews_a_draft_as_citizens_see_it_in_both_languages(
    admin_page, live_server, sipas
) -> None:
    draft = start_draft(version_id=sipas.pk)
    page = admin_page
    page.goto(f"{live_server.url}/admin/surveys/questionnaireversion/{draft.pk}/change/")
    page.get_by_role("link", name="Xem trước").first.click()
    expect(page.locator(".preview-banner")).to_contain_text("câu trả lời không được lưu")
    assert page.locator("input[name=section]").get_attribute("value") == "A"
    assert page.locator("#progress-label").inner_text() == "Phần 1 trong tối đa 8 phần"

    # Section A as a citizen answers it: a required answer left out, then given.
    page.locator("#q-A01").get_by_label("Nữ", exact=True).check()
    page.locator("button[value=next]").click()
    expect(page.locator("#error-summary")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "error-summary"  # the form's script
    page.locator("#q-A02 input").first.check()
    page.locator("button[value=next]").click()
    expect(page.locator("input[name=section]")).to_have_value("B1")
    assert page.locator("progress").get_attribute("value") == "2"

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".preview-banner")).to_contain_text("answers are not saved")
    assert page.locator("input[name=section]").get_attribute("value") == "B1"  # still there
    page.get_by_role("button", name="Back").click()
    expect(page.locator("#q-A01").get_by_label("Female", exact=True)).to_be_checked()
    assert not Response.objects.exists() and not ResponseDraft.objects.exists()


def test_start_page_fits_a_360_pixel_phone(browser, live_server, sipas) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert "demo" in page.locator("main").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_role("button", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    context.close()


def test_an_english_browser_gets_english_pages(browser, live_server, sipas) -> None:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Open survey rounds" in page.locator("main").inner_text()
    context.close()
