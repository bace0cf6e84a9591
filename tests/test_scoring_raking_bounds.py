"""Bounded raking: factors within RAKING_FACTOR_BOUNDS, Kish design effects, flags, admin.

The hand example is one unit of four cells, rows the sex × age margin (nam|a1, nu|a1) and
columns the area margin (u, r); design weights (one respondent of weight 1 in each of the
first three cells, four of weight 2 in the last):

              u       r
    nam|a1    1       1        row target 5
    nu|a1     1       8        row target 6        T = 11 (margins 5 : 6 and 5 : 6)
    column    5       6

Unbounded, IPF converges to g_ij = a_i·b_j. By symmetry a = b, so with x = a_1, y = a_2:
x² + x·y = 5 and x·y + 8y² = 6. With y = (5 − x²)/x the second gives 8(5 − x²)² =
x²(1 + x²), i.e. with t = x²: 7t² − 81t + 200 = 0, t = (81 ± 31)/14; t = 8 makes y < 0, so
t = 25/7: g = (25/7, 10/7 / 10/7, 4/7). The factor 25/7 ≈ 3.57 is above the bound U = 3.

Bounded to [0.3, 3], cell (nam|a1, u) is held at 3 and the three others are re-raked: row 1
gives g_12 = (5 − 3·1)/1 = 2, column 1 gives g_21 = (5 − 3·1)/1 = 2, row 2 gives
g_22 = (6 − 1·2)/8 = 1/2 (and column 2: 1·2 + 8·1/2 = 6). The free cells keep the product
form a_i·b_j, so the capped cell's unclipped factor is a_1·b_1 = g_12·g_21/g_22 = 8 ≥ 3:
holding it at U is what the bounded calibration asks (were it below 3, it would be free).
"""

from __future__ import annotations

import math
from fractions import Fraction as F
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from scipy.optimize import minimize

from scoring import raking, services
from scoring.margins import replace_margins
from scoring.models import RakingFactor, ResponseWeight, Run
from tests.support.environment import printed, refused
from tests.support.small_surveys import approx, respond, small_round
from tests.support.users import staff_client

pytestmark = pytest.mark.django_db

NAM_U, NAM_R, NU_U, NU_R = (
    ("nam", "a1", "u"),
    ("nam", "a1", "r"),
    ("nu", "a1", "u"),
    ("nu", "a1", "r"),
)
CELLS = {NAM_U: 1.0, NAM_R: 1.0, NU_U: 1.0, NU_R: 8.0}  # Σ design weight per cell
MARGINS = {"sex_age": {"nam|a1": 5.0, "nu|a1": 6.0}, "area": {"u": 5.0, "r": 6.0}}
UNBOUNDED = {NAM_U: F(25, 7), NAM_R: F(10, 7), NU_U: F(10, 7), NU_R: F(4, 7)}
BOUNDED = {NAM_U: F(3), NAM_R: F(2), NU_U: F(2), NU_R: F(1, 2)}
# (responses, Σw, Σw²) per cell: three respondents of weight 1, four of weight 2.
SUMS = {NAM_U: (1, 1.0, 1.0), NAM_R: (1, 1.0, 1.0), NU_U: (1, 1.0, 1.0), NU_R: (4, 8.0, 16.0)}
MARGINS_CSV = (
    "unit,dimension,category,population\n"
    "A,sex_age,nam|a1,5\nA,sex_age,nu|a1,6\nA,area,u,5\nA,area,r,6\n"
)


def rake(cells: dict = CELLS, margins: dict = MARGINS, **options: Any) -> tuple[dict, dict]:
    return raking.rake(cells, margins, **{"max_iterations": 1000, "tolerance": 1e-12, **options})


def margin_sums(factors: dict) -> dict[str, float]:
    raked = {cell: CELLS[cell] * g for cell, g in factors.items()}
    return {
        "nam|a1": raked[NAM_U] + raked[NAM_R],
        "nu|a1": raked[NU_U] + raked[NU_R],
        "u": raked[NAM_U] + raked[NU_U],
        "r": raked[NAM_R] + raked[NU_R],
    }


def test_unbounded_raking_gives_the_hand_factors_one_above_the_bound() -> None:
    factors, report = rake(bounds=(0, math.inf))
    assert factors == {cell: approx(g) for cell, g in UNBOUNDED.items()}
    assert report["converged"] is True and report["at_bound"] is False
    assert report["max_factor"] == approx(F(25, 7)) and report["max_factor"] > 3


def test_bounded_raking_caps_the_cell_and_re_rakes_the_others_by_hand() -> None:
    factors, report = rake(bounds=(0.3, 3.0))
    assert factors == {cell: approx(g) for cell, g in BOUNDED.items()}
    assert factors[NAM_U] == 3.0  # exactly the bound
    assert margin_sums(factors) == {"nam|a1": approx(5), "nu|a1": approx(6), "u": approx(5),
                                    "r": approx(6)}  # fmt: skip
    assert report["converged"] is True and report["max_deviation"] <= 1e-12
    assert (report["cells"], report["cells_at_lower"], report["cells_at_upper"]) == (4, 0, 1)
    assert report["at_bound"] is True
    assert (report["min_factor"], report["max_factor"]) == (approx(F(1, 2)), 3.0)
    # The free cells are a_i·b_j: g_12·g_21/g_22 = 2·2/(1/2) = 8, the capped cell's a_1·b_1.
    assert factors[NAM_R] * factors[NU_U] / factors[NU_R] == approx(8)


def test_the_default_bounds_are_the_setting(settings) -> None:
    assert settings.RAKING_FACTOR_BOUNDS == (0.3, 3.0)
    assert rake()[0] == rake(bounds=(0.3, 3.0))[0]
    settings.RAKING_FACTOR_BOUNDS = (0.0, math.inf)
    assert rake()[0] == {cell: approx(g) for cell, g in UNBOUNDED.items()}


def test_kish_design_effects_before_and_after_raking_by_hand() -> None:
    # Before: n = 7, Σw = 1 + 1 + 1 + 8 = 11, Σw² = 1 + 1 + 1 + 4·2² = 19: 7·19/121.
    # Bounded: weights 3, 2, 2 and four of 2·1/2 = 1: Σw = 11, Σw² = 9 + 4 + 4 + 4 = 21.
    # Unbounded: 25/7, 10/7, 10/7 and four of 8/7: Σw² = (625 + 100 + 100 + 256)/49.
    bounded = {cell: float(g) for cell, g in BOUNDED.items()}
    unbounded = {cell: float(g) for cell, g in UNBOUNDED.items()}
    assert raking.weighting_deffs(SUMS, bounded) == (approx(F(133, 121)), approx(F(147, 121)))
    assert raking.weighting_deffs(SUMS, unbounded)[1] == approx(F(7) * F(1081, 49) / 121)
    # A cell without a factor (a missing answer) keeps its weights: one more respondent, w 1.
    with_missing = {**SUMS, ("nam", "a1", None): (1, 1.0, 1.0)}
    # n = 8, Σw = 12, Σw² = 22: 8·22/144.
    assert raking.weighting_deffs(with_missing, bounded)[1] == approx(F(8 * 22, 144))
    assert raking.kish_deff(3, 3.0, 3.0) == 1.0  # equal weights
    assert raking.kish_deff(0, 0.0, 0.0) is None


def test_margins_the_bounds_cannot_meet_leave_the_unit_not_converged_with_the_gap() -> None:
    # Area only: design weight 1 in u and 9 in r, margins 9 : 1 of T = 10. Post-stratified,
    # u needs a factor of 9 and r of 1/9; bounded, u stops at 3 (sum 3 against 9, 2/3 off)
    # and r at 0.3 (sum 2.7 against 1, 1.7 off). The second sweep changes nothing: it stops.
    cells = {("", "", "u"): 1.0, ("", "", "r"): 9.0}
    factors, report = rake(cells, {"area": {"u": 9.0, "r": 1.0}}, bounds=(0.3, 3.0))
    assert factors == {("", "", "u"): 3.0, ("", "", "r"): 0.3}
    assert report["converged"] is False and report["iterations"] == 2
    assert report["max_deviation"] == approx(1.7)
    assert (report["cells_at_lower"], report["cells_at_upper"]) == (1, 1)


def test_a_cell_without_weight_is_left_out_as_a_replicate_drops_it() -> None:
    # A jackknife replicate that drops the PSU of cell (nam|a1, u) gives it weight 0: it
    # keeps factor 1 and the rest is raked as if it were absent. Then column u holds only
    # (nu|a1, u) and row nam|a1 only (nam|a1, r): design 1 + 1 + 8 = 10, targets 50/11 and
    # 60/11 each; g_12 = 50/11, out of the bounds, so held at 3 and not converged.
    cells = {**CELLS, NAM_U: 0.0}
    factors, report = rake(cells, bounds=(0, math.inf))
    assert factors[NAM_U] == 1.0 and report["cells"] == 3
    assert factors[NAM_R] == approx(F(50, 11)) and factors[NU_U] == approx(F(50, 11))
    assert factors[NU_R] == approx(F(10, 11) / 8)  # row nu|a1: 50/11 + 8·g = 60/11
    factors, report = rake(cells)
    assert factors[NAM_R] == 3.0 and report["converged"] is False


def bounded_calibration(design: np.ndarray, groups: list[np.ndarray], targets: list[float],
                        bounds: tuple[float, float]) -> np.ndarray:  # fmt: skip
    """min Σ d(g log g − g + 1) subject to the margins and L ≤ g ≤ U, by SLSQP (scipy)."""
    constraints = [
        {"type": "eq", "fun": lambda g, m=m, t=t: float(design[m] @ g[m]) / t - 1.0}
        for m, t in zip(groups, targets, strict=True)
    ]
    result = minimize(
        lambda g: float(design @ (g * np.log(g) - g + 1)),
        np.ones(len(design)),
        jac=lambda g: design * np.log(g),
        bounds=[bounds] * len(design),
        constraints=constraints,
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert result.success, result.message
    return result.x


@pytest.mark.parametrize("seed", range(6))
def test_bounded_raking_is_the_bounded_calibration_optimum_scipy_finds(seed: int) -> None:
    """Random 3 × 2 units whose margins some factors within [0.7, 1.5] meet."""
    generator = np.random.default_rng(seed)
    rows, columns, bounds = ["nam|a1", "nam|a2", "nu|a1"], ["u", "r"], (0.7, 1.5)
    cells = [(*row.split("|"), column) for row in rows for column in columns]
    truth = np.zeros(len(cells))
    while not (bounds[0] <= truth.min() and truth.max() <= bounds[1]):  # feasible margins
        design = generator.uniform(0.5, 5.0, len(cells))
        truth = generator.uniform(0.7, 1.5, len(cells))
        truth *= design.sum() / (design @ truth)  # margins are rescaled to the design total
    in_row = [np.array([raking.category(c, "sex_age") == k for c in cells]) for k in rows]
    in_column = [np.array([c[2] == k for c in cells]) for k in columns]
    margins = {
        "sex_age": {k: float(design[m] @ truth[m]) for k, m in zip(rows, in_row, strict=True)},
        "area": {k: float(design[m] @ truth[m]) for k, m in zip(columns, in_column, strict=True)},
    }
    unit = dict(zip(cells, map(float, design), strict=True))
    factors, report = raking.rake(
        unit, margins, max_iterations=10_000, tolerance=1e-11, bounds=bounds
    )
    assert report["converged"] is True
    # One column margin is implied by the rows and the other column: left out for SLSQP.
    expected = bounded_calibration(
        design,
        [*in_row, in_column[0]],
        [margins["sex_age"][k] for k in rows] + [margins["area"]["u"]],
        bounds,
    )
    assert [factors[c] for c in cells] == pytest.approx(list(expected), abs=1e-6)
    assert all(bounds[0] <= g <= bounds[1] for g in factors.values())


# --- a run ------------------------------------------------------------------------------


@pytest.fixture
def capped(settings) -> dict[str, Any]:
    """Unit A: the hand example (one respondent in each of three cells, four of weight 2 in
    nu|a1 r), every respondent satisfied or not in turn; unit B without margins."""
    settings.RAKING_QUESTIONS = {"sex": "SEX", "age": "AGE", "area": "AREA"}
    settings.RAKING_MAX_ITERATIONS, settings.RAKING_TOLERANCE = 1000, 1e-12
    settings.RAKING_FACTOR_BOUNDS, settings.RAKING_DEFF_WARNING = (0.3, 3.0), 1.2
    survey_round, _version = small_round()
    rows = [("nam", "u", 1.0), ("nam", "r", 1.0), ("nu", "u", 1.0)] + [("nu", "r", 2.0)] * 4
    responses = [
        respond(survey_round, "A", w, SEX=s, AGE="a1", AREA=r, Q1=i % 2 == 0)
        for i, (s, r, w) in enumerate(rows)
    ]
    respond(survey_round, "B", 1.0, Q1=True)
    replace_margins(round_code="r-raking", data=MARGINS_CSV)
    return {"round": survey_round, "rows": rows, "responses": responses}


def test_a_run_flags_the_unit_at_a_bound_and_above_the_deff_warning(capped) -> None:
    run = services.recompute_round(round_code="r-raking")
    report = run.settings_used["raking"]
    assert report["factor_bounds"] == [0.3, 3.0] and report["deff_warning"] == 1.2
    unit = report["units"]["A"]
    assert unit["converged"] is True and unit["cells_at_upper"] == 1 and unit["at_bound"]
    # 133/121 ≈ 1.099 before, 147/121 ≈ 1.215 after: above 1.2 (the sums of squares are
    # summed per cell in the database).
    assert (unit["deff_before"], unit["deff_after"]) == (approx(F(133, 121)), approx(F(147, 121)))
    assert unit["deff_above_warning"] is True
    assert report["flagged"] == {"A": ["at_bound", "deff"]}
    assert report["converged"] is True
    weights = dict(ResponseWeight.objects.filter(run=run).values_list("response_id", "weight"))
    expected = [3.0, 2.0, 2.0] + [1.0] * 4  # design weight × factor: 1·3, 1·2, 1·2, 2·1/2
    assert [weights[r.pk] for r in capped["responses"]] == [approx(w) for w in expected]
    assert run.status == Run.Status.PUBLISHED


def test_a_unit_within_the_bounds_and_the_warning_is_not_flagged(capped, settings) -> None:
    settings.RAKING_FACTOR_BOUNDS, settings.RAKING_DEFF_WARNING = (0.0, math.inf), 2.0
    report = services.recompute_round(round_code="r-raking").settings_used["raking"]
    unit = report["units"]["A"]
    assert unit["at_bound"] is False and unit["deff_above_warning"] is False
    assert unit["max_factor"] == approx(F(25, 7))
    assert unit["deff_after"] == approx(F(1081, 847))  # 7·(1081/49)/121, unbounded
    assert report["flagged"] == {} and report["factor_bounds"] == [0.0, None]  # None: no U


def test_margins_not_met_within_the_bounds_flag_the_unit_not_converged(capped) -> None:
    replace_margins(
        round_code="r-raking", data="unit,dimension,category,population\nA,area,u,9\nA,area,r,1\n"
    )
    # Design weight 2 in u and 9 in r share T = 11 as 9 : 1: u needs 9.9/2 = 4.95 > 3, r
    # 1.1/9 < 0.3. Bounded: u 3·2 = 6 against 9.9 (13/33 off), r 0.3·9 = 2.7 against 1.1.
    report = services.recompute_round(round_code="r-raking").settings_used["raking"]
    unit = report["units"]["A"]
    assert unit["converged"] is False and report["converged"] is False
    assert unit["max_deviation"] == approx(F(16, 11))  # (2.7 − 1.1)/1.1
    # Raked weights 3, 3 (u) and 0.3, 4 × 0.6 (r): n = 7, Σw = 8.7, Σw² = 18 + 0.09 + 1.44.
    assert unit["deff_after"] == approx(7 * 19.53 / 8.7**2)
    assert report["flagged"] == {"A": ["at_bound", "deff", "not_converged"]}


# --- the admin ------------------------------------------------------------------------------


def test_the_run_page_lists_the_flagged_unit(capped, client: Client, settings) -> None:
    settings.LANGUAGE_CODE = "en"
    run = services.recompute_round(round_code="r-raking")
    staff_client(client, "view_run", "view_rakingfactor")
    page = client.get(reverse("admin:scoring_run_change", args=[run.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="raking-warnings"' in html
    assert (
        '<li class="warning" data-unit="A">Unit A: 1 of 4 raking factors at a bound '
        "(0.3 or 3); design effect from weighting 1.21 after raking (1.1 before), above 1.2.</li>"
    ) in html
    assert 'data-unit="B"' not in html  # no margins, not raked
    factors = reverse("admin:scoring_rakingfactor_changelist") + f"?run__id__exact={run.pk}"
    assert factors.replace("&", "&amp;") in html or factors in html
    listing = client.get(factors).content.decode()
    assert listing.count('alt="True"') == 1 and listing.count('alt="False"') == 3


def test_the_run_page_in_vietnamese_translates_the_warning(capped, client: Client) -> None:
    run = services.recompute_round(round_code="r-raking")
    staff_client(client, "view_run")
    html = client.get(reverse("admin:scoring_run_change", args=[run.pk])).content.decode()
    assert "Cảnh báo hiệu chỉnh trọng số" in html and "RAKING_FACTOR_BOUNDS" in html
    assert (
        '<li class="warning" data-unit="A">Đơn vị A: 1 trên 4 hệ số hiệu chỉnh trọng số chạm '
        "ngưỡng (0,3 hoặc 3); hệ số ảnh hưởng thiết kế do trọng số là 1,21 sau hiệu chỉnh (1,1 "
        "trước hiệu chỉnh), vượt mức 1,2.</li>"
    ) in html
    assert "Raking warnings" not in html and "at a bound" not in html


def test_a_run_without_flags_shows_no_warning_list(capped, admin_client: Client, settings) -> None:
    settings.RAKING_FACTOR_BOUNDS, settings.RAKING_DEFF_WARNING = (0.0, math.inf), 2.0
    run = services.recompute_round(round_code="r-raking")
    html = admin_client.get(reverse("admin:scoring_run_change", args=[run.pk])).content.decode()
    assert 'id="raking-warnings"' not in html
    assert RakingFactor.objects.filter(run=run).count() == 4


# --- settings ------------------------------------------------------------------------------


@pytest.mark.django_db(False)
def test_bounds_from_the_environment_and_a_bad_value_named() -> None:
    bounds = printed(
        "from django.conf import settings; "
        "print(settings.RAKING_FACTOR_BOUNDS, settings.RAKING_DEFF_WARNING)",
        RAKING_FACTOR_BOUNDS="0.5,inf",
        RAKING_DEFF_WARNING="3",
    )
    assert bounds.strip() == "(0.5, inf) 3.0"
    for bad in ("3,0.3", "0.3", "a,b", "1.5,3"):
        problem = refused(RAKING_FACTOR_BOUNDS=bad)
        assert "RAKING_FACTOR_BOUNDS must be two numbers L,U with 0 <= L <= 1 <= U" in problem
