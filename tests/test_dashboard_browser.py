"""The dashboard in a real browser (headless Chromium through Playwright): charts, text
alternatives, both languages, a 360-pixel phone; screenshots go to var/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from scoring.models import Score
from tests.support.dashboard import published, rank_shown  # noqa: F401 (published: a fixture)

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("published")]


@pytest.fixture
def phone(browser, request) -> Iterator[object]:
    """A page 360 CSS pixels wide in the language of the test's parameter."""
    language = request.node.callspec.params["language"]
    locale = "vi-VN" if language == "vi" else "en-GB"
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale=locale)
    yield context.new_page()
    context.close()


def check_charts(page, count: int) -> None:
    """Each chart is an image named by its visible caption, described by a summary, and
    followed by a table holding its values."""
    charts = page.locator("svg.chart")
    assert charts.count() == count
    for i in range(count):
        chart = charts.nth(i)
        assert chart.is_visible() and chart.get_attribute("role") == "img"
        caption = page.locator(f"#{chart.get_attribute('aria-labelledby')}")
        assert caption.evaluate("e => e.tagName") == "FIGCAPTION" and caption.inner_text()
        assert page.locator(f"#{chart.get_attribute('aria-describedby')}").inner_text()
        figure = chart.locator("xpath=ancestor::figure[1]")
        figure.locator("details > summary").click()
        table = figure.locator("table")
        assert table.is_visible() and table.locator("tbody tr").count() >= 1
        box = chart.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360


def fits_the_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_round_page_draws_the_ranking_with_its_text_alternative(
    phone, live_server, language
) -> None:
    page = phone
    page.goto(f"{live_server.url}/results/demo/")
    assert page.locator("html").get_attribute("lang") == language
    check_charts(page, 1)
    # Hà Nội and Hà Giang have one response each: drawn without a bar, listed in the table
    assert page.locator("svg.chart rect.bar").count() == 3
    assert page.locator("figure tbody tr").count() == 5
    # each rank with its 95% interval, as stored, in the page's language
    ranked = Score.objects.filter(
        run__round__code="demo", run__status="published", indicator__code="SIPAS", scope="unit"
    ).exclude(rank=None)
    cells = page.locator("figure tbody tr td:first-child").all_inner_texts()
    assert sorted(c for c in cells if c) == sorted(rank_shown(s, language) for s in ranked)
    note = page.locator("p.rank-note")
    assert note.is_visible() and "95%" in note.inner_text()
    assert fits_the_phone(page)
    screenshot(page, f"dashboard-round-ranks-{language}")
    assert fits_the_phone(page)
    page.select_option("#id_indicator", "SVC.2")
    page.locator(".indicator-picker button[type=submit]").click()
    page.wait_for_url("**indicator=SVC.2")
    check_charts(page, 1)
    assert fits_the_phone(page)
    screenshot(page, f"dashboard-round-{language}")


@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_unit_page_draws_breakdown_and_trend_with_their_text_alternatives(
    phone, live_server, language
) -> None:
    page = phone
    page.goto(f"{live_server.url}/results/r2025/units/22/")
    assert page.locator("html").get_attribute("lang") == language
    check_charts(page, 3)  # elements, policy groups, trend over three rounds
    assert page.locator("#trend tbody tr").count() == 3
    assert fits_the_phone(page)
    screenshot(page, f"dashboard-unit-{language}")


@pytest.mark.parametrize("language", ["vi"])
def test_the_language_switch_keeps_the_reader_on_the_results_page(
    phone, live_server, language
) -> None:
    page = phone
    page.goto(f"{live_server.url}/results/r2025/units/19-2025/")
    assert page.locator("html").get_attribute("lang") == "vi"
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.url.endswith("/results/r2025/units/19-2025/")
    assert "created on" in page.locator("#trend-section").inner_text()
    assert fits_the_phone(page)
