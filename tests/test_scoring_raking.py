"""Raking of weights to population margins: IPF against hand values, CSV upload, runs."""

from __future__ import annotations

import datetime as dt
import hashlib
from fractions import Fraction as F
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from feedback.models import Answer, Response
from scoring import raking, services
from scoring.margins import replace_margins
from scoring.models import PopulationMargin, RakingFactor, ResponseWeight, Run, Score
from surveys.models import Round, Unit
from tests.support.responses import answer
from tests.support.small_surveys import approx, respond, small_round

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parent.parent / "scoring/data/examples/margins-example.csv"
UPLOAD = reverse("admin:scoring_populationmargin_upload")
MARGINS = reverse("admin:scoring_populationmargin_changelist")


# The hand example of one unit. Cells (sex|age, area) and their design-weighted totals:
#
#             u    r          The limit of IPF is the table d·α(sex_age)·β(area) that meets
#   nam|a1    1    1          both margins. With α = (1, 1/2, 1, 3/2) and β(u) = 2, β(r) = 1
#   nam|a2    1    2 (w=2)    it is 2 1 / 1 1 / 4 1 / 3 3/2 (sum 29/2); the margins below are
#   nu|a1     2    1          its sums × 1000. Margins are proportions of the unit's complete
#   nu|a2     1    1          design weight T = 10, so each factor is α·β · 10 / (29/2).
CELLS = {
    ("nam", "a1", "u"): 1.0,
    ("nam", "a1", "r"): 1.0,
    ("nam", "a2", "u"): 1.0,
    ("nam", "a2", "r"): 2.0,
    ("nu", "a1", "u"): 2.0,
    ("nu", "a1", "r"): 1.0,
    ("nu", "a2", "u"): 1.0,
    ("nu", "a2", "r"): 1.0,
}
SEX_AGE = {"nam|a1": 3000.0, "nam|a2": 2000.0, "nu|a1": 5000.0, "nu|a2": 4500.0}
AREA = {"u": 10000.0, "r": 4500.0}
FACTORS = {
    ("nam", "a1", "u"): F(40, 29),
    ("nam", "a1", "r"): F(20, 29),
    ("nam", "a2", "u"): F(20, 29),
    ("nam", "a2", "r"): F(10, 29),
    ("nu", "a1", "u"): F(40, 29),
    ("nu", "a1", "r"): F(20, 29),
    ("nu", "a2", "u"): F(60, 29),
    ("nu", "a2", "r"): F(30, 29),
}
MARGINS_CSV = "unit,dimension,category,population\n" + "".join(
    [f"A,sex_age,{k},{p:g}\n" for k, p in SEX_AGE.items()]
    + [f"A,area,{k},{p:g}\n" for k, p in AREA.items()]
)


def rake(cells: dict = CELLS, margins: dict | None = None, **options: Any) -> tuple[dict, dict]:
    margins = margins if margins is not None else {"sex_age": SEX_AGE, "area": AREA}
    return raking.rake(cells, margins, **{"max_iterations": 1000, "tolerance": 1e-12, **options})


def test_ipf_gives_the_factors_worked_out_by_hand() -> None:
    factors, report = rake()
    assert factors == {cell: approx(f) for cell, f in FACTORS.items()}
    assert report["converged"] is True
    assert 1 <= report["iterations"] < 1000
    assert report["max_deviation"] <= 1e-12
    assert (report["min_factor"], report["max_factor"]) == (approx(F(10, 29)), approx(F(60, 29)))
    assert report["dimensions"] == ["sex_age", "area"]
    assert report["empty_categories"] == {} and report["outside"] == 0


def test_one_sweep_is_reported_not_converged_with_its_deviation() -> None:
    factors, report = rake(max_iterations=1)
    # Sweep 1, sex_age: targets 60/29, 40/29, 100/29, 90/29 over row sums 2, 3, 3, 2; then
    # area: u sums to 465/87 (target 200/29: × 40/31), r to 405/87 (target 90/29: × 2/3).
    # nam|a2 then sums to 1600/2697 + 160/261 = 9760/8091 against 11160/8091: 35/279 off,
    # the largest deviation (nam|a1 and nu|a2 2/93, nu|a1 23/279).
    assert report["converged"] is False and report["iterations"] == 1
    assert report["max_deviation"] == approx(F(35, 279))
    assert factors["nam", "a2", "r"] == approx(F(40, 87) * F(2, 3))
    assert factors["nu", "a1", "u"] == approx(F(100, 87) * F(40, 31))
    area = {k: sum(CELLS[c] * f for c, f in factors.items() if c[2] == k) for k in "ur"}
    assert area == {"u": approx(F(200, 29)), "r": approx(F(90, 29))}  # the last margin is met


def test_an_empty_margin_category_is_reported_and_the_others_share_the_total() -> None:
    cells = {cell: d for cell, d in CELLS.items() if cell[:2] != ("nu", "a2")}  # T = 8
    factors, report = rake(cells)
    assert report["empty_categories"] == {"sex_age": ["nu|a2"]}
    assert report["converged"] is True
    raked = {c: d * factors[c] for c, d in cells.items()}
    # nu|a2 left out: 3000, 2000, 5000 share T = 8; area keeps 10000 : 4500 of T.
    for key, target in {"nam|a1": F(12, 5), "nam|a2": F(8, 5), "nu|a1": F(4)}.items():
        assert sum(w for c, w in raked.items() if f"{c[0]}|{c[1]}" == key) == approx(target)
    assert sum(w for c, w in raked.items() if c[2] == "u") == approx(F(8 * 10000, 14500))


def test_a_category_without_population_keeps_its_design_weight() -> None:
    factors, report = rake(margins={"sex_age": SEX_AGE, "area": {"u": 1000.0, "r": 0.0}})
    assert report["outside"] == 5.0  # the design weight of the r cells: 1 + 2 + 1 + 1
    assert all(factors[c] == 1.0 for c in CELLS if c[2] == "r")


def test_a_unit_without_complete_respondents_is_not_raked() -> None:
    factors, report = rake(cells={}, margins={"area": AREA})
    assert factors == {} and report["converged"] is False
    assert (report["iterations"], report["max_deviation"]) == (0, None)


# --- runs on a small questionnaire -------------------------------------------------------


@pytest.fixture
def small(settings) -> dict[str, Any]:
    """Unit A: the hand example's cells, yes/no in Q1; one respondent without AREA.

    unit A   nam a1 u w1 yes    nam a1 r w1 no     nam a2 u w1 yes   nam a2 r w2 yes
             nu a1 u w1 yes     nu a1 u w1 no      nu a1 r w1 yes    nu a2 u w1 no
             nu a2 r w1 yes     nam a1 (no area) w1 yes
    unit B   (no demographics) w1 yes, w1 no; no margins
    """
    settings.RAKING_QUESTIONS = {"sex": "SEX", "age": "AGE", "area": "AREA"}
    settings.RAKING_MAX_ITERATIONS, settings.RAKING_TOLERANCE = 1000, 1e-12
    survey_round, _version = small_round()
    rows = [
        ("nam", "a1", "u", 1.0, True),
        ("nam", "a1", "r", 1.0, False),
        ("nam", "a2", "u", 1.0, True),
        ("nam", "a2", "r", 2.0, True),
        ("nu", "a1", "u", 1.0, True),
        ("nu", "a1", "u", 1.0, False),
        ("nu", "a1", "r", 1.0, True),
        ("nu", "a2", "u", 1.0, False),
        ("nu", "a2", "r", 1.0, True),
    ]
    responses = {
        cell: respond(survey_round, "A", w, SEX=s, AGE=a, AREA=r, Q1=q)
        for cell, (s, a, r, w, q) in enumerate(rows)
    }
    missing = respond(survey_round, "A", 1.0, SEX="nam", AGE="a1", Q1=True)
    respond(survey_round, "B", 1.0, Q1=True)
    respond(survey_round, "B", 1.0, Q1=False)
    replace_margins(round_code="r-raking", data=MARGINS_CSV)
    return {"round": survey_round, "rows": rows, "responses": responses, "missing": missing}


def digest() -> str:
    """Every column of every response and answer, hashed."""
    content = repr(
        [
            list(Response.objects.order_by("id").values_list()),
            list(Answer.objects.order_by("id").values_list()),
        ]
    )
    return hashlib.sha256(content.encode()).hexdigest()


def test_a_run_rakes_the_weights_and_the_item_index_is_the_hand_value(small) -> None:
    before = digest()
    run = services.recompute_round(round_code="r-raking")
    assert digest() == before  # scoring never writes responses or answers

    # Raked weights: design weight × factor (nam a2 r: 2 × 10/29).
    weights = dict(ResponseWeight.objects.filter(run=run).values_list("response_id", "weight"))
    expected = {
        small["responses"][i].pk: w * FACTORS[s, a, r]
        for i, (s, a, r, w, _q) in enumerate(small["rows"])
    }
    assert weights == {pk: approx(w) for pk, w in expected.items()}
    assert small["missing"].pk not in weights  # keeps its design weight, 1
    assert RakingFactor.objects.filter(run=run).count() == 8

    scores = {
        (s.scope, s.unit.code if s.unit else None): s
        for s in Score.objects.filter(run=run, indicator__code="I1").select_related("unit")
    }
    # Unit A: satisfied 40 + 20 + 20 + 40 + 20 + 30 (/29) + 1 (no area) over 290/29 + 1.
    assert scores["unit", "A"].value == approx(F(100) * F(199, 29) / F(319, 29))
    assert scores["unit", "A"].weight_sum == approx(11)  # raking keeps the unit's total
    assert scores["unit", "B"].value == approx(50)
    # National, pooled: (199/29 + 1) / (11 + 2).
    assert scores["national", None].value == approx(F(100) * F(228, 29) / 13)


def test_the_run_reports_convergence_per_unit(small, client: Client) -> None:
    run = services.recompute_round(round_code="r-raking")
    report = run.settings_used["raking"]
    assert report["questions"] == {"sex": "SEX", "age": "AGE", "area": "AREA"}
    assert (report["max_iterations"], report["tolerance"]) == (1000, 1e-12)
    assert report["converged"] is True and report["raked_responses"] == 9
    assert report["units_without_margins"] == ["B"]
    unit = report["units"]["A"]
    assert (unit["responses"], unit["missing"], unit["missing_weight"]) == (10, 1, 1.0)
    assert unit["converged"] is True and unit["max_deviation"] <= 1e-12
    assert (unit["min_factor"], unit["max_factor"]) == (approx(F(10, 29)), approx(F(60, 29)))
    body = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert body["settings"]["raking"]["units"]["A"]["converged"] is True


def test_a_run_stopped_after_one_sweep_is_reported_not_converged(small, settings) -> None:
    settings.RAKING_MAX_ITERATIONS = 1
    run = services.recompute_round(round_code="r-raking")
    report = run.settings_used["raking"]
    assert report["converged"] is False
    assert report["units"]["A"]["iterations"] == 1
    assert report["units"]["A"]["max_deviation"] == approx(F(35, 279))
    assert run.status == Run.Status.PUBLISHED  # published with the last sweep's factors


def test_a_round_with_area_margins_only_is_post_stratified_by_area(small) -> None:
    replace_margins(
        round_code="r-raking", data="unit,dimension,category,population\nA,area,u,20\nA,area,r,9\n"
    )
    run = services.recompute_round(round_code="r-raking")
    report = run.settings_used["raking"]
    assert report["questions"] == {"area": "AREA"}
    # Design weight 5 in u and 5 in r share T = 10 as 20 : 9: factors 40/29 and 18/29.
    assert report["units"]["A"]["iterations"] == 1 and report["units"]["A"]["missing"] == 1
    factors = dict(RakingFactor.objects.filter(run=run).values_list("area", "factor"))
    assert factors == {"u": approx(F(40, 29)), "r": approx(F(18, 29))}
    assert set(RakingFactor.objects.filter(run=run).values_list("sex", "age")) == {("", "")}
    # Satisfied: 3 × 40/29 in u, (2 + 1 + 1) × 18/29 in r, and 1 without area; of 11.
    value = Score.objects.get(run=run, indicator__code="I1", unit__code="A").value
    assert value == approx(F(100) * F(221, 29) / 11)


def test_raking_takes_the_same_statements_whatever_the_number_of_responses(small) -> None:
    survey_round = small["round"]
    run, _created = services.start_run(round_code="r-raking")
    arguments = {
        "run_id": run.pk,
        "round_id": survey_round.pk,
        "version_id": survey_round.version_id,
    }
    with CaptureQueriesContext(connection) as few:
        raking.rake_run(**arguments)
    for _ in range(20):
        respond(survey_round, "A", 1.0, SEX="nu", AGE="a2", AREA="u", Q1=True)
    with CaptureQueriesContext(connection) as more:
        report = raking.rake_run(**arguments)
    assert len(more) == len(few) <= 12
    assert report is not None and report["raked_responses"] == 29


def test_the_change_is_against_the_previous_round_raked_as_it_was(small, settings) -> None:
    # published from one respondent on: no change is kept over a withheld previous value
    settings.MIN_PUBLISH_N = 1
    old = Round.objects.create(
        code="r-raking-old",
        name_vi="Vòng trước",
        period_start=dt.date(2023, 1, 1),
        period_end=dt.date(2023, 12, 31),
        opens_at=timezone.now() - dt.timedelta(days=10),
        closes_at=timezone.now() - dt.timedelta(days=2),
        version=small["round"].version,
    )
    old.units.set(small["round"].units.all())
    for s, a, r, w, q in small["rows"]:
        respond(old, "A", w, SEX=s, AGE=a, AREA=r, Q1=q)
    respond(old, "A", 1.0, SEX="nam", AGE="a1", Q1=True)
    replace_margins(round_code="r-raking-old", data=MARGINS_CSV)
    services.recompute_round(round_code="r-raking-old")
    PopulationMargin.objects.filter(round=small["round"]).delete()
    run = services.recompute_round(round_code="r-raking")
    score = Score.objects.get(run=run, indicator__code="I1", unit__code="A")
    # Now 8 of 11 with design weights; then the hand value raked, 199/29 of 319/29.
    assert score.change == approx(F(800, 11) - F(100) * F(199, 319))


def test_a_round_without_margins_keeps_design_weights(small) -> None:
    PopulationMargin.objects.all().delete()
    run = services.recompute_round(round_code="r-raking")
    assert "raking" not in run.settings_used
    assert not ResponseWeight.objects.filter(run=run).exists()
    value = Score.objects.get(run=run, indicator__code="I1", unit__code="A").value
    assert value == approx(F(800, 11))  # design weights: 8 of 11 satisfied


def test_weights_go_with_their_run_when_it_is_pruned(small) -> None:
    first = services.recompute_round(round_code="r-raking")
    second = services.recompute_round(round_code="r-raking")
    assert services.prune_runs(round_id=first.round_id, keep=0) == 1
    assert not ResponseWeight.objects.filter(run_id=first.pk).exists()
    assert not RakingFactor.objects.filter(run_id=first.pk).exists()
    assert ResponseWeight.objects.filter(run=second).count() == 9


# --- the CSV file ------------------------------------------------------------------------


BAD_CSV = (
    "unit,dimension,category,population\n"
    "A,sex_age,nam|a1,3000\n"
    "Z,sex_age,nam|a2,2000\n"
    "A,sex_age,nam|a9,5000\n"
    "A,area,u,-5\n"
    "A,area,r,many\n"
    "A,sex_age,nam|a1,3000\n"
    "A,ages,a1,1\n"
)


def test_file_errors_name_their_row_and_field_and_nothing_is_stored(small) -> None:
    before = list(PopulationMargin.objects.order_by("id").values_list())
    with translation.override("en"), pytest.raises(ValidationError) as error:
        replace_margins(round_code="r-raking", data=BAD_CSV)
    problems = error.value.message_dict["file"]
    assert problems == [
        "Row 3, unit: unknown unit Z.",
        "Row 4, category: unknown sex_age category nam|a9 (expected one of nam|a1, nam|a2, "
        "nu|a1, nu|a2).",
        "Row 5, population: -5 is negative.",
        "Row 6, population: many is not a number.",
        "Row 7, category: A sex_age nam|a1 repeats row 2.",
        "Row 8, dimension: unknown dimension ages (expected sex_age, area).",
    ]
    assert list(PopulationMargin.objects.order_by("id").values_list()) == before


def test_a_wrong_header_and_a_unit_outside_the_round_are_errors(small) -> None:
    Unit.objects.create(code="C", name="C", kind=Unit.Kind.PROVINCE)
    with translation.override("en"):
        with pytest.raises(ValidationError, match="Row 1: the columns must be"):
            replace_margins(round_code="r-raking", data="unit;dimension;category;population\n")
        with pytest.raises(ValidationError, match="Row 2, unit: unit C is not covered by"):
            replace_margins(round_code="r-raking", data="unit,dimension,category,population\n"
                            "C,area,u,1\n")  # fmt: skip
        with pytest.raises(ValidationError, match="Unit A, area: the populations sum to 0"):
            replace_margins(round_code="r-raking", data="unit,dimension,category,population\n"
                            "A,area,u,0\nA,area,r,0\n")  # fmt: skip


def test_a_good_file_replaces_the_round_margins_at_once(small) -> None:
    assert PopulationMargin.objects.count() == 6
    stored = replace_margins(
        round_code="r-raking",
        data=b"\xef\xbb\xbfunit,dimension,category,population\nB,area,u,10\nB,area,r,30.5\n",
    )
    assert stored == 2
    assert sorted(PopulationMargin.objects.values_list("unit__code", "category", "population")) == [
        ("B", "r", 30.5),
        ("B", "u", 10.0),
    ]


def test_the_command_loads_a_file_and_reports_errors(small, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(MARGINS_CSV)
    bad.write_text(BAD_CSV)
    out = StringIO()
    call_command("load_margins", "--round", "r-raking", str(good), stdout=out)
    assert "6 population margins stored" in out.getvalue()
    with translation.override("en"), pytest.raises(CommandError, match="Row 3, unit"):
        call_command("load_margins", "--round", "r-raking", str(bad), stdout=out)
    assert PopulationMargin.objects.count() == 6


def test_the_example_file_loads_for_the_sipas_round(sipas) -> None:
    assert replace_margins(round_code="sipas-2022", data=EXAMPLE.read_bytes()) == 24


def test_a_sipas_run_rakes_on_the_built_in_questions(sipas) -> None:
    for sex, age, area, s01 in [
        ("nam", "18_25", "do_thi", 5),
        ("nu", "35_49", "do_thi", 2),
        ("nu", "35_49", "nong_thon", 4),
        ("nam", "tren_60", "nong_thon", 1),
    ]:
        answer("19", A01=sex, A02=age, A06=area, S01=s01)
    answer("19", S01=5)  # no A06: keeps its design weight
    replace_margins(round_code="demo", data=EXAMPLE.read_bytes())
    before = digest()
    run = services.recompute_round(round_code="demo")
    assert digest() == before
    unit = run.settings_used["raking"]["units"]["19"]
    assert (unit["responses"], unit["missing"]) == (5, 1)
    assert unit["converged"] is True
    assert len(unit["empty_categories"]["sex_age"]) == 7  # 3 of 10 sex × age bands answered
    assert ResponseWeight.objects.filter(run=run).count() == 4


# --- the admin ---------------------------------------------------------------------------


def upload(client: Client, content: str) -> Any:
    file = SimpleUploadedFile("margins.csv", content.encode(), content_type="text/csv")
    return client.post(UPLOAD, {"round": "r-raking", "file": file})


def test_the_admin_upload_stores_a_good_file_and_shows_the_errors_of_a_bad_one(
    small, admin_client: Client, settings
) -> None:
    settings.LANGUAGE_CODE = "en"
    PopulationMargin.objects.all().delete()
    page = admin_client.get(MARGINS)
    assert page.status_code == 200 and UPLOAD in page.content.decode()
    assert admin_client.get(UPLOAD).status_code == 200

    response = upload(admin_client, BAD_CSV)
    assert response.status_code == 200
    assert "Row 5, population: -5 is negative." in response.content.decode()
    assert not PopulationMargin.objects.exists()

    response = upload(admin_client, MARGINS_CSV)
    assert response.status_code == 302
    assert PopulationMargin.objects.filter(round=small["round"]).count() == 6
    assert admin_client.get(response.url).status_code == 200


def test_staff_without_the_margin_permissions_cannot_upload(small, client: Client) -> None:
    user = get_user_model().objects.create_user("clerk", password="x-long-password", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_populationmargin"))
    client.force_login(user)
    assert client.get(MARGINS).status_code == 200
    assert UPLOAD not in client.get(MARGINS).content.decode()
    assert client.get(UPLOAD).status_code == 403


def test_margins_the_questionnaire_cannot_rake_to_fail_the_run(small, settings) -> None:
    settings.RAKING_QUESTIONS = {"sex": "SEX", "age": "AGE", "area": "NOPE"}
    with translation.override("en"), pytest.raises(raking.RakingError, match="question for area"):
        services.recompute_round(round_code="r-raking")
    run = Run.objects.get(round=small["round"])
    assert run.status == Run.Status.FAILED and "RakingError" in run.error


def test_the_run_admin_shows_the_raking_report(small, admin_client: Client) -> None:
    run = services.recompute_round(round_code="r-raking")
    page = admin_client.get(reverse("admin:scoring_run_change", args=[run.pk])).content.decode()
    assert "raking" in page and "max_deviation" in page and "units_without_margins" in page
    factors = reverse("admin:scoring_rakingfactor_changelist") + f"?run__id__exact={run.pk}"
    assert admin_client.get(factors).status_code == 200
