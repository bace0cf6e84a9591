"""Browser sessions for tests: a user logged in to the admin, and the steps several browser
tests take on the admin's question pages and the action plans' task pages."""

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


EMPTY_CHOICE_ROWS = 2  # the rows the "add a question" page gives for choices


def fill_conditional_question(
    page: Any,
    code: str,
    label_vi: str,
    *,
    shown_if_yes: str,
    choices: list[tuple[str, str]],
    position: str = "",
) -> None:
    """Fill in (not save) the admin's "add a question" page: a single choice ``code``,
    excluded from the indices, shown when the yes/no question ``shown_if_yes`` is yes, with
    ``choices`` (code, Vietnamese label); at ``position`` if given."""
    if position:
        page.fill("#id_position", position)
    page.fill("#id_code", code)
    page.select_option("#id_type", "single")
    page.fill("#id_label_vi", label_vi)
    page.select_option("#id_show_if_question", label=shown_if_yes)
    page.fill("#id_show_if_values", "[true]")
    page.check("#id_excluded_from_indices")
    for _more in choices[EMPTY_CHOICE_ROWS:]:  # a row for each choice beyond those given
        page.locator("#choices-group .add-row a").click()
    for index, (choice, label) in enumerate(choices):
        page.fill(f"#id_choices-{index}-code", choice)
        page.fill(f"#id_choices-{index}-label_vi", label)


# The ways a citizen may have done a procedure: the choices of the conditional question.
WAYS = [("truc_tiep", "Trực tiếp"), ("truc_tuyen", "Trực tuyến"), ("ca_hai", "Cả hai")]


def fill_sipas_conditional_question(page: Any) -> None:
    """``fill_conditional_question`` on the "add a question" page of SIPAS's section B3:
    Q8_4a at position 5, one of ``WAYS``, shown when Q8_4 is yes."""
    fill_conditional_question(
        page,
        "Q8_4a",
        "Ông/Bà làm thủ tục bằng cách nào?",
        shown_if_yes="Q8_4",
        choices=WAYS,
        position="5",
    )


def create_task(page: Any, *, agency: str, action: str, days: str, owner: Any) -> None:
    """On the prefilled "new task" page of an action plan: the task for ``agency`` (its
    code), to bring the indicator above the national value within ``days`` working days,
    owned by ``owner``; created, its page shown."""
    page.get_by_label("Agency").select_option(agency)
    page.get_by_label("What is to be done").fill(action)
    page.get_by_label("Target", exact=True).select_option("above_national")
    page.get_by_label("Deadline in working days").fill(days)
    page.get_by_label("Owner").select_option(str(owner.pk))
    page.get_by_role("button", name="Create the task").click()
    page.wait_for_url("**/plans/tasks/*/")


def report_progress(browser: Any, live_server: Any, username: str, task: Any, note: str) -> Any:
    """The agency's staff member ``username`` logs in, moves the task to in progress with
    ``note``; their page, showing the task's new status."""
    staff = log_in(browser, live_server, username)
    staff.goto(f"{live_server.url}/plans/tasks/{task.pk}/")
    staff.get_by_label("New status").select_option("in_progress")
    staff.get_by_label("Progress note").fill(note)
    staff.get_by_role("button", name="Save").click()
    staff.wait_for_load_state()
    assert staff.locator("#task-status").inner_text() == "in progress"
    return staff
