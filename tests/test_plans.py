"""Action plans (issue 17, item 4): who sees and updates which task, the task form and its
refusals, "did it move?" against hand-computed values, reminders, exports, audit trail,
evidence files, and hostile input."""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.conf import settings as django_settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st
from openpyxl import load_workbook
from pypdf import PdfReader

from config.celery import app as celery_app
from plans import selectors, services
from plans.models import Task, TaskNote, TaskReminder
from tests.support.hostile_input import PROPERTY, STRINGS, assert_handled, post_form
from tests.support.plans import PASSWORD, build_frame

pytestmark = pytest.mark.django_db

NEW = "/plans/tasks/new/"
MONDAY = dt.date(2026, 3, 2)  # no holiday in the next weeks


@pytest.fixture
def frame(db: None) -> dict[str, Any]:
    return build_frame()


def client_of(user: Any) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def make_task(frame: dict[str, Any], agency: str = "x", **fields: Any) -> Task:
    data = services.TaskInput(
        round="r2022",
        unit="19",
        agency=frame[f"agency_{agency}"].code,
        indicator="SAT",
        title=fields.pop("title", "Rút ngắn thời gian giải quyết hồ sơ"),
        target_kind=fields.pop("target_kind", "above_national"),
        target_value=fields.pop("target_value", ""),
        working_days=fields.pop("working_days", "3"),
        owner=fields.pop("owner", ""),
    )
    return services.create_task(user=frame["coordinator"], data=data, today=MONDAY)


@pytest.fixture
def tasks(frame: dict[str, Any]) -> dict[str, Task]:
    return {
        "x": make_task(frame, "x", owner=str(frame["staff_x"].pk)),
        "y": make_task(frame, "y", title="Công khai thủ tục", target_kind="raise_by",
                       target_value="5"),
    }  # fmt: skip


# --- Permissions -----------------------------------------------------------------------------

# role → (sees X, sees Y, may update X, may update Y)
ROLES = {
    "anonymous": (False, False, False, False),
    "other_staff": (False, False, False, False),
    "staff_x": (True, False, True, False),
    "staff_y": (False, True, False, True),
    "coordinator": (True, True, True, True),
    "national": (True, True, True, True),
    "admin": (True, True, True, True),
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_and_updates_only_its_tasks(
    frame: dict[str, Any], tasks: dict[str, Task], role: str
) -> None:
    user = None if role == "anonymous" else frame[role]
    client = client_of(user)
    sees_x, sees_y, updates_x, updates_y = ROLES[role]
    for key, sees, updates in (("x", sees_x, updates_x), ("y", sees_y, updates_y)):
        task = tasks[key]
        page = client.get(f"/plans/tasks/{task.pk}/")
        if role == "anonymous":
            assert page.status_code == 302 and "/admin/login/" in page["Location"]
        else:
            assert page.status_code == (200 if sees else 404)
        answer = client.post(f"/plans/tasks/{task.pk}/", {"status": "in_progress", "text": "x"})
        assert answer.status_code == (302 if updates else 302 if user is None else 404)
        task.refresh_from_db()
        assert task.status == ("in_progress" if updates else "planned")
        assert selectors.tasks_visible_to(user or _anonymous()).filter(pk=task.pk).exists() == sees
    plan = client.get("/plans/r2022/19/")
    if role == "anonymous":
        assert plan.status_code == 302
    elif not (sees_x or sees_y):
        assert plan.status_code == 404
    else:
        body = plan.content.decode()
        assert (f"task-{tasks['x'].pk}" in body) == sees_x
        assert (f"task-{tasks['y'].pk}" in body) == sees_y
    for suffix in ("plan.xlsx", "plan.pdf"):
        export = client.get(f"/plans/r2022/19/{suffix}")
        assert export.status_code == (302 if user is None else 200 if sees_x or sees_y else 404)
    index = client.get("/plans/")
    assert index.status_code == (302 if user is None else 200 if sees_x or sees_y else 404)


def _anonymous() -> Any:
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


def test_only_coordinators_create_tasks_and_forged_ids_are_refused(
    frame: dict[str, Any], tasks: dict[str, Task]
) -> None:
    before = Task.objects.count()
    form = {"round": "r2022", "unit": "19", "agency": "19-SXD", "indicator": "SAT",
            "title": "Việc mới", "target_kind": "at_least", "target_value": "75",
            "working_days": "10", "owner": ""}  # fmt: skip
    for role in ("staff_x", "other_staff"):
        assert client_of(frame[role]).post(NEW, form).status_code == 403
    assert Client().post(NEW, form).status_code == 302  # to the login page
    coordinator = client_of(frame["coordinator"])
    # another unit's agency, an owner of another agency, an unknown indicator, another unit
    for field, value in [
        ("agency", "01-SXD"),
        ("owner", str(frame["staff_y"].pk)),
        ("owner", "999999"),
        ("indicator", "NOPE"),
        ("round", "r2025"),  # does not cover 19
        ("target_value", "1e400"),
        ("working_days", "0"),
    ]:
        answer = coordinator.post(NEW, {**form, field: value})
        assert answer.status_code == 400, (field, value)
        assert f'id="err-{field}"' in answer.content.decode() or field == "round"
    assert coordinator.post(NEW, {**form, "unit": "01", "agency": "01-SXD"}).status_code == 403
    # a task of another agency cannot be reached by its id, nor its evidence
    assert client_of(frame["staff_x"]).get(f"/plans/tasks/{tasks['y'].pk}/").status_code == 404
    assert Task.objects.count() == before
    created = coordinator.post(NEW, {**form, "owner": str(frame["staff_x"].pk)})
    assert created.status_code == 302
    task = Task.objects.latest("pk")
    assert (task.agency, task.owner, task.target_value) == (frame["agency_x"], frame["staff_x"], 75)


def test_the_form_is_prefilled_from_the_query_string(frame: dict[str, Any]) -> None:
    page = client_of(frame["coordinator"]).get(f"{NEW}?round=r2022&unit=19&indicator=SAT")
    body = page.content.decode()
    assert page.status_code == 200
    assert '<option value="r2022" selected>' in body
    assert '<option value="19" selected>' in body
    assert 'name="indicator" value="SAT"' in body
    assert "19-SXD" in body and "01-SXD" not in body  # the unit's agencies only


def test_status_rules_and_the_deadline_in_working_days(
    frame: dict[str, Any], tasks: dict[str, Task]
) -> None:
    task = tasks["x"]
    assert task.deadline == dt.date(2026, 3, 5)  # Monday + 3 working days
    staff = client_of(frame["staff_x"])
    answer = staff.post(f"/plans/tasks/{task.pk}/", {"status": "dropped"})
    assert answer.status_code == 400 and 'id="err-drop_reason"' in answer.content.decode()
    assert staff.post(f"/plans/tasks/{task.pk}/", {}).status_code == 400
    assert staff.post(f"/plans/tasks/{task.pk}/", {"status": "done"}).status_code == 302
    answer = staff.post(f"/plans/tasks/{task.pk}/", {"status": "planned"})
    assert answer.status_code == 400 and 'id="err-status"' in answer.content.decode()
    task.refresh_from_db()
    assert task.status == "done"
    other = tasks["y"]
    assert (
        client_of(frame["staff_y"])
        .post(
            f"/plans/tasks/{other.pk}/", {"status": "dropped", "drop_reason": "Gộp vào việc khác"}
        )
        .status_code
        == 302
    )
    other.refresh_from_db()
    assert (other.status, other.drop_reason) == ("dropped", "Gộp vào việc khác")


# --- Did it move? ------------------------------------------------------------------------------


def test_readings_match_hand_computed_changes(
    frame: dict[str, Any], tasks: dict[str, Task]
) -> None:
    readings = selectors.progress([tasks["x"], tasks["y"]])
    base, later, merged, unpublished = readings[tasks["x"].pk]
    assert (base.round_code, base.motivating, base.value, base.national) == ("r2022", True, 60, 70)
    assert base.gap == -10 and base.change is None and base.target_met is False
    assert (later.value, later.change, later.national) == (68, 8, 69)
    assert later.change_p == pytest.approx(math.erfc(1.6 / math.sqrt(2)))
    assert later.change_p == pytest.approx(0.10960, abs=1e-5)
    assert later.change_significant is False and later.target_met is False  # 68 < 69
    assert (merged.unit_code, merged.through_lineage, merged.value) == ("19-2025", True, 72)
    assert merged.change == 12
    assert merged.change_p == pytest.approx(0.016395, abs=1e-6)
    assert merged.change_significant is True and merged.target_met is True  # 72 > 71
    assert (unpublished.round_code, unpublished.published, unpublished.value) == (
        "r2026",
        False,
        None,
    )
    # "raise by 5 points": met once the change reaches 5
    raise_by = readings[tasks["y"].pk]
    assert [r.target_met for r in raise_by] == [None, True, True, None]


def test_a_round_on_another_version_is_read_through_the_version_mapping(
    frame: dict[str, Any], tasks: dict[str, Task]
) -> None:
    from scoring.models import Score
    from surveys.models import Indicator, Round, VersionMapping
    from surveys.services import publish_version, start_draft

    # r2025 is answered on version 2 of the questionnaire (its scores on v2's SAT).
    first = frame["version"]
    second = publish_version(version_id=start_draft(version_id=first.pk).pk)
    r2025 = frame["rounds"]["r2025"]
    Round.objects.filter(pk=r2025.pk).update(version=second)
    Score.objects.filter(run__round=r2025).update(
        indicator=Indicator.objects.get(version=second, code="SAT")
    )
    task = tasks["x"]

    def reading_2025() -> Any:
        task.refresh_from_db()
        return next(r for r in selectors.progress([task])[task.pk] if r.round_code == "r2025")

    # No mapping between the versions: not comparable, whatever the codes.
    unlinked = reading_2025()
    assert unlinked.series_break and unlinked.value is None and unlinked.change is None
    # Reworded, linked by the mapping: compared, as the published change is.
    mapping = VersionMapping.objects.create(from_version=first, to_version=second)
    row = mapping.rows.create(kind="indicator", from_code="SAT", to_code="SAT", relation="reworded")
    linked = reading_2025()
    assert not linked.series_break and (linked.value, linked.change) == (72, 12)
    assert linked.change_p == pytest.approx(0.016395, abs=1e-6)
    # Mapped to no equivalent: a series break again.
    row.relation, row.to_code = "none", ""
    row.save()
    assert reading_2025().series_break
    page = client_of(frame["coordinator"]).get("/plans/r2022/19/", HTTP_ACCEPT_LANGUAGE="en")
    assert "no version mapping links this indicator" in page.content.decode()


def test_the_plan_page_shows_each_task_beside_its_readings(
    frame: dict[str, Any], tasks: dict[str, Task]
) -> None:
    coordinator = client_of(frame["coordinator"])
    body = coordinator.get("/plans/r2022/19/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for text in ("60.0", "70.0", "+8.0", "0.110", "+12.0", "0.016", "19-2025",
                 "Rút ngắn thời gian giải quyết hồ sơ", "Sở Xây dựng"):  # fmt: skip
        assert text in body, text


# --- Reminders -----------------------------------------------------------------------------------


def test_reminders_before_the_deadline_and_when_overdue_once_each(
    frame: dict[str, Any], tasks: dict[str, Task]
) -> None:
    frame["staff_y"].email = "y@example.gov.vn"
    frame["staff_y"].save()
    mail.outbox.clear()
    assert services.remind_tasks(today=dt.date(2026, 2, 23)) == 0  # deadline too far
    assert services.remind_tasks(today=dt.date(2026, 3, 3)) == 2
    by_recipient = {m.to[0]: m.body for m in mail.outbox}
    # the owner of X; Y has no owner: its agency's staff
    assert set(by_recipient) == {"staff-x@example.gov.vn", "y@example.gov.vn"}
    assert f"#{tasks['x'].pk} SAT" in by_recipient["staff-x@example.gov.vn"]
    assert f"/plans/tasks/{tasks['x'].pk}/" in by_recipient["staff-x@example.gov.vn"]
    mail.outbox.clear()
    assert services.remind_tasks(today=dt.date(2026, 3, 4)) == 0  # one reminder per kind
    services.update_task(user=frame["staff_y"], task_id=tasks["y"].pk, status="done")
    assert services.remind_tasks(today=dt.date(2026, 3, 9)) == 1  # only X is still open
    assert "2026-03-05" in mail.outbox[0].body and mail.outbox[0].to == ["staff-x@example.gov.vn"]
    assert services.remind_tasks(today=dt.date(2026, 3, 10)) == 1 - 1
    assert set(TaskReminder.objects.values_list("task_id", "kind")) == {
        (tasks["x"].pk, "due_soon"), (tasks["y"].pk, "due_soon"), (tasks["x"].pk, "overdue")
    }  # fmt: skip


def test_the_beat_schedule_runs_the_reminders() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["remind-plan-tasks"]
    assert entry["task"] == "plans.remind_tasks"
    celery_app.loader.import_default_modules()
    assert "plans.remind_tasks" in celery_app.tasks


# --- Exports -----------------------------------------------------------------------------------


def test_xlsx_export_reads_back(frame: dict[str, Any], tasks: dict[str, Task]) -> None:
    services.update_task(user=frame["staff_x"], task_id=tasks["x"].pk, status="in_progress",
                         text="Đã họp triển khai")  # fmt: skip
    answer = client_of(frame["staff_x"]).get("/plans/r2022/19/plan.xlsx")
    assert answer.status_code == 200 and "plan-r2022-19.xlsx" in answer["Content-Disposition"]
    book = load_workbook(io.BytesIO(answer.content))
    task_rows = list(book.worksheets[0].iter_rows(min_row=2, values_only=True))
    assert [row[0] for row in task_rows] == [tasks["x"].pk]  # agency staff: their task only
    assert task_rows[0][1:3] == ("SAT", "Rút ngắn thời gian giải quyết hồ sơ")
    readings = list(book.worksheets[1].iter_rows(min_row=2, values_only=True))
    assert [row[2:5] for row in readings] == [
        ("r2022", "19", 60), ("r2023", "19", 68), ("r2025", "19-2025", 72), ("r2026", "19", None)
    ]  # fmt: skip
    assert readings[1][9] == 8 and readings[1][10] == pytest.approx(0.10960, abs=1e-5)
    assert readings[2][11] is True
    notes = list(book.worksheets[2].iter_rows(min_row=2, values_only=True))
    assert notes[0][5] == "Đã họp triển khai"


def test_pdf_export_text_reads_back(frame: dict[str, Any], tasks: dict[str, Task]) -> None:
    answer = client_of(frame["coordinator"]).get("/plans/r2022/19/plan.pdf")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(answer.content)).pages)
    # Vietnamese (the default language) writes decimals with a comma
    for expected in ("Kế hoạch hành động", "Thái Nguyên", "Rút ngắn thời gian giải quyết hồ sơ",
                     "Công khai thủ tục", "60,0", "+12,0", "0,016", "19-2025"):  # fmt: skip
        assert expected in text, expected


# --- Audit trail and evidence ------------------------------------------------------------------


def test_the_audit_trail_records_task_changes(
    frame: dict[str, Any], tasks: dict[str, Task]
) -> None:
    task = tasks["x"]
    client_of(frame["staff_x"]).post(f"/plans/tasks/{task.pk}/", {"status": "in_progress",
                                                                  "text": "Bắt đầu"})  # fmt: skip
    entries = LogEntry.objects.get_for_object(task).order_by("pk")
    assert [e.action for e in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    assert entries[1].changes_dict["status"] == ["planned", "in_progress"]
    assert entries[1].actor == frame["staff_x"]
    note = TaskNote.objects.get(task=task)
    assert LogEntry.objects.get_for_object(note).get().action == LogEntry.Action.CREATE


def test_evidence_files_are_checked_and_served_to_authorised_users_only(
    frame: dict[str, Any], tasks: dict[str, Task], settings: Any
) -> None:
    settings.PLANS_EVIDENCE_MAX_BYTES = 1000
    task = tasks["x"]
    staff = client_of(frame["staff_x"])
    url = f"/plans/tasks/{task.pk}/"
    for upload in (
        SimpleUploadedFile("virus.pdf", b"MZ\x90\x00" + b"x" * 50),  # not what it says
        SimpleUploadedFile("script.html", b"<script>alert(1)</script>"),
        SimpleUploadedFile("big.pdf", b"%PDF-1.7\n" + b"x" * 2000),
        SimpleUploadedFile("empty.pdf", b""),
    ):
        answer = staff.post(url, {"text": "Minh chứng", "evidence": upload})
        assert answer.status_code == 400 and 'id="err-evidence"' in answer.content.decode()
    assert not TaskNote.objects.exists()
    pdf = b"%PDF-1.7\n% bien ban\n"
    good = SimpleUploadedFile("Biên bản họp.pdf", pdf, content_type="text/html")
    assert staff.post(url, {"evidence": good}).status_code == 302
    note = TaskNote.objects.get()
    assert note.evidence_type == "application/pdf" and "Biên bản" not in note.evidence.name
    link = f"/plans/notes/{note.pk}/evidence/"
    download = staff.get(link)
    assert download.status_code == 200 and b"".join(download.streaming_content) == pdf
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment")
    assert client_of(frame["coordinator"]).get(link).status_code == 200
    for role in ("staff_y", "other_staff"):
        assert client_of(frame[role]).get(link).status_code == 404
    assert Client().get(link).status_code == 302


# --- Hostile input -----------------------------------------------------------------------------

FIELDS = ["round", "unit", "agency", "indicator", "title", "target_kind", "target_value",
          "working_days", "owner"]  # fmt: skip


@pytest.mark.postgres
@PROPERTY
@given(field=st.sampled_from(FIELDS), value=STRINGS)
@example(field="title", value="ab\x00cd")
@example(field="working_days", value="9" * 40)
@example(field="owner", value="9" * 40)
@example(field="target_value", value="-1e400")
def test_the_task_form_answers_any_field_without_a_server_error(
    client: Client, field: str, value: str, hostile_frame: dict[str, Any]
) -> None:
    client.force_login(hostile_frame["coordinator"])
    before = Task.objects.count()
    form = {"round": "r2022", "unit": "19", "agency": "19-SXD", "indicator": "SAT",
            "title": "Việc", "target_kind": "at_least", "target_value": "75",
            "working_days": "10", "owner": "", field: value}  # fmt: skip
    answer = post_form(client, NEW, form)
    assert_handled(answer, field)
    if answer.status_code != 302:
        assert Task.objects.count() == before


@pytest.mark.postgres
@PROPERTY
@given(field=st.sampled_from(["status", "drop_reason", "text"]), value=STRINGS)
@example(field="text", value="a\ud800b")
def test_the_task_update_answers_any_field_without_a_server_error(
    client: Client, field: str, value: str, hostile_frame: dict[str, Any]
) -> None:
    client.force_login(hostile_frame["staff_x"])
    task = hostile_frame["task"]
    answer = post_form(client, f"/plans/tasks/{task.pk}/", {"text": "ok", field: value})
    assert_handled(answer, field)


@pytest.fixture
def hostile_frame(frame: dict[str, Any]) -> dict[str, Any]:
    return {**frame, "task": make_task(frame, "x")}


def test_login_redirect_keeps_the_prefilled_query(frame: dict[str, Any]) -> None:
    answer = Client().get(f"{NEW}?round=r2022&unit=19&indicator=SAT")
    assert answer.status_code == 302 and "indicator%3DSAT" in answer["Location"]
    assert PASSWORD  # the accounts of tests.support.plans log in with it in the browser test
