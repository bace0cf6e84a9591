"""Action plans in a real browser: a coordinator creates a task for a weakness from the
prefilled form (round, unit and indicator in the query string, as the diagnosis page links),
the agency's staff moves it to in progress with a note, and the plan page shows it beside
the indicator's change in the later rounds."""

from __future__ import annotations

from typing import Any

import pytest

from plans.models import Task, TaskNote
from tests.support.browser import create_task, log_in, report_progress
from tests.support.plans import build_frame

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_a_task_from_a_weakness_is_updated_by_its_agency_and_followed_up(
    browser: Any, live_server: Any
) -> None:
    frame = build_frame()
    coordinator = log_in(browser, live_server, "coordinator")
    coordinator.goto(f"{live_server.url}/plans/tasks/new/?round=r2022&unit=19&indicator=SAT")
    assert coordinator.get_by_label("Round").input_value() == "r2022"
    assert coordinator.get_by_label("Unit").input_value() == "19"
    assert coordinator.get_by_label("Indicator").input_value() == "SAT"
    create_task(
        coordinator,
        agency="19-SXD",
        action="Rút ngắn thời gian giải quyết hồ sơ",
        days="20",
        owner=frame["staff_x"],
    )
    task = Task.objects.get()
    assert (task.agency.code, task.owner, task.status) == ("19-SXD", frame["staff_x"], "planned")

    staff = report_progress(browser, live_server, "staff-x", task, "Đã rà soát quy trình một cửa")
    assert TaskNote.objects.get().text == "Đã rà soát quy trình một cửa"

    coordinator.goto(f"{live_server.url}/plans/r2022/19/")
    section = coordinator.locator(f"#task-{task.pk}")
    assert section.locator(".status").inner_text() == "in progress"
    assert "Đã rà soát quy trình một cửa" in section.inner_text()
    later = section.locator("tr[data-round=r2025]").inner_text()
    assert "19-2025" in later and "+12.0" in later and "0.016" in later and "yes" in later
    staff.context.close()
    coordinator.context.close()
