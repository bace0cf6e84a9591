"""Paper-form imports: files read row by row, cells converted, rows stored whole or not at all."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import translation
from openpyxl.utils import get_column_letter

from feedback.models import Answer, PaperImport, Response
from feedback.paper import services as paper
from feedback.services import submit_response
from surveys.models import Question, Round
from tests.support.paper import (
    CODES,
    HEADER,
    csv_bytes,
    errors_by_row,
    imported,
    paper_cell,
    row,
    uploaded,
    xlsx_bytes,
)
from tests.support.responses import valid_answers

pytestmark = pytest.mark.django_db
URL = "/api/v1/paper-imports/"
SECRET = "Nhà tôi ở số 12 ngõ 34"  # written on a rejected form: must not be kept anywhere


def cell_of(code: str, number: int) -> str:
    return f"{get_column_letter(HEADER.index(code) + 1)}{number}"


def answers_of(response: Response) -> dict[str, Answer]:
    return {a.question.code: a for a in response.answers.select_related("question")}


@pytest.fixture
def importer(db: None) -> User:
    user = User.objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="import_paper_forms"))
    return user


@pytest.fixture
def clerk_client(client: Client, importer: User) -> Client:
    client.force_login(importer)
    return client


class TestRowsStoredOrRejected:
    def test_a_csv_file_stores_valid_rows_and_reports_rejected_rows_by_number_and_code(
        self, sipas
    ) -> None:
        content = csv_bytes(
            [
                row("F-1"),  # row 2
                row("F-2", S01="4.5", Q11=SECRET),  # row 3: not a whole number
                row("F-3", unit="99"),  # row 4: a unit the round does not cover
                row("F-4", A01=""),  # row 5: a required answer missing
                ["", "", "", *([""] * len(CODES))],  # row 6: blank, skipped
                row("F-5", weight="2.5", S02="5"),  # row 7
            ]
        )
        done = imported(content)

        assert done.status == PaperImport.Status.DONE
        assert (done.total_rows, done.processed_rows) == (5, 5)
        assert (done.accepted_rows, done.rejected_rows) == (2, 3)
        rejected = errors_by_row(done)
        assert set(rejected) == {3, 4, 5}
        assert set(rejected[3]) == {"S01"} and cell_of("S01", 3) in rejected[3]["S01"]
        assert set(rejected[4]) == {"unit"}
        assert set(rejected[5]) == {"A01"}
        accepted = [e for e in done.report if e["status"] == "accepted"]
        assert [(e["row"], e["row_id"]) for e in accepted] == [(2, "F-1"), (7, "F-5")]

        stored = Response.objects.order_by("weight")
        assert [r.receipt for r in stored] == [e["receipt"] for e in accepted]
        assert {(r.channel, r.import_batch_id, r.unit.code) for r in stored} == {
            ("paper", done.pk, "19")
        }
        assert [r.weight for r in stored] == [1.0, 2.5]
        assert answers_of(stored[1])["S02"].value == 5

    def test_nothing_of_a_rejected_row_is_stored_not_even_in_the_report(self, sipas) -> None:
        done = imported(csv_bytes([row("F-1", S01="4.5", Q11=SECRET), row("F-2", A02="")]))

        assert (done.accepted_rows, done.rejected_rows) == (0, 2)
        assert Response.objects.count() == 0 and Answer.objects.count() == 0
        assert SECRET not in json.dumps(done.report, ensure_ascii=False)
        assert bytes(done.content) == b""  # the uploaded file is not kept once imported

    def test_answers_stored_from_a_row_match_the_same_answers_sent_to_the_api(self, sipas) -> None:
        done = imported(csv_bytes([row("F-1")]))
        submit_response(round_code="demo", unit_code="19", answers=valid_answers(), channel="api")
        by_paper, by_api = (
            {(a.question.code, json.dumps(a.value), a.number, a.code) for a in r.answers.all()}
            for r in (Response.objects.get(import_batch=done), Response.objects.get(channel="api"))
        )
        assert by_paper == by_api

    def test_a_bad_cell_of_a_hidden_question_is_ignored_like_the_api_does(self, sipas) -> None:
        # Q8_4 "no": the service questions S01–S19 are not asked, whatever is written there.
        done = imported(csv_bytes([row("F-1", Q8_4=False, S01="4.5")]))
        assert done.accepted_rows == 1, done.report
        codes = set(Answer.objects.values_list("question__code", flat=True))
        assert not any(code.startswith("S") for code in codes)

    def test_a_row_reports_all_its_problems_at_once(self, sipas) -> None:
        done = imported(csv_bytes([row("F-1", unit="", weight="0", S01="x", A01="")]))
        assert set(errors_by_row(done)[2]) == {"unit", "weight", "S01", "A01"}
        assert cell_of("weight", 2) in errors_by_row(done)[2]["weight"]

    def test_an_agency_of_the_unit_is_stored_and_an_unknown_one_is_rejected(self, sipas) -> None:
        from surveys.models import Agency, Unit

        Agency.objects.create(unit=Unit.objects.get(code="19"), code="TTHCC", name_vi="Trung tâm")
        header = ["agency", *HEADER]
        done = imported(csv_bytes([["TTHCC", *row("F-1")], ["NOPE", *row("F-2")]], header=header))
        assert done.accepted_rows == 1
        assert Response.objects.get().agency.code == "TTHCC"
        assert set(errors_by_row(done)[3]) == {"agency"}


class TestCellConversion:
    def test_typed_xlsx_cells_are_converted_by_question_type(self, sipas) -> None:
        answers = valid_answers()
        cells = {code: paper_cell(value) for code, value in answers.items()}
        cells |= {
            "S01": 4,  # int
            "S02": 4.0,  # float holding a whole number
            "S03": "5",  # text
            "Q8_1": "X",  # a tick
            "Q8_2": True,  # boolean cell
            "Q8_3": "Không",
            "Q8_4": "YES",
            "Q8_5": 0,
            "Q2": "internet, loa_xa",  # comma-separated choices, in any order
            "Q11": "  viết tay  ",
        }
        line = ["F-1", 19, 1.5, *(cells[code] for code in CODES)]  # unit typed as a number
        done = imported(xlsx_bytes([line]), file_name="forms.xlsx")

        assert done.accepted_rows == 1, done.report
        response = Response.objects.get()
        assert response.weight == 1.5 and response.unit.code == "19"
        stored = answers_of(response)
        assert (stored["S01"].value, stored["S01"].number) == (4, 4.0)
        assert (stored["S02"].value, stored["S03"].value) == (4, 5)
        assert stored["Q8_1"].value is True and stored["Q8_2"].value is True
        assert stored["Q8_3"].value is False and stored["Q8_3"].number == 0.0
        assert stored["Q8_4"].value is True and stored["Q8_5"].value is False
        assert stored["Q2"].value == ["loa_xa", "internet"]
        assert stored["A01"].code == "nu"
        assert stored["Q11"].value == "viết tay"

    def test_an_xlsx_fraction_in_a_scale_question_is_an_error_naming_the_cell(self, sipas) -> None:
        line = ["F-1", "19", None, *(paper_cell(v) for v in valid_answers().values())]
        line[HEADER.index("S05")] = 4.5
        done = imported(xlsx_bytes([line]), file_name="forms.xlsx")
        assert cell_of("S05", 2) in errors_by_row(done)[2]["S05"]
        assert Response.objects.count() == 0

    @pytest.mark.parametrize(
        ("kind", "cell", "expected"),
        [
            (Question.Type.NUMBER, "12", 12),
            (Question.Type.NUMBER, " -3 ", -3),
            (Question.Type.NUMBER, 7.0, 7),
            (Question.Type.SCALE, "4.0", 4),
            (Question.Type.YESNO, "TRUE", True),
            (Question.Type.YESNO, "0", False),
            (Question.Type.YESNO, 1, True),
            (Question.Type.MULTIPLE, "a; b ,c", ["a", "b", "c"]),
            (Question.Type.DATE, dt.datetime(2024, 5, 17), "2024-05-17"),
            (Question.Type.DATE, "2024-05-17", "2024-05-17"),
            (Question.Type.SINGLE, 2.0, "2"),
            (Question.Type.TEXT, "  as is  ", "  as is  "),
            (Question.Type.TEXT, "   ", None),
            (Question.Type.SCALE, None, None),
        ],
    )
    def test_a_cell_becomes_the_answer_value_of_its_question_type(
        self, kind: str, cell: Any, expected: Any
    ) -> None:
        assert paper.convert_cell(Question(type=kind), cell) == expected

    @pytest.mark.parametrize(
        ("kind", "cell"),
        [
            (Question.Type.SCALE, "4.5"),
            (Question.Type.SCALE, 4.5),
            (Question.Type.NUMBER, "NaN"),
            (Question.Type.NUMBER, "ba"),
            (Question.Type.NUMBER, True),
            (Question.Type.YESNO, "maybe"),
            (Question.Type.YESNO, 2),
        ],
    )
    def test_an_unreadable_cell_is_an_error(self, kind: str, cell: Any) -> None:
        with pytest.raises(paper.CellError):
            paper.convert_cell(Question(type=kind), cell)

    def test_a_semicolon_separated_csv_without_bom_is_read(self, sipas) -> None:
        header = ["unit", *CODES]
        answers = valid_answers(Q2=["internet"])
        text = ";".join(header) + "\n" + ";".join(["19", *map(paper_cell, answers.values())])
        done = imported(text.encode())
        assert done.accepted_rows == 1, done.report


class TestRerun:
    def test_rerunning_a_finished_import_stores_nothing_new(self, sipas) -> None:
        done = imported(csv_bytes([row("F-1"), row("F-2", S01="9")]))
        again = paper.run_paper_import(import_id=done.pk)
        assert (again.accepted_rows, again.rejected_rows) == (1, 1)
        assert Response.objects.count() == 1

    def test_a_restarted_import_resumes_after_its_last_committed_batch(
        self, sipas, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        created = uploaded(csv_bytes([row("F-1"), row("F-2"), row("F-3")]))
        monkeypatch.setattr(paper, "BATCH_ROWS", 2)
        store_rows = paper.import_rows

        def connection_lost_at_row_4(context: Any, batch: list[tuple[int, Any]]) -> Any:
            if any(number == 4 for number, _cells in batch):
                raise OperationalError("server closed the connection unexpectedly")
            return store_rows(context, batch)

        # The first run commits rows 2-3, then loses the database in the next batch.
        monkeypatch.setattr(paper, "import_rows", connection_lost_at_row_4)
        with pytest.raises(OperationalError):
            paper.run_paper_import(import_id=created.pk)
        stopped = PaperImport.objects.get(pk=created.pk)
        assert (stopped.status, stopped.last_row, stopped.accepted_rows) == ("running", 3, 2)
        monkeypatch.setattr(paper, "import_rows", store_rows)

        done = paper.run_paper_import(import_id=created.pk)

        assert (done.status, done.accepted_rows, done.duplicate_rows) == ("done", 3, 0)
        assert [entry["row"] for entry in done.report] == [2, 3, 4]
        assert Response.objects.filter(import_batch=created).count() == 3


def _row_answers(line: list[Any]) -> dict[str, Any]:
    """The answers ``run_paper_import`` derives from a CSV line built by ``row``."""
    questions = {q.code: q for q in Round.objects.get(code="demo").version.questions.all()}
    values = dict(zip(HEADER, line, strict=True))
    return {
        code: value
        for code in CODES
        if (value := paper.convert_cell(questions[code], values[code])) is not None
    }


class TestFormsStoredOnce:
    def test_the_same_file_imported_twice_stores_its_forms_once(self, sipas) -> None:
        content = csv_bytes([row("F-1"), row("F-2"), row("F-3", S01="9")])
        first = imported(content)
        second = imported(content)

        assert (first.accepted_rows, first.duplicate_rows, first.rejected_rows) == (2, 0, 1)
        assert (second.accepted_rows, second.duplicate_rows, second.rejected_rows) == (0, 2, 1)
        assert Response.objects.count() == 2
        assert not Response.objects.filter(import_batch=second).exists()
        duplicates = [e for e in second.report if e["status"] == "duplicate"]
        assert [(e["row"], e["row_id"], e["import"]) for e in duplicates] == [
            (2, "F-1", first.pk),
            (3, "F-2", first.pk),
        ]
        assert {e["receipt"] for e in duplicates} == set(
            Response.objects.values_list("receipt", flat=True)
        )

    def test_three_identical_rows_of_one_file_store_one_form(self, sipas) -> None:
        done = imported(csv_bytes([row("F-1"), row("F-1"), row("F-1")]))

        assert (done.accepted_rows, done.duplicate_rows) == (1, 2)
        assert Response.objects.count() == 1
        assert [e["status"] for e in done.report] == ["accepted", "duplicate", "duplicate"]

    def test_rows_without_row_id_are_told_apart_by_their_content(self, sipas) -> None:
        header = HEADER[1:]  # no row_id column
        lines = [row("")[1:], row("")[1:], row("", S02="3")[1:], row("", weight="2")[1:]]
        first = imported(csv_bytes(lines, header=header))
        second = imported(csv_bytes(lines[:1], header=header))

        assert (first.accepted_rows, first.duplicate_rows) == (3, 1)
        assert (second.accepted_rows, second.duplicate_rows) == (0, 1)
        assert Response.objects.count() == 3

    def test_a_row_id_already_stored_with_other_answers_is_rejected_and_the_first_kept(
        self, sipas
    ) -> None:
        first = imported(csv_bytes([row("F-1", S01="5")]))
        second = imported(csv_bytes([row("F-1", S01="2")]))

        assert (second.accepted_rows, second.rejected_rows) == (0, 1)
        assert set(errors_by_row(second)[2]) == {"row_id"}
        assert str(first.pk) in errors_by_row(second)[2]["row_id"]
        stored = Response.objects.get()
        assert answers_of(stored)["S01"].value == 5 and stored.import_batch_id == first.pk

    def test_the_database_refuses_a_second_copy_of_a_form(self, sipas) -> None:
        from django.db import IntegrityError, transaction

        imported(csv_bytes([row("F-1")]))
        stored = Response.objects.get()
        copy = submit_response(
            round_code="demo", unit_code="19", answers=valid_answers(), channel="paper"
        ).response
        with pytest.raises(IntegrityError), transaction.atomic():
            Response.objects.filter(pk=copy.pk).update(paper_key=stored.paper_key)


class TestClosedRounds:
    @pytest.fixture
    def late_clerk(self, importer: User) -> User:
        importer.user_permissions.add(Permission.objects.get(codename="import_late_paper"))
        return User.objects.get(pk=importer.pk)  # without the cached permissions

    def test_an_import_into_a_closed_round_is_refused_without_the_late_entry_permission(
        self, clerk_client: Client, sipas
    ) -> None:
        content = csv_bytes([row("F-1")])
        response = clerk_client.post(
            URL, {"round": "sipas-2022", "file": SimpleUploadedFile("forms.csv", content)}
        )

        assert response.status_code == 400, response.content
        assert "sipas-2022" in response.json()["fields"]["round"][0]
        assert "2022-12-01" in response.json()["fields"]["round"][0]  # when it closed
        assert PaperImport.objects.count() == 0 and Response.objects.count() == 0

    def test_a_user_with_the_late_entry_permission_imports_into_a_closed_round(
        self, client: Client, late_clerk: User, sipas
    ) -> None:
        client.force_login(late_clerk)
        content = csv_bytes([row("F-1")])
        response = client.post(
            URL, {"round": "sipas-2022", "file": SimpleUploadedFile("forms.csv", content)}
        )

        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["accepted_rows"], body["late_entry"], body["uploaded_by"]) == (
            1,
            True,
            "clerk",
        )
        done = PaperImport.objects.get()
        assert (done.uploaded_by, done.late_entry) == (late_clerk, True)
        assert Response.objects.get().round.code == "sipas-2022"

    def test_an_open_round_is_no_late_entry(self, clerk_client: Client, sipas) -> None:
        content = csv_bytes([row("F-1")])
        response = clerk_client.post(
            URL, {"round": "demo", "file": SimpleUploadedFile("forms.csv", content)}
        )
        assert response.status_code == 201 and response.json()["late_entry"] is False

    def test_the_admin_upload_form_names_the_closed_round(
        self, clerk_client: Client, sipas
    ) -> None:
        response = clerk_client.post(
            TestAdmin.ADD,
            {
                "round": Round.objects.get(code="sipas-2022").pk,
                "file": SimpleUploadedFile("forms.csv", csv_bytes([row("F-1")])),
            },
        )
        assert response.status_code == 200
        assert "2022-12-01" in response.context["adminform"].form.errors["round"][0]
        assert PaperImport.objects.count() == 0


class TestCellsThatCannotBeRead:
    def test_an_xlsx_formula_without_a_stored_value_is_a_row_error_naming_the_cell(
        self, sipas
    ) -> None:
        line = row("F-1")
        line[HEADER.index("S01")] = "=2+2"  # openpyxl writes the formula without its value
        with translation.override("en"):
            done = imported(xlsx_bytes([line, row("F-2")]), file_name="forms.xlsx")

        assert (done.accepted_rows, done.rejected_rows) == (1, 1)
        assert set(errors_by_row(done)[2]) == {"S01"}
        assert cell_of("S01", 2) in errors_by_row(done)[2]["S01"]
        assert "formula" in errors_by_row(done)[2]["S01"]
        assert Response.objects.get().import_batch_id == done.pk

    def test_a_nul_character_in_a_cell_rejects_the_row_without_showing_the_cell(
        self, clerk_client: Client, sipas
    ) -> None:
        content = csv_bytes([row("F-1", Q11=SECRET + "\x00"), row("F-2")])
        response = clerk_client.post(
            URL, {"round": "demo", "file": SimpleUploadedFile("forms.csv", content)}
        )

        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["status"], body["accepted_rows"], body["rejected_rows"]) == ("done", 1, 1)
        assert body["report"][0]["errors"][0]["field"] == "Q11"
        assert cell_of("Q11", 2) in body["report"][0]["errors"][0]["message"]
        assert SECRET not in response.content.decode()
        assert Response.objects.count() == 1

    def test_an_import_that_fails_shows_where_it_stopped_not_the_error_text(
        self, sipas, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        created = uploaded(csv_bytes([row("F-1"), row("F-2", Q11=SECRET)]))
        monkeypatch.setattr(paper, "BATCH_ROWS", 1)
        store_rows = paper.import_rows

        def failing_at_row_3(context: Any, batch: list[tuple[int, Any]]) -> Any:
            if any(number == 3 for number, _cells in batch):
                # an error whose text quotes a cell, as a database error does
                raise RuntimeError(f"cannot store {SECRET!r}")
            return store_rows(context, batch)

        monkeypatch.setattr(paper, "import_rows", failing_at_row_3)
        with translation.override("en"):
            done = paper.run_paper_import(import_id=created.pk)

        assert (done.status, done.accepted_rows, done.last_row) == ("failed", 1, 2)
        assert SECRET not in done.error and "row 2" in done.error
        assert SECRET in caplog.text  # the detail is in the server log


class TestBadFiles:
    def refused(self, client: Client, file_name: str, content: bytes, **extra: Any) -> list[str]:
        """Upload the file to the round ``demo``: a 400, nothing stored; what it says of the
        file."""
        response = client.post(
            URL, {"round": "demo", "file": SimpleUploadedFile(file_name, content)}, **extra
        )
        assert response.status_code == 400, response.content
        assert PaperImport.objects.count() == 0 and Response.objects.count() == 0
        return response.json()["fields"]["file"]

    @pytest.mark.parametrize(
        ("file_name", "content", "named"),
        [
            ("forms.txt", b"unit\n19\n", "forms.txt"),
            ("forms.xls", b"\xd0\xcf\x11\xe0", "forms.xls"),
            ("forms.csv", b"", "empty"),
            ("forms.csv", b"\xef\xbb\xbf", "empty"),
            ("forms.csv", b"S01,S02\n4,4\n", "unit"),
            ("forms.csv", b"unit,S01,XYZ_9\n19,4,1\n", "XYZ_9"),
            ("forms.csv", b"unit,S01,S01\n19,4,4\n", "S01"),
            ("forms.csv", b"unit,S01\n", "no rows"),
            ("forms.csv", b"unit,A08\n19,H\xe0 N\xf4i\n", "UTF-8"),
            ("forms.xlsx", b"PK\x03\x04 not really a workbook", "XLSX"),
            ("forms.xlsx", b"unit,S01\n19,4\n", "forms.xlsx"),
        ],
    )
    def test_a_bad_file_is_refused_naming_the_problem_and_nothing_is_stored(
        self, clerk_client: Client, sipas, file_name: str, content: bytes, named: str
    ) -> None:
        problems = self.refused(clerk_client, file_name, content, headers={"Accept-Language": "en"})
        assert named in " ".join(problems)

    def test_an_unknown_column_is_refused_in_an_xlsx_file_too(
        self, clerk_client: Client, sipas
    ) -> None:
        content = xlsx_bytes([[*row("F-1"), "x"]], header=[*HEADER, "Ghi chú"])
        assert "Ghi chú" in self.refused(clerk_client, "forms.xlsx", content)[0]

    def test_a_file_over_20_mb_is_refused_before_it_is_read(
        self, clerk_client: Client, sipas
    ) -> None:
        content = b"unit\n" + b"19\n" * (paper.MAX_FILE_BYTES // 3 + 1)
        assert "20 MB" in self.refused(clerk_client, "forms.csv", content)[0]

    def test_an_unknown_round_and_a_missing_file_are_named(
        self, clerk_client: Client, sipas
    ) -> None:
        response = clerk_client.post(
            URL, {"round": "nope", "file": SimpleUploadedFile("f.csv", csv_bytes([row("F")]))}
        )
        assert response.status_code == 400 and "round" in response.json()["fields"]
        response = clerk_client.post(URL, {"round": "demo"})
        assert response.status_code == 400 and "file" in response.json()["fields"]
        assert PaperImport.objects.count() == 0


class TestApi:
    def test_a_small_file_is_imported_in_the_request(
        self, clerk_client: Client, importer: User, sipas
    ) -> None:
        content = csv_bytes([row("F-1"), row("F-2", S01="4.5")])
        response = clerk_client.post(
            URL, {"round": "demo", "file": SimpleUploadedFile("forms.csv", content)}
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] == "done" and body["round"] == "demo"
        assert (body["total_rows"], body["accepted_rows"], body["rejected_rows"]) == (2, 1, 1)
        assert body["report"][1]["errors"][0]["field"] == "S01"
        assert PaperImport.objects.get(pk=body["id"]).uploaded_by == importer
        assert Response.objects.get().import_batch_id == body["id"]

        progress = clerk_client.get(f"{URL}{body['id']}/")
        assert progress.status_code == 200
        assert progress.json()["processed_rows"] == 2

    def test_a_large_file_is_queued_and_imported_by_the_task(
        self, clerk_client: Client, sipas, settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        settings.PAPER_IMPORT_SYNC_MAX_ROWS = 2
        content = csv_bytes([row(f"F-{n}") for n in range(3)])
        with caplog.at_level("INFO", logger="celery.app.trace"):
            response = clerk_client.post(
                URL, {"round": "demo", "file": SimpleUploadedFile("forms.csv", content)}
            )
        assert response.status_code == 202, response.content
        # No worker in this test: Celery ran the queued task in-process (eager).
        assert "feedback.import_paper_forms" in caplog.text
        done = clerk_client.get(reverse("v1:paper-import", args=[response.json()["id"]])).json()
        assert (done["status"], done["accepted_rows"], done["processed_rows"]) == ("done", 3, 3)

    def test_an_unknown_import_is_404(self, clerk_client: Client) -> None:
        assert clerk_client.get(f"{URL}999999/").status_code == 404


class TestPermissions:
    def upload(self, client: Client) -> Any:
        content = csv_bytes([row("F-1")])
        return client.post(URL, {"round": "demo", "file": SimpleUploadedFile("f.csv", content)})

    def test_anonymous_callers_are_refused(self, client: Client, sipas) -> None:
        assert self.upload(client).status_code in (401, 403)
        done = imported(csv_bytes([row("F-1")]))
        assert client.get(f"{URL}{done.pk}/").status_code in (401, 403)
        assert PaperImport.objects.count() == 1

    def test_staff_without_the_permission_are_refused(self, client: Client, sipas) -> None:
        client.force_login(User.objects.create_user("staff", is_staff=True))
        assert self.upload(client).status_code == 403
        done = imported(csv_bytes([row("F-1")]))
        assert client.get(f"{URL}{done.pk}/").status_code == 403
        assert Response.objects.count() == 1  # only the import made by this test

    def test_staff_with_the_permission_may_upload(self, clerk_client: Client, sipas) -> None:
        assert self.upload(clerk_client).status_code == 201

    def test_a_token_client_with_the_permission_may_upload(
        self, client: Client, importer: User, sipas
    ) -> None:
        from rest_framework.authtoken.models import Token

        token = Token.objects.create(user=importer)
        content = csv_bytes([row("F-1")])
        response = client.post(
            URL,
            {"round": "demo", "file": SimpleUploadedFile("f.csv", content)},
            HTTP_AUTHORIZATION=f"Token {token.key}",
        )
        assert response.status_code == 201


class TestAdmin:
    ADD = "/admin/feedback/paperimport/add/"

    def test_the_upload_page_renders(self, clerk_client: Client, sipas) -> None:
        response = clerk_client.get(self.ADD)
        assert response.status_code == 200
        assert b'name="file"' in response.content and b'name="round"' in response.content
        assert b'enctype="multipart/form-data"' in response.content

    def test_an_invalid_file_shows_a_form_error(self, clerk_client: Client, sipas) -> None:
        response = clerk_client.post(
            self.ADD,
            {
                "round": Round.objects.get(code="demo").pk,
                "file": SimpleUploadedFile("forms.csv", b"unit,XYZ_9\n19,1\n"),
            },
        )
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert "XYZ_9" in errors["file"][0]
        assert PaperImport.objects.count() == 0

    def test_an_upload_shows_the_import_with_its_report(self, clerk_client: Client, sipas) -> None:
        content = csv_bytes([row("F-1"), row("F-2", S01="4.5")])
        response = clerk_client.post(
            self.ADD,
            {
                "round": Round.objects.get(code="demo").pk,
                "file": SimpleUploadedFile("forms.csv", content),
            },
            follow=True,
        )
        assert response.status_code == 200
        done = PaperImport.objects.get()
        assert response.redirect_chain[-1][0].endswith(f"/paperimport/{done.pk}/change/")
        assert (done.status, done.accepted_rows, done.rejected_rows) == ("done", 1, 1)
        page = response.content.decode()
        assert cell_of("S01", 3) in page and "F-2" in page
        assert 'name="_save"' not in page  # read-only

    def test_the_list_page_renders(self, clerk_client: Client, sipas) -> None:
        imported(csv_bytes([row("F-1")]))
        response = clerk_client.get("/admin/feedback/paperimport/")
        assert response.status_code == 200 and b"forms.csv" in response.content

    def test_staff_without_the_permission_cannot_upload(self, client: Client, sipas) -> None:
        client.force_login(User.objects.create_user("staff", is_staff=True))
        assert client.get(self.ADD).status_code == 403
