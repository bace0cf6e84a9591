"""Browser sessions for tests: a user logged in to the admin."""

from __future__ import annotations

from typing import Any

PASSWORD = "a-long-password-for-tests"  # of every account the test builders create


def log_in(
    browser: Any, live_server: Any, username: str, *, locale: str = "en-GB", **context: Any
) -> Any:
    """A page of a new browser context (``locale``, any other ``context`` option) logged in to
    the admin as ``username``, on the admin's index."""
    page = browser.new_context(locale=locale, **context).new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url("**/admin/")
    return page


CONDITIONAL_CHOICES = [
    ("truc_tiep", "Trực tiếp"),
    ("truc_tuyen", "Trực tuyến"),
    ("ca_hai", "Cả hai"),
]


def fill_conditional_question(page: Any) -> None:
    """Fill in (not save) the admin's "add a question" page of SIPAS's section B3: Q8_4a at
    position 5, a single choice of ``CONDITIONAL_CHOICES`` shown when Q8_4 is yes."""
    page.fill("#id_position", "5")
    page.fill("#id_code", "Q8_4a")
    page.select_option("#id_type", "single")
    page.fill("#id_label_vi", "Ông/Bà làm thủ tục bằng cách nào?")
    page.select_option("#id_show_if_question", label="Q8_4")
    page.fill("#id_show_if_values", "[true]")
    page.check("#id_excluded_from_indices")
    page.locator("#choices-group .add-row a").click()  # a third row beside the two given
    for index, (code, label) in enumerate(CONDITIONAL_CHOICES):
        page.fill(f"#id_choices-{index}-code", code)
        page.fill(f"#id_choices-{index}-label_vi", label)
