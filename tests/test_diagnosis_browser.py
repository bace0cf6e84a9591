"""The diagnosis page in a real browser (headless Chromium through Playwright)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("diagnosis_rounds")]


def test_the_diagnosis_page_draws_its_charts_with_text_alternatives(browser, live_server) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="vi-VN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/results/demo/units/19/")
        page.click("#diagnosis-link")
        page.wait_for_url("**/results/demo/units/19/diagnosis/")
        assert page.locator("h1").inner_text() == "Phân tích: Thái Nguyên"
        charts = page.locator("svg.chart")
        assert charts.count() == 3  # index and elements, the matrix, the region
        for i in range(charts.count()):
            chart = charts.nth(i)
            assert chart.is_visible() and chart.get_attribute("role") == "img"
            caption = page.locator(f"#{chart.get_attribute('aria-labelledby')}")
            assert caption.evaluate("e => e.tagName") == "FIGCAPTION" and caption.inner_text()
            assert page.locator(f"#{chart.get_attribute('aria-describedby')}").inner_text()
            box = chart.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 360
        # The matrix names S01 as the item to act on first, in the chart and the table.
        matrix = page.locator("svg.matrix")
        assert "S01" in matrix.inner_html()
        act_first = page.locator("ul.quadrants li").first.inner_text()
        assert act_first.startswith("Ưu tiên cải thiện") and "S01" in act_first
        assert page.locator("table.items tbody tr").count() == 33
        assert page.locator("table.indicators tbody tr").count() >= 45
        shots = Path(settings.BASE_DIR) / "var" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        matrix.screenshot(path=str(shots / "diagnosis-matrix-vi.png"))
        pdf = page.locator("#diagnosis-pdf")
        assert pdf.get_attribute("href").endswith("/diagnosis.pdf?lang=vi")
    finally:
        context.close()
