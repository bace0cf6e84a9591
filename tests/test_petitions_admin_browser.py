"""Staff handle petitions through the admin pages in a real browser, in Vietnamese: a
coordinator assigns, the agency's handler moves one to in progress and resolves it with a
reply, another is rejected with a reason; refusals say why and the history reads in
Vietnamese."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.utils import translation
from django.utils.translation import gettext

from feedback.models import Petition
from tests.support.browser import log_in
from tests.support.petitions import (
    make_staff,
    petition_desk,
    submit,
)

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
Status = Petition.Status


def vi(text: Any) -> str:
    with translation.override("vi"):
        return str(gettext(text) if isinstance(text, str) else text)


def open_petition(page: Any, live_server: Any, petition: Petition) -> None:
    page.goto(f"{live_server.url}/admin/feedback/petition/{petition.pk}/change/")


def change(page: Any, status: str, **fields: str) -> None:
    """Fill the change-status fields and save, staying on the page."""
    page.locator("#id_new_status").select_option(label=vi(Status(status).label))
    if "agency" in fields:
        page.locator("#id_to_agency").select_option(label=fields["agency"])
    if "assignee" in fields:
        page.locator("#id_assign_to").select_option(label=fields["assignee"])
    for name in ("reply_text", "reason", "note"):
        if name in fields:
            page.locator(f"#id_{name}").fill(fields[name])
    page.locator("input[name=_continue]").click()
    page.wait_for_load_state()


def status_on_page(page: Any) -> str:
    return page.locator(".field-status .readonly").inner_text().strip()


def test_staff_handle_petitions_through_every_status_in_the_admin(browser, live_server) -> None:
    unit, (agency_a, _) = petition_desk(
        ("SO-A", "Sở Xây dựng Tỉnh Thử"), ("SO-B", "Sở Y tế Tỉnh Thử")
    )
    make_staff("can-bo", unit=unit, agency=agency_a)
    make_staff("dieu-phoi", unit=unit, agency=None)
    mail.outbox.clear()
    lamp = submit(
        "road",
        "T01",
        description="Đèn đường hỏng ở ngõ 12.",
        contact_email="lan.tran@example.vn",
        contact_consent=True,
    )
    duplicate = submit("road", "T01", description="Đèn đường ngõ 12 (gửi lại).")
    assert [m.to for m in mail.outbox] == [["lan.tran@example.vn"]]  # the filing confirmed

    coordinator = log_in(browser, live_server, "dieu-phoi", locale="vi-VN")
    open_petition(coordinator, live_server, lamp)
    assert status_on_page(coordinator) == vi(Status.RECEIVED.label)
    change(
        coordinator,
        "assigned",
        agency="Sở Xây dựng Tỉnh Thử",
        assignee="can-bo",
        note="Giao Sở Xây dựng.",
    )
    assert coordinator.locator(".messagelist .success").count() == 1
    assert status_on_page(coordinator) == vi(Status.ASSIGNED.label)

    handler = log_in(browser, live_server, "can-bo", locale="vi-VN")
    open_petition(handler, live_server, lamp)
    change(handler, "in_progress")
    assert status_on_page(handler) == vi(Status.IN_PROGRESS.label)
    # A refused change: resolving without a reply says why and saves nothing.
    change(handler, "resolved")
    error = handler.locator(".field-reply_text .errorlist")
    assert error.inner_text().strip() == vi("Write the reply the citizen will read.")
    assert handler.locator(".errornote").is_visible()
    lamp.refresh_from_db()
    assert lamp.status == Status.IN_PROGRESS
    change(handler, "resolved", reply_text="Đã thay bóng đèn ngày 3/12.")
    assert status_on_page(handler) == vi(Status.RESOLVED.label)
    assert handler.locator("#petition-closed").is_visible()  # nothing more to change
    lamp.refresh_from_db()
    assert (lamp.status, lamp.reply, lamp.assignee.username) == (
        "resolved",
        "Đã thay bóng đèn ngày 3/12.",
        "can-bo",
    )
    assert len(mail.outbox) == 2 and lamp.tracking_code in mail.outbox[1].subject

    history = handler.locator("#petition-history")
    headers = history.locator("th").all_inner_texts()
    assert [h.strip().casefold() for h in headers] == [
        vi(text).casefold() for text in ("When", "Status", "By", "Agency", "Internal note")
    ]
    assert "agency" not in " ".join(headers).casefold()
    steps = history.locator("tbody tr td:nth-child(2)").all_inner_texts()
    received, assigned, in_progress, resolved = (
        vi(s.label) for s in (Status.RECEIVED, Status.ASSIGNED, Status.IN_PROGRESS, Status.RESOLVED)
    )
    with translation.override("vi"):
        filed = gettext("%(status)s (filed by the citizen)") % {"status": received}
    assert [s.strip() for s in steps] == [
        filed,
        f"{received} → {assigned}",
        f"{assigned} → {in_progress}",
        f"{in_progress} → {resolved}",
    ]
    assert "∅" not in history.inner_text()
    assert history.locator("tbody tr").nth(1).inner_text().count("Giao Sở Xây dựng.") == 1

    # The second one: rejected, first without a reason (refused), then with one.
    open_petition(coordinator, live_server, duplicate)
    change(coordinator, "rejected")
    error = coordinator.locator(".field-reason .errorlist")
    assert error.inner_text().strip() == vi("Give the reason for rejecting the petition.")
    change(coordinator, "rejected", reason="Trùng với phản ánh đã gửi trước đó.")
    assert status_on_page(coordinator) == vi(Status.REJECTED.label)
    duplicate.refresh_from_db()
    assert duplicate.rejection_reason == "Trùng với phản ánh đã gửi trước đó."
    assert duplicate.events.count() == 2
