"""A citizen files a petition in a real browser and follows it by its tracking code."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import translation

from feedback.models import Petition
from feedback.petitions import services
from tests.support.petitions import make_agency, make_category, make_unit

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_citizen_files_a_petition_and_follows_it_by_its_code(browser, live_server) -> None:
    unit = make_unit("T01", "Tỉnh Thử")
    make_agency(unit, "SO-TN", "Sở Tài nguyên")
    make_category("waste", days=5, name_en="Waste collection")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
    page = context.new_page()

    page.goto(f"{live_server.url}/petitions/new/")
    page.get_by_role("button", name="Send").click()  # nothing filled in: errors first
    assert page.locator("#error-summary").is_visible()
    assert page.locator("#id_description").get_attribute("aria-invalid") == "true"

    page.get_by_label("What is it about?").select_option(label="Waste collection")
    page.get_by_label("Which province or city?").select_option(label="Tỉnh Thử")
    page.get_by_label("Which agency? (optional)").select_option(label="Sở Tài nguyên (en)")
    page.get_by_label("Describe the problem or your proposal").fill(
        "Rác không được thu gom <3 ngày>."
    )
    page.get_by_label("E-mail").fill("hoa.le@example.vn")
    page.get_by_label("I agree that my contact details are kept").check()
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/petitions/track/*/?new=1")

    code = page.locator("#tracking-code").inner_text()
    petition = Petition.objects.get(tracking_code=code)
    assert petition.contact_email == "hoa.le@example.vn"
    assert page.locator("#description").inner_text() == "Rác không được thu gom <3 ngày>."
    assert "hoa.le@example.vn" not in page.content()

    admin = get_user_model().objects.create_superuser("root", "root@example.org", "x")
    for status in ("assigned", "in_progress"):
        services.change_petition_status(petition_id=petition.pk, actor=admin, status=status)
    services.change_petition_status(
        petition_id=petition.pk, actor=admin, status="resolved", reply="Đã thu gom ngày 2/3."
    )

    other = context.new_page()
    other.goto(f"{live_server.url}/petitions/track/")
    other.get_by_label("Tracking code").fill(code.replace("-", "").lower())
    other.get_by_role("button", name="Show").click()
    other.wait_for_url(f"**/petitions/track/{code}/")
    with translation.override("en"):
        resolved = str(Petition.Status.RESOLVED.label)
    assert other.locator("#status").inner_text() == resolved
    assert other.locator("#reply").inner_text() == "Đã thu gom ngày 2/3."
    assert other.locator("#history li").count() == 4

    other.get_by_label("4. Satisfied").check()
    other.get_by_role("button", name="Send my rating").click()
    other.wait_for_url("**/?rated=1")
    assert other.locator("#rating").inner_text() == "You rated the handling 4 out of 5."
    assert other.locator("#rating-form").count() == 0
    petition.refresh_from_db()
    assert petition.rating == 4
    context.close()
