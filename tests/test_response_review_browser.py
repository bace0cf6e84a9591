"""Review in a real browser: a reviewer excludes responses with the admin action and its
form; a superuser then finds who did it in the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from feedback.models import Response
from tests.support.browser import PASSWORD, log_in
from tests.support.responses import post_responses

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reviewer_excludes_responses_and_the_superuser_sees_who(
    admin_page: Any, browser: Any, live_server: Any, django_user_model: Any
) -> None:
    post_responses(Client(), 3)
    reviewer = django_user_model.objects.create_user("thu", password=PASSWORD, is_staff=True)
    reviewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_response", "review_response"])
    )
    chosen = list(Response.objects.order_by("pk")[:2])
    page = log_in(
        browser, live_server, "thu", locale="vi-VN", viewport={"width": 1280, "height": 900}
    )
    page.goto(f"{live_server.url}/admin/feedback/response/")
    for response in chosen:
        page.check(f"input.action-select[value='{response.pk}']")
    page.select_option("select[name=action]", "review_responses")
    page.click("button[name=index]")
    form = page.locator("#review-form")
    form.wait_for()
    assert all(r.receipt in page.content() for r in chosen)
    page.select_option("#id_state", "excluded")
    page.click("#review-form input[type=submit]")  # no reason: refused, nothing stored
    page.locator(".errorlist").first.wait_for()
    assert not Response.objects.filter(review_state="excluded").exists()
    page.select_option("#id_reason", "duplicate")
    page.fill("#id_note", "cùng hộ gia đình")
    page.click("#review-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/feedback/response/")
    assert page.locator(".messagelist .success").count() == 1
    excluded = Response.objects.filter(review_state="excluded").order_by("pk")
    assert [r.pk for r in excluded] == [r.pk for r in chosen]
    assert {(r.review_reason, r.reviewed_by_id) for r in excluded} == {("duplicate", reviewer.pk)}
    assert Response.objects.count() == 3  # nothing deleted
    # The reviewer has no audit trail to look at.
    page.goto(f"{live_server.url}/admin/auditlog/logentry/")
    assert (
        "403" in page.title() or page.locator("text=403").count() or "Forbidden" in page.content()
    )
    page.context.close()

    # The superuser (admin_page) finds the two entries and who made them.
    admin_page.goto(f"{live_server.url}/admin/auditlog/logentry/?q={chosen[0].receipt}")
    rows = admin_page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "thu" in rows.first.inner_text() and "review_state" in rows.first.inner_text()
    rows.first.locator("th a").click()
    admin_page.wait_for_load_state()
    detail = admin_page.content()
    assert "excluded" in detail and "accepted" in detail and "duplicate" in detail
