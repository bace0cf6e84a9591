"""Exports: published scores (CSV, XLSX) for everyone, raw responses and codebook for staff."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from typing import Any

import openpyxl
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from demo.responses import generate_demo_responses
from feedback.models import Answer, Response
from feedback.services import submit_response
from results import exports
from scoring.models import Run, Score
from surveys.models import Question, Round
from tests import results_fixtures
from tests.results_fixtures import ROUND, UNCERTAINTY, reveal_nothing_of, token_client
from tests.support.downloads import body, csv_rows, xlsx_sheets
from tests.support.responses import valid_answers

pytestmark = pytest.mark.django_db

published = results_fixtures.published
consumer_client = results_fixtures.consumer_client
staff_client = results_fixtures.staff_client


class TestScoreExports:
    def test_csv_has_every_published_value_with_suppressed_ones_blank(
        self, client: Client, published: Run
    ) -> None:
        response = client.get(f"/api/v1/rounds/{ROUND}/scores.csv")
        assert response.status_code == 200 and response.streaming
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        header, *rows = csv_rows(response)
        assert header[:4] == ["round", "run", "scope", "unit"]
        scores = Score.objects.filter(run=published).exclude(scope="agency")
        assert len(rows) == scores.count() == 68 * 65
        stored = {
            (s.scope, s.unit.code if s.unit else "", s.indicator.code): s
            for s in scores.select_related("unit", "indicator")
        }
        column = {name: i for i, name in enumerate(header)}
        suppressed = 0
        for row in rows:
            score = stored[row[column["scope"]], row[column["unit"]], row[column["indicator"]]]
            assert row[column["run"]] == str(published.pk) and row[column["round"]] == ROUND
            assert row[column["n"]] == str(score.n)
            if score.suppressed:
                suppressed += 1
                assert row[column["suppressed"]] == "True"
                for name in ("value", "se", "ci_low", "ci_high", "change"):
                    assert row[column[name]] == ""
            elif score.value is not None:
                assert float(row[column["value"]]) == pytest.approx(score.value)
        assert suppressed > 0

    def test_csv_has_the_precision_rank_interval_and_change_columns(
        self, client: Client, published: Run
    ) -> None:
        hidden = {s.unit.code for s in reveal_nothing_of(published, "P06")}
        header, *rows = csv_rows(client.get(f"/api/v1/rounds/{ROUND}/scores.csv"))
        assert header[-5:] == ["deff", "n_eff", "rank_low", "rank_high", "change_p"]
        column = {name: i for i, name in enumerate(header)}
        p06 = {r[column["unit"]]: r for r in rows if r[column["indicator"]] == "P06"}
        for unit in hidden:
            assert all(p06[unit][column[name]] == "" for name in [*UNCERTAINTY])
        ranked = Score.objects.filter(run=published, indicator__code="P06", rank__isnull=False)
        for score in ranked.select_related("unit"):
            row = p06[score.unit.code]
            assert row[column["rank_low"]] == str(score.rank_low)
            assert row[column["rank_high"]] == str(score.rank_high)

    def test_xlsx_has_the_same_rows(self, client: Client, published: Run) -> None:
        response = client.get(f"/api/v1/rounds/{ROUND}/scores.xlsx")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
        header, *rows = xlsx_sheets(response)["scores"]
        column = {name: i for i, name in enumerate(header)}
        assert len(rows) == Score.objects.filter(run=published).exclude(scope="agency").count()
        hidden = [r for r in rows if r[column["suppressed"]]]
        assert hidden and all(r[column["value"]] is None for r in hidden)
        sipas = next(
            r for r in rows if r[column["indicator"]] == "SIPAS" and r[column["unit"]] == "19"
        )
        score = Score.objects.get(run=published, indicator__code="SIPAS", unit__code="19")
        assert sipas[column["value"]] == pytest.approx(score.value)
        assert sipas[column["rank"]] == score.rank

    def test_score_exports_are_conditional_on_the_published_run(
        self, client: Client, published: Run
    ) -> None:
        url = f"/api/v1/rounds/{ROUND}/scores.csv"
        etag = client.get(url).headers["ETag"]
        assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert client.get(url.replace(".csv", ".xlsx")).headers["ETag"] != etag

    def test_a_round_without_published_results_is_a_404(
        self, client: Client, published: Run
    ) -> None:
        for url in ("/api/v1/rounds/demo/scores.csv", "/api/v1/rounds/nope/scores.xlsx"):
            response = client.get(url)
            assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.fixture
def answered(sipas: Any) -> list[Response]:
    """Three web-style responses to ``demo`` with known answers, one with a formula."""
    stored = []
    for unit, s01, comment in (("19", 5, "Tốt"), ("01", 2, "=HYPERLINK(1)"), ("19", 4, "")):
        answers = valid_answers(S01=s01, Q11=comment)
        if not comment:
            del answers["Q11"]
        submission = submit_response(
            round_code="demo",
            unit_code=unit,
            answers=answers,
            channel=Response.Channel.API,
            client_id=uuid.uuid4(),
        )
        stored.append(submission.response)
    return stored


class TestResponseExports:
    def test_csv_in_the_wide_layout(self, staff_client: Client, answered: list[Response]) -> None:
        response = staff_client.get("/api/v1/rounds/demo/responses.csv")
        assert response.status_code == 200 and response.streaming
        header, *rows = csv_rows(response)
        assert header[:9] == exports.RESPONSE_HEADER
        codes = list(
            Question.objects.filter(version=answered[0].version).values_list("code", flat=True)
        )
        assert header[9:] == codes
        assert [int(r[0]) for r in rows] == sorted(r.pk for r in answered)
        column = {name: i for i, name in enumerate(header)}
        for row, stored in zip(rows, sorted(answered, key=lambda r: r.pk), strict=True):
            assert row[column["round"]] == "demo" and row[column["unit"]] == stored.unit.code
            assert row[column["channel"]] == "api" and float(row[column["weight"]]) == 1.0
            assert row[column["review_state"]] == "accepted"
            assert row[column["submitted_at"]].startswith(str(stored.submitted_at.year))
            answers = {a.question.code: a.value for a in stored.answers.select_related("question")}
            assert row[column["S01"]] == str(answers["S01"])
            assert row[column["Q8_4"]] == "1" and row[column["Q8_1"]] == "0"
            assert row[column["Q2"]] == ";".join(answers["Q2"])
            assert row[column["P07"]] == ""  # hidden by its condition: no answer
        comments = [r[column["Q11"]] for r in rows]
        assert comments == ["Tốt", "'=HYPERLINK(1)", ""]  # a formula is never a formula

    def test_personal_data_is_never_exported(
        self, staff_client: Client, answered: list[Response]
    ) -> None:
        Question.objects.filter(version=answered[0].version, code="Q11").update(personal_data=True)
        header = csv_rows(staff_client.get("/api/v1/rounds/demo/responses.csv"))[0]
        assert "Q11" not in header and "S01" in header
        sheets = xlsx_sheets(staff_client.get("/api/v1/rounds/demo/responses.xlsx"))
        assert "Q11" not in sheets["responses"][0]
        assert "Q11" not in {row[0] for row in sheets["codebook"]}
        codebook = csv_rows(staff_client.get("/api/v1/rounds/demo/codebook.csv"))
        assert "Q11" not in {row[0] for row in codebook}

    def test_xlsx_with_a_codebook_sheet(
        self, staff_client: Client, answered: list[Response]
    ) -> None:
        response = staff_client.get("/api/v1/rounds/demo/responses.xlsx")
        assert response.status_code == 200
        content = body(response)
        sheets = xlsx_sheets(content)
        assert list(sheets) == ["responses", "codebook"]
        header, *rows = sheets["responses"]
        column = {name: i for i, name in enumerate(header)}
        assert len(rows) == 3 and rows[0][column["S01"]] == 5
        assert rows[1][column["Q11"]] == "=HYPERLINK(1)"  # stored as text, not a formula
        book = openpyxl.load_workbook(io.BytesIO(content))
        cell = book["responses"].cell(row=3, column=column["Q11"] + 1)
        assert cell.data_type == "s"
        codebook_header, *codebook = sheets["codebook"]
        assert codebook_header[:3] == ("question", "section", "type")
        s01 = [row for row in codebook if row[0] == "S01"]
        assert [row[6] for row in s01] == ["1", "2", "3", "4", "5"]
        assert s01[4][7] == "Rất hài lòng" and s01[4][8] == "Very satisfied"
        assert s01[0][5] == "S01"  # the indicator it feeds
        q8 = [row for row in codebook if row[0] == "Q8_4"]
        assert [row[6] for row in q8] == ["1", "0"]

    def test_the_codebook_csv_matches_the_sheet(
        self, staff_client: Client, client: Client, answered: list[Response]
    ) -> None:
        rows = csv_rows(client.get("/api/v1/rounds/demo/codebook.csv"))
        sheet = xlsx_sheets(staff_client.get("/api/v1/rounds/demo/responses.xlsx"))["codebook"]
        assert [r[0] for r in rows] == [r[0] for r in sheet]

    def test_queries_do_not_grow_with_the_responses(self, staff_client: Client, sipas: Any) -> None:
        def queries_for_export() -> tuple[int, int]:
            with CaptureQueriesContext(connection) as queries:
                rows = csv_rows(staff_client.get("/api/v1/rounds/sipas-2022/responses.csv"))
            return len(queries), len(rows) - 1

        generate_demo_responses(round_code=ROUND, responses=50, seed=3)
        few, fifty = queries_for_export()
        generate_demo_responses(round_code=ROUND, responses=450, seed=3)
        many, five_hundred = queries_for_export()
        assert (fifty, five_hundred) == (50, 500)
        assert few == many
        answers = Answer.objects.filter(response__round__code=ROUND).count()
        assert answers > 500 * 30  # the answers are there, and exported in the same queries

    @pytest.mark.parametrize("suffix", ["csv", "xlsx"])
    def test_raw_responses_are_refused_to_anonymous_callers_and_consumer_tokens(
        self, client: Client, consumer_client: Client, answered: list[Response], suffix: str
    ) -> None:
        url = f"/api/v1/rounds/demo/responses.{suffix}"
        anonymous = client.get(url)
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "not_authenticated"
        refused = consumer_client.get(url)
        assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
        researcher = token_client("researcher")
        assert researcher.get(url).status_code == 403

    def test_an_unknown_round_is_a_404(self, staff_client: Client, sipas: Any) -> None:
        response = staff_client.get("/api/v1/rounds/nope/responses.csv")
        assert response.status_code == 404 and response.json()["code"] == "not_found"


class TestResponseCsvBuiltByPostgresql:
    """``responses.csv`` comes from one ``COPY ... TO STDOUT``: the Python writer's bytes."""

    def test_the_copy_writes_what_the_python_writer_writes(
        self, staff_client: Client, answered: list[Response]
    ) -> None:
        first, second, third = answered
        tricky = {
            (first, "Q11"): 'Tốt, "rất" tốt\r\nthật',  # quoted: comma, quotes, newline
            (third, "Q11"): "+5",  # a number: no quote added
            (third, "A08"): "-hai",  # a formula: quoted
            (third, "A09"): "@SUM(1)",
            (second, "A10"): "-1.5e3",
        }
        for (response, code), value in tricky.items():
            question = Question.objects.get(version=response.version, code=code)
            Answer.objects.update_or_create(
                response=response, question=question, defaults={"value": value, "code": ""}
            )
        Response.objects.filter(pk=third.pk).update(
            weight=2.5,
            stratum="=S",
            psu="-7",
            submitted_at=dt.datetime(2026, 3, 1, 17, 0, tzinfo=dt.UTC),  # no microseconds
        )
        Response.objects.filter(pk=second.pk).update(weight=1e-05, psu="v1")
        survey_round = Round.objects.get(code="demo")
        expected = b"".join(exports.csv_stream(exports.response_rows(survey_round)))

        response = staff_client.get("/api/v1/rounds/demo/responses.csv")

        assert response.status_code == 200 and response.streaming
        assert body(response) == expected
        rows = csv_rows(staff_client.get("/api/v1/rounds/demo/responses.csv"))
        column = {name: i for i, name in enumerate(rows[0])}
        last = rows[3]
        assert last[column["submitted_at"]] == "2026-03-02T00:00:00+07:00"
        assert (last[column["weight"]], last[column["stratum"]], last[column["psu"]]) == (
            "2.5",
            "'=S",
            "-7",
        )
        assert (last[column["Q11"]], last[column["A08"]], last[column["A09"]]) == (
            "+5",
            "'-hai",
            "'@SUM(1)",
        )
        assert rows[1][column["Q11"]] == 'Tốt, "rất" tốt\r\nthật'

    def test_only_the_exported_questions_are_read(self, answered: list[Response]) -> None:
        version = answered[0].version
        Question.objects.filter(version=version, code="Q11").update(personal_data=True)
        q11 = Question.objects.get(version=version, code="Q11").pk
        query, header = exports.response_copy_sql(
            Round.objects.get(code="demo"), "Asia/Ho_Chi_Minh"
        )
        assert "Q11" not in header
        read = re.search(r"ANY\('\{([\d,]+)\}'", query)
        assert read and str(q11) not in read.group(1).split(",")
        assert f"o->'{q11}'" not in query and f"o->>'{q11}'" not in query
