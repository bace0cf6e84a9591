"""Design-based standard errors of the scoring engine: hand-worked cases and samplics.

The engine's variance is the ultimate-cluster Taylor estimator (R ``svydesign(ids=~psu,
strata=~stratum, weights=~w, nest=TRUE)``); see ``scoring.engine`` and
docs/scoring-method.md. Every case below is computed by hand in the test (fractions, the
arithmetic written out) or by ``samplics`` from the same data, never copied from the engine.
"""

from __future__ import annotations

import math
import random
import warnings
from fractions import Fraction as F
from typing import Any

import numpy as np
import pytest

from surveys import services
from surveys.models import Indicator, Question, StratumPopulation
from tests.factories import QuestionFactory, SectionFactory, VersionFactory
from tests.support.small_surveys import Survey, approx, respond, small_survey, values_by

pytestmark = pytest.mark.django_db


def expit_percent(x: float) -> float:
    return 100 / (1 + math.exp(-x))


def two_villages(survey: Survey) -> None:
    """Unit A (its own stratum), villages v1 and v2; item I3 (Q3 yes/no).

    v1: r1 w=1 yes, r2 w=1 no; v2: r3 w=2 yes, r4 w=1 yes.
    """
    respond(survey.round, "A", 1.0, psu="v1", Q3=True)
    respond(survey.round, "A", 1.0, psu="v1", Q3=False)
    respond(survey.round, "A", 2.0, psu="v2", Q3=True)
    respond(survey.round, "A", 1.0, psu="v2", Q3=True)


def surveyed(responses: list[tuple[str, float, str, str, bool]]) -> Survey:
    """The small survey with one response a row: (unit, weight, village (PSU), stratum,
    answer to Q3)."""
    survey = small_survey()
    for unit, weight, psu, stratum, yes in responses:
        respond(survey.round, unit, weight, psu=psu, stratum=stratum, Q3=yes)
    return survey


def test_a_two_psu_stratum_sums_scores_per_village() -> None:
    survey = small_survey()
    two_villages(survey)
    v = values_by(survey)["A", "I3"]
    # p = (1 + 2 + 1)/(1 + 1 + 2 + 1) = 4/5, X = 5; z = w·(y − 4/5)/5
    p, x = F(4, 5), F(5)
    z = [1 * (1 - p) / x, 1 * (0 - p) / x, 2 * (1 - p) / x, 1 * (1 - p) / x]
    assert z == [F(1, 25), F(-4, 25), F(2, 25), F(1, 25)]
    village = [z[0] + z[1], z[2] + z[3]]  # −3/25, 3/25
    # n_h = 2: v = 2/(2 − 1) · Σ (z_p − z̄)² = (z_1 − z_2)² = (6/25)² → SE = 24 points
    variance = 2 * sum((t - sum(village) / 2) ** 2 for t in village)
    assert variance == F(36, 625)
    assert v.value == approx(80)
    assert v.se == approx(24)
    # simple random sampling of the 4 respondents: 4/3 · Σ z² = 4/3 · 22/625 = 88/1875
    simple = F(4, 3) * sum(t * t for t in z)
    assert simple == F(88, 1875)
    assert v.deff == approx(variance / simple)  # 27/22
    assert v.n_eff == approx(4 / (variance / simple))  # 88/27
    # logit interval: ln(0.8/0.2) ± q · 0.24/(0.8 · 0.2) = ln 4 ± 1.5·q, q the t quantile
    # on 2 villages − 1 stratum = 1 degree of freedom: t(0.975, 1) = 12.7062 (t tables)
    assert v.df == 1
    q = 12.7062047
    assert v.ci_low == pytest.approx(expit_percent(math.log(4) - 1.5 * q), abs=1e-6)
    assert v.ci_high == pytest.approx(expit_percent(math.log(4) + 1.5 * q), abs=1e-6)
    assert 0 < v.ci_low < 80 < v.ci_high < 100


def test_default_design_keeps_the_simple_formula_and_villages_change_it() -> None:
    """Without PSUs each respondent is its own PSU in its unit's stratum: today's SE."""
    survey = small_survey()
    for weight, yes in ((1.0, True), (1.0, False), (2.0, True), (1.0, True)):
        respond(survey.round, "A", weight, Q3=yes)
    v = values_by(survey)["A", "I3"]
    z = [F(1, 25), F(-4, 25), F(2, 25), F(1, 25)]  # as above
    assert v.se == approx(100 * math.sqrt(F(4, 3) * sum(t * t for t in z)))
    assert v.deff == approx(1)
    assert v.n_eff == approx(4)


def test_finite_population_correction_scales_a_stratum_by_one_minus_f() -> None:
    survey = small_survey()
    two_villages(survey)
    # unit A's stratum (no stratum code given): 2 villages sampled of 8
    StratumPopulation.objects.create(round=survey.round, unit=survey.units["A"], population=8)
    v = values_by(survey)["A", "I3"]
    # v = (1 − 2/8) · 36/625 = 27/625 → SE = 100·√27/25
    assert v.se == approx(100 * math.sqrt(F(3, 4) * F(36, 625)))
    assert v.deff == approx(F(3, 4) * F(36, 625) / F(88, 1875))


def test_single_psu_strata_are_collapsed_within_their_unit() -> None:
    survey = surveyed(
        [
            # unit A: stratum S1 with villages v1, v2 (as two_villages), stratum S2: village w1
            ("A", 1.0, "v1", "S1", True),
            ("A", 1.0, "v1", "S1", False),
            ("A", 2.0, "v2", "S1", True),
            ("A", 1.0, "v2", "S1", True),
            ("A", 1.0, "w1", "S2", True),
            ("A", 1.0, "w1", "S2", False),
            # unit B: two single-village strata T1 and T2, collapsed into one stratum of 2 PSUs
            ("B", 1.0, "x", "T1", True),
            ("B", 1.0, "x", "T1", False),
            ("B", 1.0, "y", "T2", True),
            # unit D: one village in its own stratum: one PSU in all, no SE
            ("D", 1.0, "z", "", True),
            ("D", 1.0, "z", "", False),
        ]
    )
    # a population for S1 is ignored once S2 is collapsed into it (no FPC when collapsed)
    StratumPopulation.objects.create(round=survey.round, stratum="S1", population=4)
    v = values_by(survey)

    # A: S2's lone village joins S1 (A's stratum with most PSUs): one stratum of 3 PSUs.
    # p = 5/7, X = 7, z = w(y − 5/7)/7: v1 2/49 − 5/49, v2 4/49 + 2/49, w1 2/49 − 5/49
    village = [F(-3, 49), F(6, 49), F(-3, 49)]
    mean = sum(village) / 3
    variance = F(3, 2) * sum((t - mean) ** 2 for t in village)  # 3/2 · 54/2401 = 81/2401
    assert variance == F(81, 2401)
    assert v["A", "I3"].value == approx(F(500, 7))
    assert v["A", "I3"].se == approx(100 * F(9, 49))
    # B: p = 2/3, X = 3: x: 1/9 − 2/9, y: 1/9; 2 PSUs: v = (−1/9 − 1/9)² = 4/81
    assert v["B", "I3"].se == approx(100 * F(2, 9))
    # D: a value but no SE, nor deff or interval
    assert v["D", "I3"].value == approx(50)
    assert (v["D", "I3"].se, v["D", "I3"].deff, v["D", "I3"].n_eff) == (None, None, None)
    assert (v["D", "I3"].ci_low, v["D", "I3"].ci_high) == (None, None)

    # Nationally D's village stays alone (D has no other stratum): a certainty PSU adding no
    # variance. Satisfied weights A 5, B 2, D 1 = 8 of 7 + 3 + 2 = 12: p = 2/3, X = 12;
    # strata: A's collapsed S1 + S2 (3 villages), B's collapsed T1 + T2 (2 villages).
    p, x = F(2, 3), F(12)
    score = lambda w, y: w * (y - p) / x  # noqa: E731
    a = [score(1, 1) + score(1, 0), score(2, 1) + score(1, 1), score(1, 1) + score(1, 0)]
    b = [score(1, 1) + score(1, 0), score(1, 1)]
    national = sum(
        F(n, n - 1) * sum((t - sum(ts) / n) ** 2 for t in ts) for ts in (a, b) for n in [len(ts)]
    )
    assert v[None, "I3"].value == approx(100 * p)
    assert v[None, "I3"].se == approx(100 * math.sqrt(national))


def test_a_unit_inside_a_larger_stratum_keeps_every_psu_of_the_stratum() -> None:
    """Domain estimation: z = 0 outside the unit; a village may hold two units."""
    survey = small_survey()
    # stratum S: v1 = {A yes, B no}, v2 = {B yes}, v3 = {B no}; all weights 1
    respond(survey.round, "A", 1.0, psu="v1", stratum="S", Q3=True)
    respond(survey.round, "B", 1.0, psu="v1", stratum="S", Q3=False)
    respond(survey.round, "B", 1.0, psu="v2", stratum="S", Q3=True)
    respond(survey.round, "B", 1.0, psu="v3", stratum="S", Q3=False)
    v = values_by(survey)

    # B: p = 1/3, X = 3; PSU totals v1 −1/9, v2 2/9, v3 −1/9 (n_h = 3, all of S's PSUs)
    village = [F(-1, 9), F(2, 9), F(-1, 9)]
    variance = F(3, 2) * sum(t * t for t in village)  # mean 0: 3/2 · 6/81 = 1/9
    assert v["B", "I3"].se == approx(100 * math.sqrt(variance))  # 100/3
    # its simple-sample variance is 3/2 · Σ z² over its 3 respondents = 1/9 as well
    assert v["B", "I3"].deff == approx(1)
    # A's respondents are in one village: no SE
    assert v["A", "I3"].se is None

    # Nation: p = 1/2, X = 4, z = ±1/8; v1 holds A's +1/8 and B's −1/8: its total is 0
    # (not two PSUs of ±1/8); v2 1/8, v3 −1/8: v = 3/2 · 2/64 = 3/64
    assert v[None, "I3"].se == approx(100 * math.sqrt(F(3, 64)))
    simple = F(4, 3) * 4 * F(1, 64)  # 1/12
    assert v[None, "I3"].deff == approx(F(3, 64) / simple)  # 9/16
    assert v[None, "I3"].n_eff == approx(4 / (F(3, 64) / simple))  # 64/9


def test_a_share_of_100_percent_gets_a_clopper_pearson_interval() -> None:
    survey = small_survey()
    for village, weight in (("v1", 1.0), ("v1", 2.0), ("v2", 1.0), ("v2", 0.5), ("v3", 1.0)):
        respond(survey.round, "A", weight, psu=village, Q3=True)
    v = values_by(survey)["A", "I3"]
    assert (v.value, v.se) == (approx(100), approx(0))
    # every z is 0: no design effect; Clopper–Pearson with x = n = 5: [0.025^(1/5), 1]
    assert v.deff is None and v.n_eff is None
    assert v.ci_low == approx(100 * 0.025 ** (1 / 5))  # 47.82
    assert v.ci_high == approx(100)


# --- samplics ---------------------------------------------------------------------------

STRATA = {"N": ("A", "B"), "S": ("C",), "": ("D",)}  # "" : D's own stratum (none given)


def clustered_survey(seed: int = 13) -> tuple[Survey, list[dict[str, Any]]]:
    """Stratum N: villages n1–n6 holding units A and B (some villages both); stratum S:
    villages s1–s4 of unit C; unit D without stratum code: villages d1–d3. Weights 0.5–3,
    Q2 asked only if USED, other answers missing at random. Returns the respondents' rows."""
    rng = random.Random(seed)
    survey = small_survey()
    rows: list[dict[str, Any]] = []
    villages = {"N": [f"n{i}" for i in range(1, 7)], "S": ["s1", "s2", "s3", "s4"]}
    villages[""] = ["d1", "d2", "d3"]
    for stratum, names in villages.items():
        for psu in names:
            for _ in range(rng.randint(3, 6)):
                unit = rng.choice(STRATA[stratum])
                weight = rng.choice([0.5, 1.0, 1.5, 2.0, 3.0])
                answers: dict[str, Any] = {"USED": rng.random() < 0.7}
                if rng.random() < 0.9:
                    answers["Q1"] = rng.randint(1, 5)
                if answers["USED"] and rng.random() < 0.9:
                    answers["Q2"] = rng.randint(1, 5)
                if rng.random() < 0.85:
                    answers["Q3"] = rng.random() < 0.6
                if rng.random() < 0.8:
                    answers["Q4"] = rng.choice("abc")
                respond(survey.round, unit, weight, psu=psu, stratum=stratum, **answers)
                rows.append({"unit": unit, "w": weight, "stratum": stratum, "psu": psu, **answers})
    StratumPopulation.objects.create(round=survey.round, stratum="N", population=20)
    StratumPopulation.objects.create(round=survey.round, unit=survey.units["D"], population=5)
    return survey, rows


def design_arrays(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """y_j/x_j (satisfied/valid) of items I1–I4, weights, strata, PSUs, units, FPC factors."""
    satisfied = {
        "Q1": lambda a: a in (4, 5),
        "Q2": lambda a: a in (4, 5),
        "Q3": lambda a: a is True,
        "Q4": lambda a: a == "a",
    }
    out: dict[str, Any] = {
        "w": np.array([r["w"] for r in rows]),
        "stratum": np.array([r["stratum"] or "unitD" for r in rows]),
        "psu": np.array([f"{r['stratum']}/{r['psu']}" for r in rows]),
        "unit": np.array([r["unit"] for r in rows]),
    }
    for j, q in enumerate(("Q1", "Q2", "Q3", "Q4"), start=1):
        out[f"x{j}"] = np.array([1.0 if q in r else 0.0 for r in rows])
        out[f"y{j}"] = np.array([1.0 if q in r and satisfied[q](r[q]) else 0.0 for r in rows])
    return out


def samplics_fpc(d: dict[str, np.ndarray]) -> dict[str, float]:
    """1 − n_h/N_h as samplics wants it: N has 6 villages of 20, D's stratum 3 of 5."""
    return {"N": 1 - 6 / 20, "S": 1.0, "unitD": 1 - 3 / 5}


def taylor(param: str, d: dict[str, np.ndarray], y: np.ndarray, **kwargs: Any) -> Any:
    from samplics.estimation import TaylorEstimator
    from samplics.utils.types import PopParam

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = TaylorEstimator(PopParam.ratio if param == "ratio" else PopParam.total)
        estimator.estimate(
            y=y,
            samp_weight=d["w"],
            stratum=d["stratum"],
            psu=d["psu"],
            fpc=samplics_fpc(d),
            **kwargs,
        )
    return estimator


def test_shares_and_pooled_nodes_equal_samplics_ratio_estimates() -> None:
    survey, rows = clustered_survey()
    d = design_arrays(rows)
    v = values_by(survey)
    # items I1 (Q1) and I3 (Q3): ratio Σw·y/Σw·x, per unit (domain) and nationally
    for item, j in (("I1", 1), ("I3", 3)):
        by_unit = taylor("ratio", d, d[f"y{j}"], x=d[f"x{j}"], domain=d["unit"])
        nation = taylor("ratio", d, d[f"y{j}"], x=d[f"x{j}"])
        for unit in "ABCD":
            key = np.str_(unit)
            assert v[unit, item].value == approx(100 * by_unit.point_est[key])
            assert v[unit, item].se == approx(100 * math.sqrt(by_unit.variance[key]))
        assert v[None, item].value == approx(100 * nation.point_est)
        assert v[None, item].se == approx(100 * math.sqrt(nation.variance))
    # E1 pooled over I1 and I2: one ratio of all their satisfied over all their valid
    y, x = d["y1"] + d["y2"], d["x1"] + d["x2"]
    by_unit = taylor("ratio", d, y, x=x, domain=d["unit"])
    nation = taylor("ratio", d, y, x=x)
    for unit in "ABCD":
        assert v[unit, "E1"].se == approx(100 * math.sqrt(by_unit.variance[np.str_(unit)]))
    assert v[None, "E1"].se == approx(100 * math.sqrt(nation.variance))
    assert any(v[u, "I1"].deff != approx(1) for u in "ABCD")  # the design matters here


def linearized_root(d: dict[str, np.ndarray], inside: np.ndarray) -> tuple[float, np.ndarray]:
    """ROOT = ½·E1 + ½·E2, E1 = ΣY/ΣX over I1, I2 (pooled), E2 = ¾·p3 + ¼·p4, on the
    respondents ``inside`` (a unit or all), and each respondent's linearized score u:
    u = ½·w(y1 + y2 − E1·(x1 + x2))/(X1 + X2) + ½·(¾·w(y3 − p3·x3)/X3 + ¼·w(y4 − p4·x4)/X4),
    0 outside. Computed here from the definitions, independently of the engine."""
    w = d["w"] * inside
    total = {k: float(np.sum(w * d[k])) for k in ("x1", "x2", "x3", "x4", "y1", "y2", "y3", "y4")}
    e1 = (total["y1"] + total["y2"]) / (total["x1"] + total["x2"])
    p3, p4 = total["y3"] / total["x3"], total["y4"] / total["x4"]
    root = (e1 + (3 * p3 + p4) / 4) / 2
    u = 0.5 * w * (d["y1"] + d["y2"] - e1 * (d["x1"] + d["x2"])) / (total["x1"] + total["x2"])
    u += 0.5 * 0.75 * w * (d["y3"] - p3 * d["x3"]) / total["x3"]
    u += 0.5 * 0.25 * w * (d["y4"] - p4 * d["x4"]) / total["x4"]
    return root, u


def test_a_mean_node_equals_samplics_total_of_its_linearized_score() -> None:
    """samplics has no estimator for a mean of ratios; its linearized variance is that of
    the total Σ u of the combined score u (see ``linearized_root``), which samplics
    estimates as a total of y = u/w with weights w, under the same design."""
    survey, rows = clustered_survey()
    d = design_arrays(rows)
    v = values_by(survey)
    for unit in "ABCD":
        root, u = linearized_root(d, (d["unit"] == unit).astype(float))
        total = taylor("total", d, u / d["w"])
        assert v[unit, "ROOT"].value == approx(100 * root)
        assert v[unit, "ROOT"].se == approx(100 * math.sqrt(total.variance))
    root, u = linearized_root(d, np.ones(len(rows)))
    total = taylor("total", d, u / d["w"])
    assert v[None, "ROOT"].value == approx(100 * root)
    assert v[None, "ROOT"].se == approx(100 * math.sqrt(total.variance))
    # deff: against a simple random sample of all n respondents, n/(n − 1) · Σ (u − ū)²
    n = len(rows)
    simple = n / (n - 1) * float(np.sum((u - u.mean()) ** 2))
    assert v[None, "ROOT"].deff == approx(total.variance / simple)


def test_a_tree_of_items_alone_gets_design_based_errors() -> None:
    """No node needs coefficients: every SE comes from the items' PSU moments."""
    version = VersionFactory(label="items only")
    section = SectionFactory(version=version, code="MAIN", position=1)
    item = Indicator.objects.create(
        version=version, code="I", kind=Indicator.Kind.ITEM,
        aggregation=Indicator.Aggregation.SHARE, position=1, name_vi="I",
    )  # fmt: skip
    question = QuestionFactory(
        section=section, code="Q", position=1, type=Question.Type.YESNO, indicator=item,
        satisfied_values=[True],
    )  # fmt: skip
    services.publish_version(version_id=version.pk)
    base = small_survey()  # for its units and a round, moved to this version
    base.round.version = version
    base.round.save()
    survey = Survey(version, base.round, base.units, {"Q": question})
    for weight, village, yes in ((1.0, "v1", True), (1.0, "v1", False), (2.0, "v2", True)):
        respond(survey.round, "A", weight, psu=village, Q=yes)
    respond(survey.round, "A", 1.0, psu="v2", Q=True)
    v = values_by(survey)
    # as in the two-village case: p = 4/5, village totals ∓3/25, SE = 24 points
    assert v["A", "I"].value == approx(80)
    assert v["A", "I"].se == approx(24)
    assert v[None, "I"].se == approx(24)  # the nation is unit A here
    assert v["A", "I"].deff == approx(F(27, 22))
