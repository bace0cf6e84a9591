"""Series across questionnaire versions (issue 16, item 2): version mappings checked against
both versions, the change and trend compared only through them, the cross-round export.

Two rounds of a small questionnaire: r1 on version 1, r2 on version 2, where version 2
rewords SAT as SAT2 (indicator I_SAT as I_SAT2), turns OLD from a 5-point scale into a
yes/no question (its indicator I_OLD keeps its code but is another measure), and keeps YN
and its item I_Y as they were. Hand values (weights 1, each unit publishable from one
respondent):

    r1  A: SAT 5, 2   OLD 5, 4   YN yes, no     B: SAT 4  OLD 1  YN yes
    r2  A: SAT2 5, 5  OLD yes, yes  YN yes, yes B: SAT2 1 OLD no YN no

so I_SAT: A 50 → I_SAT2 100 (+50), B 100 → 0 (−100), national 66.67 → 66.67.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation
from hypothesis import example, given
from hypothesis import strategies as st

from feedback.models import Response
from results import series_exports
from results.dashboard import values as dashboard_values
from scoring.models import Score
from scoring.services import recompute_round
from surveys import mapping as series
from surveys import services as survey_services
from surveys.models import (
    Choice,
    Indicator,
    Question,
    QuestionnaireVersion,
    Round,
    Unit,
    VersionMapping,
    VersionMappingRow,
)
from tests.factories import (
    IndicatorFactory,
    QuestionFactory,
    SectionFactory,
    VersionFactory,
    round_opening_on,
    submitted_response,
)
from tests.support.hostile_input import ANY_CHARACTER, PROPERTY

pytestmark = pytest.mark.django_db

FULL_CSV = (
    "kind,from_code,to_code,relation\n"
    "question,SAT,SAT2,reworded\n"
    "question,OLD,,none\n"
    "question,YN,YN,same\n"
    "indicator,ROOT,ROOT,same\n"
    "indicator,I_SAT,I_SAT2,reworded\n"
    "indicator,I_OLD,,none\n"
)


def scale(section: Any, code: str, position: int, indicator: Indicator) -> Question:
    question = QuestionFactory(
        section=section,
        code=code,
        position=position,
        type=Question.Type.SCALE,
        min_value=Decimal(1),
        max_value=Decimal(5),
        indicator=indicator,
        satisfied_values=[4, 5],
    )
    Choice.objects.bulk_create(
        Choice(question=question, code=str(p), position=p, label_vi=f"Mức {p}") for p in range(1, 6)
    )
    return question


def version_one() -> QuestionnaireVersion:
    version = VersionFactory(label="v1", number=1)
    section = SectionFactory(version=version, code="MAIN", position=1)
    root = Indicator.objects.create(version=version, code="ROOT", kind="index", name_vi="Chỉ số")
    items = {
        code: IndicatorFactory(version=version, code=code, parent=root, position=position)
        for position, code in enumerate(["I_SAT", "I_OLD", "I_Y"], start=1)
    }
    scale(section, "SAT", 1, items["I_SAT"])
    scale(section, "OLD", 2, items["I_OLD"])
    QuestionFactory(
        section=section,
        code="YN",
        position=3,
        type=Question.Type.YESNO,
        indicator=items["I_Y"],
        satisfied_values=[True],
    )
    return survey_services.publish_version(version_id=version.pk)


def version_two(v1: QuestionnaireVersion) -> QuestionnaireVersion:
    draft = survey_services.start_draft(version_id=v1.pk, label="v2")
    sat = draft.questions.get(code="SAT")
    sat.code, sat.label_vi = "SAT2", "Câu hỏi viết lại"
    sat.save()
    item = draft.indicators.get(code="I_SAT")
    item.code = "I_SAT2"
    item.save()
    old = draft.questions.get(code="OLD")
    old.choices.all().delete()
    old.type, old.min_value, old.max_value, old.satisfied_values = "yesno", None, None, [True]
    old.save()
    return survey_services.publish_version(version_id=draft.pk)


def make_round(code: str, version: QuestionnaireVersion, year: int) -> Round:
    return round_opening_on(
        dt.date(year, 3, 1),
        period_end=dt.date(year, 12, 31),
        code=code,
        version=version,
        units=Unit.objects.filter(code__in=["A", "B"]),
    )


def answer(round_code: str, unit: str, **answers: Any) -> None:
    submitted_response(round_code, unit, answers, channel=Response.Channel.PAPER)


@pytest.fixture
def two_versions(settings) -> dict[str, Any]:
    """r1 (version 1) published; r2 (version 2) answered, not computed; no mapping yet."""
    settings.MIN_PUBLISH_N = 1
    for code in "AB":
        Unit.objects.create(code=code, name=f"Tỉnh {code}", kind=Unit.Kind.PROVINCE)
    v1 = version_one()
    r1 = make_round("r1", v1, 2023)
    answer("r1", "A", SAT=5, OLD=5, YN=True)
    answer("r1", "A", SAT=2, OLD=4, YN=False)
    answer("r1", "B", SAT=4, OLD=1, YN=True)
    recompute_round(round_code="r1")
    v2 = version_two(v1)
    r2 = make_round("r2", v2, 2024)
    answer("r2", "A", SAT2=5, OLD=True, YN=True)
    answer("r2", "A", SAT2=5, OLD=True, YN=True)
    answer("r2", "B", SAT2=1, OLD=False, YN=False)
    return {"v1": v1, "v2": v2, "r1": r1, "r2": r2}


@pytest.fixture
def mapped(two_versions) -> dict[str, Any]:
    """The mapping of FULL_CSV (I_Y left out: no row), then r2 computed."""
    mapping = VersionMapping.objects.create(
        from_version=two_versions["v1"], to_version=two_versions["v2"]
    )
    series.replace_rows(mapping=mapping, data=FULL_CSV)
    recompute_round(round_code="r2")
    return {**two_versions, "mapping": mapping}


def score(indicator: str, unit: str | None, round_code: str = "r2") -> Score:
    return Score.objects.get(
        run__round__code=round_code,
        run__status="published",
        indicator__code=indicator,
        scope="unit" if unit else "national",
        unit__code=unit,
    )


# --- Change ------------------------------------------------------------------------------------


def test_a_reworded_item_is_compared_across_versions(mapped) -> None:
    assert score("I_SAT2", "A").value == pytest.approx(100.0)
    assert score("I_SAT2", "A").change == pytest.approx(50.0)  # 50 → 100
    assert score("I_SAT2", "B").change == pytest.approx(-100.0)  # 100 → 0
    assert score("I_SAT2", None).change == pytest.approx(0.0)  # 2 of 3 → 2 of 3
    assert score("I_SAT2", "A").change_p is not None
    assert score("ROOT", "A").change is not None  # mapped same


def test_an_item_without_equivalent_has_no_change(mapped) -> None:
    # I_OLD keeps its code, but the mapping says it has no equivalent: not compared.
    assert score("I_OLD", "A").value == pytest.approx(100.0)
    assert score("I_OLD", "A").change is None and score("I_OLD", None).change is None
    # I_Y has no mapping row at all: not compared either, though its code is the same.
    assert score("I_Y", "A").change is None and score("I_Y", "A").change_p is None


def test_without_a_mapping_nothing_is_compared_across_versions(two_versions) -> None:
    recompute_round(round_code="r2")
    assert not Score.objects.filter(run__round__code="r2", change__isnull=False).exists()


def test_the_ranking_api_shows_the_change_through_the_mapping(mapped, client: Client) -> None:
    body = client.get("/api/v1/rankings/", {"round": "r2", "indicator": "I_SAT2"}).json()
    changes = {row["unit"]: row["change"] for row in body["results"]}
    assert changes == {"A": pytest.approx(50.0), "B": pytest.approx(-100.0)}


# --- Trend -------------------------------------------------------------------------------------


def trend(client: Client, indicator: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/units/A/trend/", {"indicator": indicator})
    assert response.status_code == 200, response.content
    return response.json()["points"]


def test_the_trend_follows_a_reworded_item_without_a_break(mapped, client: Client) -> None:
    points = trend(client, "I_SAT2")
    assert [(p["round"], p["indicator"], p["series_break"]) for p in points] == [
        ("r1", "I_SAT", False),
        ("r2", "I_SAT2", False),
    ]
    assert [p["value"] for p in points] == [pytest.approx(50.0), pytest.approx(100.0)]
    for cold in (True, False):  # the links read by a subquery, then from the cache
        if cold:
            cache.clear()
        dashboard = dashboard_values.unit_trend(Unit.objects.get(code="A"), "I_SAT2")
        assert [(p.indicator_code, p.series_break) for p in dashboard] == [
            ("I_SAT", False),
            ("I_SAT2", False),
        ]


@pytest.mark.parametrize("indicator", ["I_OLD", "I_Y"])  # mapped none; no row at all
def test_the_trend_of_an_item_without_equivalent_shows_a_series_break(
    mapped, client: Client, indicator: str
) -> None:
    points = trend(client, indicator)
    assert [(p["round"], p["series_break"], p["change"]) for p in points] == [
        ("r1", False, None),
        ("r2", True, None),
    ]
    dashboard = dashboard_values.unit_trend(Unit.objects.get(code="A"), indicator)
    assert [p.series_break for p in dashboard] == [False, True]


def test_the_dashboard_marks_the_series_break(two_versions, client: Client) -> None:
    recompute_round(round_code="r2")  # no mapping: the index is not comparable either
    html = client.get("/results/r2/units/A/?indicator=ROOT", HTTP_ACCEPT_LANGUAGE="en")
    assert html.status_code == 200
    text = html.content.decode()
    assert "(series break)" in text and "series-break-note" in text


def test_a_mapping_change_shows_in_the_trend_at_once(mapped, client: Client) -> None:
    assert trend(client, "I_SAT2")[1]["series_break"] is False
    mapping = mapped["mapping"]
    mapping.rows.get(kind="indicator", from_code="I_SAT").delete()
    # no code of version 1 is linked to I_SAT2 any more: only r2's own point is left
    assert [(p["round"], p["series_break"]) for p in trend(client, "I_SAT2")] == [("r2", False)]


# --- Checks ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _english() -> Any:
    with translation.override("en"):
        yield


def check(two_versions: dict[str, Any]) -> series.MappingCheck:
    return series.MappingCheck(two_versions["v1"], two_versions["v2"])


def test_a_row_with_an_unknown_code_is_refused(two_versions) -> None:
    errors = check(two_versions).row_errors("question", "NOPE", "SAT2", "same")
    assert errors == {"from_code": ["Version v1 has no question NOPE."]}
    errors = check(two_versions).row_errors("indicator", "I_SAT", "I_SAT", "reworded")
    assert errors == {"to_code": ["Version v2 has no indicator I_SAT."]}


def test_an_incompatible_scale_is_refused(two_versions) -> None:
    c = check(two_versions)
    # a 5-point scale does not map to yes/no
    assert (
        "the types differ (scale, yesno)"
        in c.row_errors("question", "OLD", "OLD", "reworded")["to_code"][0]
    )
    assert "different scales" in c.row_errors("indicator", "I_OLD", "I_OLD", "same")["to_code"][0]
    assert "kinds differ" in c.row_errors("indicator", "ROOT", "I_Y", "same")["to_code"][0]
    assert c.row_errors("question", "SAT", "SAT2", "reworded") == {}
    assert c.row_errors("question", "OLD", "", "none") == {}
    assert "to_code" in c.row_errors("question", "OLD", "OLD", "none")  # none has no to_code
    rows = [("question", "SAT", "SAT2", "same"), ("question", "YN", "SAT2", "same")]
    (first, _e), (second, errors) = series.rows_errors(c, rows)
    assert (first, second) == (0, 1) and "more than one" in errors["to_code"][-1]


def test_a_mapping_relates_two_published_versions_of_one_questionnaire(two_versions) -> None:
    v1, v2 = two_versions["v1"], two_versions["v2"]
    other = VersionFactory(label="other")
    assert "to_version" in series.mapping_errors(VersionMapping(from_version=v1, to_version=v1))
    assert "to_version" in series.mapping_errors(VersionMapping(from_version=v1, to_version=other))
    VersionMapping.objects.create(from_version=v1, to_version=v2)
    backwards = VersionMapping(from_version=v2, to_version=v1)
    with pytest.raises(ValidationError, match="already have a mapping"):
        backwards.full_clean()


# --- CSV ---------------------------------------------------------------------------------------


def test_a_csv_file_replaces_the_rows_and_the_audit_trail_records_it(two_versions) -> None:
    mapping = VersionMapping.objects.create(
        from_version=two_versions["v1"], to_version=two_versions["v2"]
    )
    assert series.replace_rows(mapping=mapping, data=FULL_CSV.encode()) == 6
    assert mapping.rows.get(kind="indicator", from_code="I_SAT").to_code == "I_SAT2"
    entry = LogEntry.objects.get_for_object(mapping).get(action=LogEntry.Action.UPDATE)
    assert "I_SAT,I_SAT2,reworded" in entry.changes_dict["rows"][1]


def test_a_csv_file_with_an_unknown_code_stores_nothing(two_versions) -> None:
    mapping = VersionMapping.objects.create(
        from_version=two_versions["v1"], to_version=two_versions["v2"]
    )
    series.replace_rows(mapping=mapping, data=FULL_CSV)
    bad = FULL_CSV + "question,SAT,NOPE,same\nindicator,I_OLD,I_OLD,reworded\nquestion,YN\n"
    with pytest.raises(ValidationError) as refused:
        series.replace_rows(mapping=mapping, data=bad)
    problems = refused.value.message_dict["file"]
    assert "Row 8, to_code: Version v2 has no question NOPE." in problems
    assert any(p.startswith("Row 8, from_code: SAT is mapped more than once") for p in problems)
    assert any(p.startswith("Row 9, to_code: I_OLD and I_OLD cannot be compared") for p in problems)
    assert "Row 10: 2 fields, expected 4." in problems
    assert mapping.rows.count() == 6  # as before


def test_the_command_loads_a_mapping_file(two_versions, tmp_path) -> None:
    path = tmp_path / "mapping.csv"
    path.write_text(FULL_CSV)
    out = io.StringIO()
    v1 = two_versions["v1"]
    arguments = ["--questionnaire", v1.questionnaire.code, "--from", str(v1.number)]
    arguments += ["--to", str(v1.number + 1), str(path)]
    call_command("load_version_mapping", *arguments, stdout=out)
    assert "6 rows" in out.getvalue()
    path.write_text("kind,from_code,to_code,relation\nquestion,NOPE,SAT2,same\n")
    with pytest.raises(CommandError, match="Row 2, from_code: Version v1 has no question NOPE"):
        call_command("load_version_mapping", *arguments)
    assert VersionMappingRow.objects.count() == 6


CELLS = st.text(ANY_CHARACTER, max_size=12) | st.sampled_from(
    ["SAT", "SAT2", "I_SAT", "same", "none", "reworded", "question", "indicator", "", "1e400"]
)


@PROPERTY
@given(rows=st.lists(st.lists(CELLS, min_size=1, max_size=5), max_size=6))
@example(rows=[["question", "SAT", "SAT2", "reworded"]])
@example(rows=[["question", "S\x00AT", "\ud800", "same"]])
def test_the_csv_loader_takes_any_file_without_crashing(two_versions, rows) -> None:
    mapping, _created = VersionMapping.objects.get_or_create(
        from_version=two_versions["v1"], to_version=two_versions["v2"]
    )
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["kind", "from_code", "to_code", "relation"], *rows])
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    try:
        stored = series.replace_rows(mapping=mapping, data=data)
    except ValidationError as error:
        assert set(error.message_dict) == {"file"}
    else:
        assert stored == mapping.rows.count()


# --- Admin -------------------------------------------------------------------------------------


def staff(*codenames: str) -> Any:
    user = get_user_model().objects.create_user(
        f"staff-{uuid.uuid4().hex[:6]}", password="x", is_staff=True
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def inline(rows: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "rows-TOTAL_FORMS": str(len(rows)),
        "rows-INITIAL_FORMS": "0",
        "rows-MIN_NUM_FORMS": "0",
        "rows-MAX_NUM_FORMS": "1000",
    }
    for index, (kind, a, b, relation) in enumerate(rows):
        data |= {
            f"rows-{index}-kind": kind,
            f"rows-{index}-from_code": a,
            f"rows-{index}-to_code": b,
            f"rows-{index}-relation": relation,
        }
    return data


ADD_URL = "/admin/surveys/versionmapping/add/"


def test_the_admin_refuses_an_unknown_code_and_saves_a_valid_mapping(
    two_versions, client: Client
) -> None:
    client.force_login(staff("add_versionmapping", "change_versionmapping", "view_versionmapping"))
    versions = {"from_version": two_versions["v1"].pk, "to_version": two_versions["v2"].pk}
    refused = client.post(
        ADD_URL,
        {**versions, **inline([("question", "SAT", "NOPE", "reworded")])},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert refused.status_code == 200
    assert "Version v2 has no question NOPE." in refused.content.decode()
    refused = client.post(
        ADD_URL,
        {**versions, **inline([("question", "OLD", "OLD", "reworded")])},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "cannot be compared" in refused.content.decode()
    assert not VersionMapping.objects.exists()
    saved = client.post(
        ADD_URL,
        {
            **versions,
            **inline([("question", "SAT", "SAT2", "reworded"), ("indicator", "I_OLD", "", "none")]),
        },
    )
    assert saved.status_code == 302
    mapping = VersionMapping.objects.get()
    assert set(mapping.rows.values_list("from_code", "to_code")) == {("SAT", "SAT2"), ("I_OLD", "")}
    row = mapping.rows.get(from_code="SAT")
    assert LogEntry.objects.get_for_object(row).exists()  # the audit trail has the row


def test_the_admin_loads_a_csv_file_and_fills_matching_codes(two_versions, client: Client) -> None:
    mapping = VersionMapping.objects.create(
        from_version=two_versions["v1"], to_version=two_versions["v2"]
    )
    upload = reverse("admin:surveys_versionmapping_upload", args=[mapping.pk])
    fill = reverse("admin:surveys_versionmapping_fill", args=[mapping.pk])
    client.force_login(staff("view_versionmapping"))
    assert client.get(upload).status_code == 403  # may look, not change
    assert client.post(fill).status_code == 403
    client.force_login(staff("change_versionmapping", "view_versionmapping"))
    page = client.get(reverse("admin:surveys_versionmapping_change", args=[mapping.pk]))
    assert upload in page.content.decode() and fill in page.content.decode()
    bad = SimpleUploadedFile("m.csv", b"kind,from_code,to_code,relation\nquestion,NOPE,SAT2,same\n")
    refused = client.post(upload, {"file": bad}, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 200
    assert "Row 2, from_code: Version v1 has no question NOPE." in refused.content.decode()
    assert not mapping.rows.exists()
    good = SimpleUploadedFile("m.csv", FULL_CSV.encode())
    assert client.post(upload, {"file": good}).status_code == 302
    assert mapping.rows.count() == 6
    assert client.post(fill).status_code == 302
    # the codes both versions share with comparable answers and not mapped yet: I_Y
    assert mapping.rows.get(from_code="I_Y").relation == "same"
    assert mapping.rows.count() == 7


# --- The cross-round export --------------------------------------------------------------------


def csv_rows(response: Any) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def series_url(two_versions: dict[str, Any]) -> str:
    return f"/api/v1/questionnaires/{two_versions['v1'].questionnaire.code}/responses.csv"


def test_the_cross_round_export_has_harmonized_columns(mapped, client: Client) -> None:
    client.force_login(staff("view_response"))
    response = client.get(series_url(mapped), {"rounds": "r2,r1"})
    assert response.status_code == 200
    rows = csv_rows(response)
    assert rows[0] == [*series_exports.HEADER, "SAT2", "OLD", "YN"]
    assert rows[0][:3] == ["id", "round", "version"]
    n1, n2 = mapped["v1"].number, mapped["v2"].number
    cells = [(r[1], r[2], r[3], r[-3], r[-2], r[-1]) for r in rows[1:]]
    # r1 first (older); SAT answers in SAT2 (reworded), OLD empty (none), YN (same)
    assert cells == [
        ("r1", str(n1), "A", "5", "", "1"),
        ("r1", str(n1), "A", "2", "", "0"),
        ("r1", str(n1), "B", "4", "", "1"),
        ("r2", str(n2), "A", "5", "1", "1"),
        ("r2", str(n2), "A", "5", "1", "1"),
        ("r2", str(n2), "B", "1", "0", "0"),
    ]


def test_the_cross_round_export_without_a_mapping_leaves_older_columns_empty(
    two_versions, client: Client
) -> None:
    client.force_login(staff("view_response"))
    rows = csv_rows(client.get(series_url(two_versions), {"rounds": "r1,r2"}))
    assert [r[-3:] for r in rows[1:4]] == [["", "", ""]] * 3
    assert [r[-3:] for r in rows[4:]] == [["5", "1", "1"], ["5", "1", "1"], ["1", "0", "0"]]


def test_the_cross_round_export_is_for_staff_who_may_view_responses(
    two_versions, client: Client
) -> None:
    url = series_url(two_versions)
    assert client.get(url, {"rounds": "r1"}).status_code == 401
    client.force_login(staff())
    assert client.get(url, {"rounds": "r1"}).status_code == 403
    client.force_login(staff("view_response"))
    assert client.get(url, {"rounds": "r1"}).status_code == 200
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    assert client.get(url, {"rounds": "r1"}).status_code == 200
    assert client.get("/api/v1/questionnaires/nope/responses.csv?rounds=r1").status_code == 404


def test_unknown_or_foreign_rounds_are_refused_naming_rounds(two_versions, client: Client) -> None:
    client.force_login(staff("view_response"))
    url = series_url(two_versions)
    make_round("r-other", version_one(), 2022)  # a round of another questionnaire
    for params in (
        {},
        {"rounds": ""},
        {"rounds": " , "},
        {"rounds": "r1,nope"},
        {"rounds": "r1,r-other"},
        {"rounds": ",".join(f"r{n}" for n in range(60))},
    ):
        response = client.get(url, params)
        body = response.json()
        assert response.status_code == 400, params
        assert body["code"] == "invalid" and list(body["fields"]) == ["rounds"], body


@PROPERTY
@given(text=st.text(ANY_CHARACTER, max_size=60))
@example(text="r1,\x00")
@example(text="r1,\ud800")
@example(text="r1," * 60)
def test_the_cross_round_export_answers_any_rounds_without_a_server_error(
    two_versions, client: Client, text: str
) -> None:
    client.force_login(staff("view_response"))
    query = quote(text.encode("utf-8", "surrogatepass"), safe="")
    response = client.get(f"{series_url(two_versions)}?rounds={query}")
    assert response.status_code in (200, 400), (text, response.status_code)
