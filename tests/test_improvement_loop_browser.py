"""From ranking to improvement in a real browser (issue 17's acceptance): a province's
coordinator opens the diagnosis of the province, plans an action for a weakness, the
agency's staff updates the task, and after the next round's run the plan page shows how the
indicator moved.

The data are ``tests/test_diagnosis.py``'s: the round ``demo`` over Thái Nguyên (19), Lạng
Sơn (20) and Quảng Ninh (22), where Lạng Sơn satisfied no service criterion. The next round
(``demo-next``, same questionnaire, a later period) has Lạng Sơn's respondents satisfied with
everything, and is computed by the real engine before the plan page is read again.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from feedback.models import Response
from feedback.services import submit_response
from plans.models import PlanStaff, Task, TaskNote
from scoring.models import Score
from scoring.services import recompute_round
from surveys import scoping
from surveys.models import Agency, Round, Unit
from tests.factories import RoundFactory
from tests.support.browser import create_task, log_in, report_progress
from tests.support.responses import DIAGNOSIS_UNITS, valid_answers

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
PASSWORD = "a-long-password-for-tests"


def next_round(demo: Round) -> Round:
    """A later round of the same questionnaire, open now, over the same units."""
    return RoundFactory(
        code="demo-next",
        name_vi="Vòng sau",
        period_start=demo.period_end + dt.timedelta(days=1),
        period_end=demo.period_end + dt.timedelta(days=365),
        opens_at=timezone.now() - dt.timedelta(hours=1),
        version=demo.version,
        units=Unit.objects.filter(code__in=DIAGNOSIS_UNITS),
    )


def test_a_weakness_becomes_a_task_that_is_followed_up_in_the_next_round(
    diagnosis_rounds: dict[str, Any],
    browser: Any,
    live_server: Any,
) -> None:
    lang_son = Unit.objects.get(code="20")
    agency = Agency.objects.create(unit=lang_son, code="20-SNV", name_vi="Sở Nội vụ Lạng Sơn")
    users = get_user_model().objects
    coordinator = users.create_user("coordinator", password=PASSWORD)
    scoping.appoint(user=coordinator, unit=lang_son)  # province staff coordinate its plans
    agency_staff = users.create_user("sngv-staff", password=PASSWORD, is_staff=True)
    PlanStaff.objects.create(user=agency_staff, unit=lang_son, agency=agency)

    page = log_in(browser, live_server, "coordinator")
    page.goto(f"{live_server.url}/results/demo/units/20/diagnosis/")
    weakness = page.locator("ol.weaknesses li").first
    link = weakness.locator("a.plan-task")
    query = parse_qs(urlsplit(link.get_attribute("href")).query)
    indicator = query["indicator"][0]
    assert (query["round"], query["unit"]) == (["demo"], ["20"])
    assert weakness.inner_text().startswith(indicator)
    link.click()
    page.wait_for_url("**/plans/tasks/new/**")
    assert page.get_by_label("Indicator").input_value() == indicator
    create_task(
        page,
        agency="20-SNV",
        action="Niêm yết công khai thủ tục tại bộ phận một cửa",
        days="30",
        owner=agency_staff,
    )
    task = Task.objects.get()
    assert (task.round.code, task.unit, task.agency, task.indicator_code) == (
        "demo",
        lang_son,
        agency,
        indicator,
    )

    staff = report_progress(browser, live_server, "sngv-staff", task, "Đã niêm yết tại 11 xã")
    assert TaskNote.objects.get().author == agency_staff

    # The next round: Lạng Sơn's respondents now satisfied with everything; the real run.
    later = next_round(diagnosis_rounds["demo"])
    for code in DIAGNOSIS_UNITS:
        for _ in range(4):
            submit_response(
                round_code=later.code,
                unit_code=code,
                answers=valid_answers(),
                channel=Response.Channel.API,
                client_id=uuid.uuid4(),
            )
    run = recompute_round(round_code=later.code)
    before = Score.objects.get(
        run=diagnosis_rounds["run"], unit=lang_son, indicator__code=indicator
    )
    after = Score.objects.get(run=run, unit=lang_son, indicator__code=indicator)
    assert after.value > before.value

    page.goto(f"{live_server.url}/plans/demo/20/")
    row = page.locator(f"#task-{task.pk} tr[data-round=demo-next]").inner_text()
    change = after.value - before.value
    assert re.search(rf"\+{change:.1f}\b", row), row
    assert "in progress" in page.locator(f"#task-{task.pk} .status").inner_text()
    staff.context.close()
    page.context.close()
