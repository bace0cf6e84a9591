"""Pages in a real browser (headless Chromium through Playwright)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def admin_page(browser, live_server, sipas, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.org", "a-long-password")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "a-long-password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    context.close()


def test_admin_previews_the_sipas_questionnaire_in_both_languages(
    admin_page, live_server, sipas
) -> None:
    page = admin_page
    page.goto(f"{live_server.url}/admin/surveys/questionnaireversion/{sipas.pk}/change/")
    page.get_by_role("link", name="Xem trước").or_(
        page.get_by_role("link", name="Preview")
    ).first.click()
    expect(page.locator(".preview > fieldset")).to_have_count(8)  # waits for the page
    s01 = page.locator("#q-S01")
    assert s01.locator("legend").inner_text().startswith("S01.")
    assert s01.get_by_label("Rất hài lòng").is_disabled()
    assert "Q8_4" in s01.inner_text()
    vietnamese = s01.locator("legend").inner_text()

    page.get_by_role("link", name="English").click()
    english = page.locator("#q-S01 legend").inner_text()
    assert english != vietnamese
    assert page.locator("#q-S01").get_by_label("Very satisfied").count() == 1


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
