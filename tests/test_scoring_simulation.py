"""Simulation: on generated data with known true rates, the 95% intervals cover the truth.

One round holds ``REPETITIONS`` units, each with its own known per-item satisfaction
probabilities and its own respondents drawn from them; the units are independent, so one
``compute_values`` call gives ``REPETITIONS`` independent intervals per node.

Why the band 93–97 % is wide enough: the coverage of R independent intervals is a binomial
share with SD sqrt(0.95 · 0.05 / R) ≈ 1.1 points at R = 400. The figures held to the band
pool intervals (all item intervals: 5 × 400; all intervals: 8 × 400), whose SD is about
0.5 points (more where one unit's intervals are correlated, as a mean and its items are),
so a correct method leaves the band with a chance far below 1 %. The Wald interval of a
share at about 90–105 effective answers also covers a little less than 95 % (about
94.5 %), which the band allows. One node alone, at ±1.8 SD, would leave 93–97 in about 7 %
of seeds even for an exact method, so each node is held to 91–98.5 (beyond 3 SD). The seed
is fixed, so the test is deterministic; seeds 1–8 were tried as well and stay in the bands
(lowest single node 91.25 %, lowest pooled figure 93.8 %).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from feedback.models import Answer, Response
from scoring.engine import NodeValue, compute_values
from surveys import services
from surveys.models import Choice, Indicator, Question, QuestionnaireVersion, Round, Unit
from tests.factories import QuestionFactory, SectionFactory, VersionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.simulation]

REPETITIONS = 400
MISSING = 0.1  # each answer is left out with this chance (missing completely at random)
RATES = (0.35, 0.45, 0.55, 0.65, 0.75)  # true satisfaction rates drawn per unit and item
ITEMS = ("I1", "I2", "I3", "I4", "I5")
E2_WEIGHTS = {"I4": 3.0, "I5": 1.0}
BAND = (93.0, 97.0)
NODE_BAND = (91.0, 98.5)


@dataclass
class Design:
    version: QuestionnaireVersion
    questions: dict[str, Question]  # item code → its question


def simulation_version() -> Design:
    """ROOT (mean) of E1 (mean: I1, I2, I3) and E2 (weighted mean: I4 ×3, I5 ×1).

    Each item is fed by one 1–5 scale question, satisfied at 4 or 5.
    """
    version = VersionFactory(label="simulation")
    section = SectionFactory(version=version, code="MAIN", position=1)
    agg, kind = Indicator.Aggregation, Indicator.Kind

    def indicator(code: str, kind: str, aggregation: str, parent=None, weight=1.0, position=0):
        return Indicator.objects.create(
            version=version, code=code, kind=kind, aggregation=aggregation, parent=parent,
            weight=weight, position=position, name_vi=code,
        )  # fmt: skip

    root = indicator("ROOT", kind.INDEX, agg.MEAN)
    elements = {
        "E1": indicator("E1", kind.ELEMENT, agg.MEAN, root, position=1),
        "E2": indicator("E2", kind.ELEMENT, agg.WEIGHTED_MEAN, root, position=2),
    }
    questions = {}
    for position, code in enumerate(ITEMS, start=1):
        parent = elements["E1" if code in ("I1", "I2", "I3") else "E2"]
        item = indicator(code, kind.ITEM, agg.SHARE, parent, E2_WEIGHTS.get(code, 1.0), position)
        questions[code] = QuestionFactory(
            section=section, code=f"Q{position}", position=position, type=Question.Type.SCALE,
            min_value=Decimal(1), max_value=Decimal(5), indicator=item, satisfied_values=[4, 5],
        )  # fmt: skip
    Choice.objects.bulk_create(
        Choice(question=q, code=str(p), position=p, label_vi=str(p))
        for q in questions.values()
        for p in range(1, 6)
    )
    services.publish_version(version_id=version.pk)
    return Design(version, questions)


def true_values(rates: dict[str, float]) -> dict[str, float]:
    """Every node's true value (0–100) from its unit's true item rates."""
    truth = {code: 100 * p for code, p in rates.items()}
    truth["E1"] = (truth["I1"] + truth["I2"] + truth["I3"]) / 3
    truth["E2"] = sum(w * truth[c] for c, w in E2_WEIGHTS.items()) / sum(E2_WEIGHTS.values())
    truth["ROOT"] = (truth["E1"] + truth["E2"]) / 2
    return truth


def simulate_round(
    design: Design,
    *,
    seed: int,
    respondents: int,
    latent_spread: float = 0.0,
    weighted: bool = False,
) -> dict[int, dict[str, float]]:
    """A round of ``REPETITIONS`` units of ``respondents`` each; the true values per unit.

    With ``latent_spread`` d, each respondent is, with chance 1/2, inclined to be satisfied
    (rate p + d on every item) or not (p − d): each item's rate is still p, but one
    respondent's answers to the items are positively correlated. With ``weighted``, design
    weights 0.5, 1 or 2 are drawn independently of the answers.
    """
    rng = random.Random(seed)
    now = timezone.now()
    survey_round = Round.objects.create(
        code=f"sim-{seed}",
        name_vi="Mô phỏng",
        period_start=dt.date(2024, 1, 1),
        period_end=dt.date(2024, 12, 31),
        opens_at=now - dt.timedelta(days=1),
        closes_at=now + dt.timedelta(days=1),
        version=design.version,
    )
    units = Unit.objects.bulk_create(
        Unit(code=f"S{seed}-{u:03d}", name=f"Sim {u}", kind=Unit.Kind.PROVINCE)
        for u in range(REPETITIONS)
    )
    truth: dict[int, dict[str, float]] = {}
    responses: list[Response] = []
    drawn: list[list[tuple[str, int]]] = []  # per response: (item, answer) pairs
    for unit in units:
        rates = {code: rng.choice(RATES) for code in ITEMS}
        truth[unit.pk] = true_values(rates)
        for _ in range(respondents):
            shift = latent_spread if rng.random() < 0.5 else -latent_spread
            weight = rng.choice((0.5, 1.0, 2.0)) if weighted else 1.0
            responses.append(
                Response(
                    round=survey_round,
                    version=design.version,
                    unit=unit,
                    channel=Response.Channel.API,
                    weight=weight,
                )
            )
            answers = []
            for code in ITEMS:
                if rng.random() < MISSING:
                    continue
                satisfied = rng.random() < rates[code] + shift
                answers.append((code, rng.choice((4, 5)) if satisfied else rng.choice((1, 2, 3))))
            drawn.append(answers)
    Response.objects.bulk_create(responses, batch_size=5000)
    Answer.objects.bulk_create(
        (
            Answer(response=response, question=design.questions[code], value=v, number=float(v))
            for response, answers in zip(responses, drawn, strict=True)
            for code, v in answers
        ),
        batch_size=10000,
    )
    return truth


def unit_values(design: Design, round_code: str) -> dict[int, dict[str, NodeValue]]:
    survey_round = Round.objects.get(code=round_code)
    values: dict[int, dict[str, NodeValue]] = {}
    for row in compute_values(round_id=survey_round.pk, version_id=design.version.pk):
        if row.unit_id is not None:
            values.setdefault(row.unit_id, {})[row.indicator_code] = row
    return values


def coverage(hits: list[bool]) -> float:
    return 100 * sum(hits) / len(hits)


def covered(low: float, high: float, truth: float) -> bool:
    return low <= truth <= high


def naive_se(node: str, values: dict[str, NodeValue]) -> float:
    """The SE of a mean node as if its items were independent: sqrt(Σ c_j² · SE_j²)."""
    coefficients = {
        "E1": {"I1": 1 / 3, "I2": 1 / 3, "I3": 1 / 3},
        "E2": {c: w / sum(E2_WEIGHTS.values()) for c, w in E2_WEIGHTS.items()},
    }
    coefficients["ROOT"] = {
        c: k / 2 for element in ("E1", "E2") for c, k in coefficients[element].items()
    }
    return math.sqrt(sum(k**2 * values[c].se ** 2 for c, k in coefficients[node].items()))


def interval_coverage(
    values: dict[int, dict[str, NodeValue]], truth: dict[int, dict[str, float]]
) -> dict[str, float]:
    """Per node, the percentage of units whose 95% interval holds the true value."""
    return {
        node: coverage(
            [
                covered(v[node].ci_low, v[node].ci_high, truth[unit][node])
                for unit, v in values.items()
            ]
        )
        for node in (*ITEMS, "E1", "E2", "ROOT")
    }


def assert_in_bands(per_node: dict[str, float]) -> None:
    """All intervals pooled and item intervals pooled in 93–97 %, each node in 91–98.5 %."""
    items = sum(per_node[c] for c in ITEMS) / len(ITEMS)
    pooled = sum(per_node.values()) / len(per_node)
    assert BAND[0] <= items <= BAND[1], per_node
    assert BAND[0] <= pooled <= BAND[1], per_node
    assert all(NODE_BAND[0] <= c <= NODE_BAND[1] for c in per_node.values()), per_node


@pytest.fixture
def design() -> Design:
    return simulation_version()


def test_intervals_cover_known_rates_in_95_percent_of_repetitions(design: Design) -> None:
    # Design weights 0.5, 1 or 2 (effective sample about 0.78 n) and 10 % missing answers.
    truth = simulate_round(design, seed=20240601, respondents=150, weighted=True)
    values = unit_values(design, "sim-20240601")
    assert len(values) == REPETITIONS

    assert_in_bands(interval_coverage(values, truth))
    # The values are unbiased: the mean error over units is far below one SE.
    errors = [v["ROOT"].value - truth[u]["ROOT"] for u, v in values.items()]
    assert abs(sum(errors) / len(errors)) < 0.5


def test_linearized_intervals_account_for_one_respondent_answering_many_items(
    design: Design,
) -> None:
    # A shared inclination of ±0.25 correlates one respondent's answers (about 0.25 between
    # two items): an element's variance exceeds the sum of its items' variances.
    truth = simulate_round(design, seed=20240602, respondents=100, latent_spread=0.25)
    values = unit_values(design, "sim-20240602")

    per_node = interval_coverage(values, truth)
    assert_in_bands(per_node)

    # The same intervals with an SE that ignores the covariance between items under-cover.
    naive = {
        node: coverage(
            [
                abs(v[node].value - truth[unit][node]) <= 1.96 * naive_se(node, v)
                for unit, v in values.items()
            ]
        )
        for node in ("E1", "E2", "ROOT")
    }
    # E2 is mostly one item (weights 3:1), so the covariance matters little there; E1
    # (three equal items) and ROOT (five) lose most. Seeds 1–8 gave E1 88–92 %, ROOT 84–89 %.
    assert naive["E1"] < BAND[0] - 1 and naive["ROOT"] < BAND[0] - 3, (naive, per_node)
    assert sum(naive.values()) < sum(per_node[node] for node in naive) - 10, (naive, per_node)
    linearized_se = sum(v["ROOT"].se for v in values.values())
    assert linearized_se > 1.2 * sum(naive_se("ROOT", v) for v in values.values())
