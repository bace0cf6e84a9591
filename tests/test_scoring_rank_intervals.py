"""Rank intervals stored by a run (through ``recompute_round``): wired, seeded, reproducible."""

from __future__ import annotations

import pytest

from feedback.models import Response
from scoring import engine, services
from scoring.models import Score
from scoring.ranking import rank_intervals, rank_seed
from tests.support.responses import answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored_round(sipas, settings):
    """sipas-2022: Hà Nội all satisfied on S01, Cao Bằng half, Thái Nguyên none, all n = 10;
    Hà Giang one respondent (suppressed below 5), and Bắc Kạn six, the fewest of the others,
    withheld with it so that the national value does not give Hà Giang's back."""
    settings.MIN_PUBLISH_N = 5
    units = [("01", [5] * 10), ("04", [5, 1] * 5), ("19", [1] * 10), ("02", [5]), ("06", [5] * 6)]
    for unit, values in units:
        for s01 in values:
            answer(unit, round_code="sipas-2022", channel=Response.Channel.PAPER, S01=s01)
    return services.recompute_round(round_code="sipas-2022")


def unit_scores(run, code: str) -> dict[str, Score]:
    return {
        s.unit.code: s
        for s in Score.objects.filter(run=run, scope="unit", indicator__code=code).select_related(
            "unit"
        )
    }


def test_each_ranked_unit_stores_the_interval_of_its_seeded_draws(scored_round) -> None:
    run = scored_round
    scores = unit_scores(run, "S01")
    assert scores["02"].suppressed and scores["02"].rank_low is None
    assert scores["02"].rank_high is None
    ranked = {code: s for code, s in scores.items() if not s.suppressed}
    # the same draws, from the stored values and SEs, the respondents as sizes at the edges
    expected = rank_intervals(
        {code: (s.value, s.se) for code, s in ranked.items()},
        seed=rank_seed(run.pk, ranked["01"].indicator_id),
        sizes={code: s.n_eff or s.n for code, s in ranked.items()},
    )
    assert {code: (s.rank_low, s.rank_high) for code, s in ranked.items()} == expected
    # By hand, with enough draws that the .033 below is told from .025 whatever the seed (the
    # run's own 2,000 draws miss it for about one seed in fifty: its frequency's SD is .004).
    estimates = {code: (s.value, s.se) for code, s in ranked.items()}
    sizes = {code: s.n_eff or s.n for code, s in ranked.items()}
    many = rank_intervals(estimates, seed=run.pk, draws=200_000, sizes=sizes)
    # By hand. 100% and 0% of 10 (edge rule): logit ±ln(10.5/.5) = ±3.0445 with SD
    # 1/√(10·(10.5/11)(.5/11)) = 1.518. 50% of 10: u = ±.05, Σu² = .025, SE² = 10/9·.025,
    # SE = .1667, logit 0 with SD .1667/.25 = .667. Cao Bằng passes Hà Nội (or Thái Nguyên
    # passes it) with P = Φ(−3.0445/√(1.518² + .667²)) = Φ(−1.836) = .033 > .025, so those
    # ranks enter the intervals; Thái Nguyên passes Hà Nội with Φ(−6.089/2.147) = .0023 <
    # .025, so Hà Nội is never 3rd at 95%.
    assert many == {"01": (1, 2), "04": (1, 3), "19": (2, 3)}
    for s in ranked.values():
        assert s.rank_low <= s.rank <= s.rank_high


def test_an_aggregate_is_ranked_with_an_interval_too(scored_round) -> None:
    scores = unit_scores(scored_round, "SIPAS")
    for code in ("01", "04", "19"):
        assert 1 <= scores[code].rank_low <= scores[code].rank <= scores[code].rank_high <= 3


def test_computing_the_same_run_again_gives_the_same_intervals(scored_round) -> None:
    run = scored_round
    stored = {
        (s.indicator_id, s.unit_id): (s.rank_low, s.rank_high)
        for s in Score.objects.filter(run=run, scope="unit")
    }
    values = engine.compute_values(round_id=run.round_id, version_id=run.round.version_id)
    again = services.build_scores(run, list(reversed(values)), min_n=5)
    assert {
        (s.indicator_id, s.unit_id): (s.rank_low, s.rank_high) for s in again if s.scope == "unit"
    } == stored
