"""SPSS, Stata and Parquet exports: read back with pyreadstat and pyarrow, compared with the CSV.

The same rows as the CSV export of the same data, cell for cell; variable labels in the
language asked for; value labels for every choice and scale point; missing answers marked
"not shown" or "not answered" (checked against ``feedback.validation.is_shown``); the codebook
in the Parquet file's metadata; the CSV export's permissions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pyreadstat
import pytest
from django.test import Client
from hypothesis import example, given

from demo.responses import generate_demo_responses
from feedback.models import Answer, Response
from feedback.validation import CleanAnswer, is_shown
from results import exports, readstat_files, stat_exports
from scoring.models import Run
from surveys.models import Question
from tests import results_fixtures
from tests.factories import submitted_response
from tests.results_fixtures import ROUND, token_client
from tests.support.downloads import body
from tests.support.hostile_input import FORM_VALUES, PROPERTY, assert_handled, form_body
from tests.support.responses import valid_answers

pytestmark = pytest.mark.django_db

published = results_fixtures.published
consumer_client = results_fixtures.consumer_client
staff_client = results_fixtures.staff_client

DEMO = "demo"  # open: responses can be submitted to it
READERS = {"sav": pyreadstat.read_sav, "dta": pyreadstat.read_dta}


def csv_table(response: Any) -> tuple[list[str], list[list[str]]]:
    text = body(response).decode("utf-8")
    header, *rows = csv.reader(io.StringIO(text[1:]))
    return header, rows


def read_stat(content: bytes, kind: str) -> tuple[list[dict[str, Any]], Any]:
    """Rows (as dicts) and metadata of an SPSS or Stata file, user-missing values kept."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"export.{kind}"
        path.write_bytes(content)
        frame, meta = READERS[kind](str(path), user_missing=True)
    return frame.to_dict("records"), meta


def read_parquet(content: bytes) -> Any:
    return pq.read_table(io.BytesIO(content))


@pytest.fixture
def responses(sipas: Any) -> list[Response]:
    """Demo responses of ``sipas-2022`` (display conditions hide some questions) and web-style
    ones with a formula-like comment, a comment left out and a shown question left empty."""
    generate_demo_responses(round_code=DEMO, responses=40, seed=11)
    stored = []
    for unit, s01, comment in (("19", 5, "Tốt"), ("01", 2, "=HYPERLINK(1)"), ("19", 4, "")):
        answers = valid_answers(S01=s01, Q11=comment)
        if not comment:
            del answers["Q11"]
            del answers["S05"]  # shown (no condition), not answered
        stored.append(submitted_response(DEMO, unit, answers))
    return stored


def expected_reasons() -> dict[tuple[int, str], str]:
    """Why each question without an answer has none, by ``is_shown`` (``a``: not shown)."""
    questions = list(
        Question.objects.filter(version__rounds__code=DEMO, personal_data=False)
        .select_related("section", "show_if_question")
        .order_by("section__position", "position", "id")
    )
    reasons: dict[tuple[int, str], str] = {}
    answers: dict[int, dict[str, CleanAnswer]] = {}
    stored = Answer.objects.filter(response__round__code=DEMO).select_related("question")
    for answer in stored:
        answers.setdefault(answer.response_id, {})[answer.question.code] = CleanAnswer(
            answer.question, answer.value
        )
    for pk in Response.objects.filter(round__code=DEMO).values_list("pk", flat=True):
        cleaned = answers.get(pk, {})
        for question in questions:
            if question.code not in cleaned:
                reasons[pk, question.code] = "b" if is_shown(question, cleaned) else "a"
    return reasons


def choice_codes() -> dict[str, list[str]]:
    """Each question's choice codes in codebook order (numbers of non-numeric codes)."""
    rows = exports.codebook_rows(Response.objects.first().round)
    next(rows)
    codes: dict[str, list[str]] = {}
    for row in rows:
        if row[6] is not None:
            codes.setdefault(row[0], []).append(row[6])
    return codes


def as_csv(
    value: Any, column: str, codes: dict[str, list[str]], kinds: dict[str, str], missing: Any
) -> str:
    """A value read from an SPSS/Stata file written as the CSV writes that column's cell
    (``missing``: the file's user-missing codes of each column)."""
    if value is None or (isinstance(value, float) and value != value) or value in ("a", "b"):
        return ""
    if any(value == r["lo"] for r in getattr(missing, "get", lambda _c: None)(column) or []):
        return ""
    kind = kinds.get(column)
    if column in ("id",) or kind in ("scale", "number", "yesno"):
        return str(int(value))
    if kind == "single":
        options = codes[column]
        if all(c.isdigit() for c in options):
            return str(int(value))
        return options[int(value) - 1]
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return exports.csv_text(value)


@pytest.mark.parametrize("kind", ["sav", "dta"])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_spss_and_stata_hold_the_csv_with_labels_and_missing_reasons(
    staff_client: Client, responses: list[Response], kind: str, lang: str
) -> None:
    header, csv_rows = csv_table(staff_client.get(f"/api/v1/rounds/{DEMO}/responses.csv"))
    response = staff_client.get(f"/api/v1/rounds/{DEMO}/responses.{kind}?lang={lang}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith(f'responses.{kind}"')
    rows, meta = read_stat(body(response), kind)
    assert len(rows) == len(csv_rows) == 43
    # the CSV's columns, in its order; multiple choices add one 0/1 variable per choice
    assert [c for c in meta.column_names if c in header] == header
    questions = {
        q.code: q
        for q in Question.objects.filter(version__rounds__code=DEMO).prefetch_related("choices")
    }
    kinds = {code: q.type for code, q in questions.items()}
    codes = choice_codes()
    for csv_row, row in zip(csv_rows, rows, strict=True):
        for name, cell in zip(header, csv_row, strict=True):
            value = row[name]
            if name == "submitted_at":
                local = dt.datetime.fromisoformat(cell).replace(tzinfo=None)
                assert abs(value - local) < dt.timedelta(milliseconds=1)
            elif name == "weight":
                assert value == float(cell)
            else:
                user_missing = getattr(meta, "missing_ranges", {})
                assert as_csv(value, name, codes, kinds, user_missing) == cell, (row["id"], name)
    # variable labels in the language asked for, value labels for every choice and point
    labels = meta.column_names_to_labels
    s01 = questions["S01"]
    label = (s01.label_en if lang == "en" else "") or s01.label_vi
    assert labels["S01"] == label[:80] if kind == "dta" else labels["S01"] == label[:255]
    assert labels["weight"] == ("Weight" if lang == "en" else "Trọng số")
    values = meta.variable_value_labels
    points = {float(c.code): c.label_en if lang == "en" else c.label_vi for c in s01.choices.all()}
    assert {k: v for k, v in values["S01"].items() if k not in ("a", "b", -8, -9)} == points
    q4 = questions["Q4"]  # codes khong_co, mot_so, nhieu: numbered 1, 2, 3
    assert {float(k): v for k, v in values["Q4"].items() if k not in ("a", "b", -8, -9)} == {
        float(n): (c.label_en if lang == "en" else c.label_vi)
        for n, c in enumerate(q4.choices.all(), 1)
    }
    assert values["Q8_1"][1] == ("Yes" if lang == "en" else "Có")
    q2_choices = list(questions["Q2"].choices.all())
    assert labels["Q2_1"].endswith(
        q2_choices[0].label_en if lang == "en" else q2_choices[0].label_vi
    )
    # distinct missing codes: not shown / not answered
    not_shown = (
        "Not shown (display condition)" if lang == "en" else "Không hiển thị (điều kiện hiển thị)"
    )
    if kind == "dta":
        assert "b" in meta.missing_user_values["S05"]  # the tags found in the data
        assert values["S01"]["a"] == not_shown
        assert values["S01"]["b"] == ("Not answered" if lang == "en" else "Không trả lời")
        reason_of = {"a": "a", "b": "b"}
    else:
        assert meta.missing_ranges["S01"] == [{"lo": -8.0, "hi": -8.0}, {"lo": -9.0, "hi": -9.0}]
        assert values["S01"][-8.0] == not_shown
        reason_of = {-8.0: "a", -9.0: "b"}
    reasons = expected_reasons()
    seen = set()
    for row in rows:
        for code, question in questions.items():
            if question.type in ("text", "longtext", "multiple") or question.personal_data:
                continue
            reason = reason_of.get(row[code])
            if reason is not None or (row[code] != row[code]):
                assert reason == reasons[int(row["id"]), code], (row["id"], code)
                seen.add(reason)
    assert seen == {"a", "b"}  # both reasons occur in these responses
    # a multiple choice: its text as in the CSV, and one 0/1 variable per choice
    q2 = header.index("Q2")
    for csv_row, row in zip(csv_rows, rows, strict=True):
        chosen = csv_row[q2].split(";") if csv_row[q2] else None
        for n, choice in enumerate(q2_choices, 1):
            value = row[f"Q2_{n}"]
            if chosen is None:
                assert value in ("a", "b", -8.0, -9.0)
            else:
                assert value == float(choice.code in chosen)


def test_weights_and_design_columns_are_variables(
    staff_client: Client, responses: list[Response]
) -> None:
    Response.objects.filter(pk=responses[0].pk).update(weight=2.5, stratum="urban", psu="P-17")
    rows, meta = read_stat(
        body(staff_client.get(f"/api/v1/rounds/{DEMO}/responses.sav?lang=en")), "sav"
    )
    row = next(r for r in rows if int(r["id"]) == responses[0].pk)
    assert (row["weight"], row["stratum"], row["psu"], row["unit"]) == (2.5, "urban", "P-17", "19")
    assert meta.column_names_to_labels["psu"] == "Primary sampling unit (PSU)"


def test_parquet_holds_the_csv_and_the_codebook(
    staff_client: Client, responses: list[Response]
) -> None:
    header, csv_rows = csv_table(staff_client.get(f"/api/v1/rounds/{DEMO}/responses.csv"))
    response = staff_client.get(f"/api/v1/rounds/{DEMO}/responses.parquet?lang=en")
    assert response.status_code == 200
    table = read_parquet(body(response))
    assert table.column_names == header
    for csv_row, row in zip(csv_rows, table.to_pylist(), strict=True):
        for name, cell in zip(header, csv_row, strict=True):
            value = row[name]
            if name == "submitted_at":
                assert value == dt.datetime.fromisoformat(cell)
            elif isinstance(value, bool):
                assert str(int(value)) == cell
            elif value is None:
                assert cell == ""
            elif isinstance(value, float):
                assert value == float(cell)
            else:
                assert exports.csv_text(value) == cell or str(value) == cell, (name, value, cell)
    codebook = json.loads(table.schema.metadata[stat_exports.CODEBOOK_KEY])
    assert codebook["round"] == DEMO and codebook["language"] == "en"
    s01 = next(q for q in codebook["questions"] if q["code"] == "S01")
    assert [c["code"] for c in s01["choices"]] == ["1", "2", "3", "4", "5"]
    assert s01["choices"][4]["label_vi"] == "Rất hài lòng"
    field = table.schema.field("S01")
    assert field.metadata[b"label"].decode() == Question.objects.filter(code="S01").first().label_en
    assert json.loads(field.metadata[b"choices"])[4] == {"code": "5", "label": "Very satisfied"}


def test_personal_data_is_never_in_the_statistical_files(
    staff_client: Client, responses: list[Response]
) -> None:
    Question.objects.filter(version__rounds__code=DEMO, code="Q11").update(personal_data=True)
    for kind in ("sav", "dta"):
        rows, meta = read_stat(
            body(staff_client.get(f"/api/v1/rounds/{DEMO}/responses.{kind}")), kind
        )
        assert "Q11" not in meta.column_names and "S01" in meta.column_names
        assert not any(v == "Tốt" for row in rows for v in row.values())
    table = read_parquet(body(staff_client.get(f"/api/v1/rounds/{DEMO}/responses.parquet")))
    assert "Q11" not in table.column_names
    assert "Q11" not in table.schema.metadata[stat_exports.CODEBOOK_KEY].decode()


@pytest.mark.parametrize("kind", ["sav", "dta", "parquet"])
def test_raw_responses_are_refused_to_anonymous_callers_and_consumer_tokens(
    client: Client, consumer_client: Client, responses: list[Response], kind: str
) -> None:
    url = f"/api/v1/rounds/{DEMO}/responses.{kind}"
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    assert consumer_client.get(url).status_code == 403
    assert token_client("researcher").get(url).status_code == 403


@pytest.mark.parametrize("kind", ["sav", "dta", "parquet"])
def test_a_bad_language_is_a_400_naming_it(
    staff_client: Client, client: Client, responses: list[Response], kind: str
) -> None:
    for value in ("fr", "", "vi,en"):
        for answer in (
            staff_client.get(f"/api/v1/rounds/{DEMO}/responses.{kind}?lang={value}"),
            client.get(f"/api/v1/rounds/{ROUND}/scores.{kind}?lang={value}"),
        ):
            assert answer.status_code == 400, value
            assert "lang" in answer.json()["fields"]
    assert staff_client.get(f"/api/v1/rounds/nope/responses.{kind}").status_code == 404


@pytest.mark.parametrize("kind", ["sav", "dta", "parquet"])
def test_scores_are_public_and_equal_the_csv(client: Client, published: Run, kind: str) -> None:
    header, csv_rows = csv_table(client.get(f"/api/v1/rounds/{ROUND}/scores.csv"))
    response = client.get(f"/api/v1/rounds/{ROUND}/scores.{kind}?lang=en")
    assert response.status_code == 200 and response.headers["ETag"]
    if kind == "parquet":
        table = read_parquet(body(response))
        rows = table.to_pylist()
        assert table.schema.field("value").metadata[b"label"] == b"value"
    else:
        rows, meta = read_stat(body(response), kind)
        assert meta.column_names == header
        assert meta.column_names_to_labels["se"] == "standard error"
        assert meta.variable_value_labels["suppressed"] == {1.0: "Yes", 0.0: "No"}
    assert len(rows) == len(csv_rows) == 68 * 65
    for csv_row, row in zip(csv_rows, rows, strict=True):
        for name, cell in zip(header, csv_row, strict=True):
            value = row[name]
            if value is None or (isinstance(value, float) and value != value):
                assert cell == "", name
            elif name in stat_exports.SCORE_FLAGS:
                assert bool(value) == (cell == "True")
            elif isinstance(value, float | int) and not isinstance(value, bool):
                assert value == float(cell), name
            else:
                assert value == cell, name
    again = client.get(
        f"/api/v1/rounds/{ROUND}/scores.{kind}?lang=en", HTTP_IF_NONE_MATCH=response["ETag"]
    )
    assert again.status_code == 304


def test_a_round_without_responses_gives_empty_files(staff_client: Client, sipas: Any) -> None:
    for kind in ("sav", "dta"):
        rows, meta = read_stat(
            body(staff_client.get(f"/api/v1/rounds/{DEMO}/responses.{kind}")), kind
        )
        assert rows == [] and "S01" in meta.column_names
    table = read_parquet(body(staff_client.get(f"/api/v1/rounds/{DEMO}/responses.parquet")))
    assert table.num_rows == 0 and "S01" in table.column_names


@PROPERTY
@given(value=FORM_VALUES)
@example(value="vi\x00")
@example(value="e\ud800n")
def test_any_language_parameter_is_answered_without_a_server_error(
    staff_client: Client, sipas: Any, value: str
) -> None:
    query = form_body({"lang": value})
    for url in (f"/api/v1/rounds/{DEMO}/responses.dta", f"/api/v1/rounds/{DEMO}/scores.sav"):
        answer = staff_client.get(f"{url}?{query}")
        assert_handled(answer, "lang")
        assert answer.status_code == 400 or value in ("vi", "en")


def test_missing_codes_below_a_minimum_that_allows_minus_eight(tmp_path: Path) -> None:
    """A number that may be -8 or -9 gets user-missing codes below its minimum."""
    low = stat_exports.Item(code="N", index=0, type="number", min_value=-10)
    free = stat_exports.Item(code="M", index=1, type="number")
    assert stat_exports.spss_codes(low) == {"a": -11.0, "b": -12.0}
    assert stat_exports.spss_codes(free)["a"] < -(2**53)
    scale = stat_exports.Item(code="S", index=2, type="scale", min_value=1)
    assert stat_exports.spss_codes(scale) == {"a": -8.0, "b": -9.0}
    variables = [
        readstat_files.Variable("N", "number", missing_codes=stat_exports.spss_codes(low)),
        readstat_files.Variable("T", "text", width=3000),
        readstat_files.Variable("D", "date"),
    ]
    long_text = "ệ" * 1000  # 3,000 bytes
    rows = [
        [-9, long_text, dt.date(2024, 2, 29)],
        [stat_exports.NOT_SHOWN, "", stat_exports.NOT_ANSWERED],
    ]
    for kind in ("sav", "dta"):
        path = tmp_path / f"f.{kind}"
        readstat_files.write_file(path, kind, variables, iter(rows), 2)
        frame, meta = READERS[kind](str(path), user_missing=True)
        read = frame.to_dict("records")
        assert read[0]["N"] == -9.0 and read[0]["D"] == dt.date(2024, 2, 29)
        if kind == "sav":
            assert read[0]["T"] == long_text
            assert read[1]["N"] == -11.0 and read[1]["D"] != read[1]["D"]  # NaN: system-missing
            assert meta.missing_ranges["N"] == [{"lo": c, "hi": c} for c in (-11.0, -12.0)]
        else:  # Stata's text variables hold 2,045 bytes: cut at a character boundary
            assert read[0]["T"] == "ệ" * 681
            assert (read[1]["N"], read[1]["D"]) == ("a", "b")


def test_fewer_rows_than_declared_is_an_error(tmp_path: Path) -> None:
    variables = [readstat_files.Variable("x", "number")]
    with pytest.raises(readstat_files.ReadstatError):
        readstat_files.write_file(tmp_path / "f.sav", "sav", variables, iter([[1]]), 2)
