"""The agency list narrows to the province chosen, in a real browser: at once with
JavaScript, by a second step without it; the script breaks no Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from feedback.models import Petition, ResponseDraft
from surveys.models import Agency

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def listed(page: Any) -> list[str]:
    """The agencies the select offers now (its blank first option left out)."""
    return [
        v
        for v in page.locator("#id_agency option").evaluate_all(
            "options => options.map(o => o.value)"
        )
        if v
    ]


def codes_of(unit: str) -> list[str]:
    return sorted(Agency.objects.filter(unit__code=unit).values_list("code", flat=True))


def watched(browser: Any, live_server: Any, path: str) -> tuple[Any, list[str]]:
    """The page at ``path`` in English, and the list its Content-Security-Policy violations
    and script errors are added to."""
    page = browser.new_context(locale="en-GB").new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}{path}")
    return page, problems


def test_the_survey_start_narrows_the_agencies_as_the_province_changes(
    browser, live_server, agency_round
) -> None:
    page, problems = watched(browser, live_server, "/rounds/swap/")
    assert not page.locator("#agency-field").is_visible()  # nothing to list yet

    page.get_by_label("Which province or city do you want to rate?").select_option(label="Hà Nội")
    assert page.locator("#agency-field").is_visible()
    assert sorted(listed(page)) == codes_of("01")  # Hà Nội, unchanged by the merger: 3
    page.get_by_label("Which agency did you deal with? (optional)").select_option("01-TTPVHCC")

    page.get_by_label("Which province or city do you want to rate?").select_option(label="Cà Mau")
    assert listed(page) == ["96-TTPVHCC"]
    assert page.locator("#id_agency").input_value() == ""  # Hà Nội's centre is gone
    page.get_by_label("Which agency did you deal with? (optional)").select_option("96-TTPVHCC")
    with page.expect_navigation():
        page.get_by_role("button", name="Start the questionnaire").click()

    assert not page.url.endswith("/rounds/swap/")  # the questionnaire's first page
    draft = ResponseDraft.objects.get()
    assert (draft.unit.code, draft.agency.code) == ("96", "96-TTPVHCC")
    assert problems == []


def test_the_petition_form_narrows_the_agencies_as_the_province_changes(
    browser, live_server, agency_round
) -> None:
    page, problems = watched(browser, live_server, "/petitions/new/")
    province = page.get_by_label("Which province or city?")
    province.select_option(label="Cà Mau")
    assert sorted(listed(page)) == codes_of("96-2025")
    province.select_option(label="Hà Nội")
    assert sorted(listed(page)) == codes_of("01")

    page.get_by_label("What is it about?").select_option("road")
    page.get_by_label("Which agency? (optional)").select_option("01-SXD")
    page.get_by_label("Describe the problem or your proposal").fill("Cống thoát nước bị tắc.")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/petitions/track/*/?new=1")
    assert Petition.objects.get().agency.code == "01-SXD"
    assert problems == []


def test_without_javascript_the_agency_is_chosen_on_a_second_step(
    browser, live_server, agency_round
) -> None:
    page = browser.new_context(locale="en-GB", java_script_enabled=False).new_page()
    page.goto(f"{live_server.url}/rounds/swap/")
    assert not page.locator("#agency-field").is_visible()
    page.get_by_label("Which province or city do you want to rate?").select_option(label="Cà Mau")
    with page.expect_navigation():
        page.get_by_role("button", name="Start the questionnaire").click()

    assert not ResponseDraft.objects.exists()  # a step: nothing started yet
    assert page.locator("#agency-step").is_visible()
    assert listed(page) == ["96-TTPVHCC"]
    page.get_by_label("Which agency did you deal with? (optional)").select_option("96-TTPVHCC")
    with page.expect_navigation():
        page.get_by_role("button", name="Start the questionnaire").click()
    draft = ResponseDraft.objects.get()
    assert (draft.unit.code, draft.agency.code) == ("96", "96-TTPVHCC")
