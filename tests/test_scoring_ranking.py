"""Ranking: highest first, ties at 2 decimals share a rank, missing values are not ranked;
rank intervals from seeded draws on the logit scale."""

import math

import numpy as np
import pytest

from scoring.ranking import competition_ranks, logit_spread, rank_intervals, rank_seed


def test_highest_value_ranks_first() -> None:
    ranks, rank_of = competition_ranks({"a": 80.0, "b": 86.8, "c": 72.5})
    assert ranks == {"b": 1, "a": 2, "c": 3} and rank_of == 3


def test_values_equal_at_two_decimals_share_a_rank_and_the_next_rank_is_skipped() -> None:
    ranks, _ = competition_ranks({"a": 90.004, "b": 89.996, "c": 90.0, "d": 85.0})
    # 90.004, 89.996 and 90.0 all round to 90.00: they share rank 1, d is 4th
    assert ranks == {"a": 1, "b": 1, "c": 1, "d": 4}


def test_values_that_differ_at_two_decimals_do_not_tie() -> None:
    ranks, _ = competition_ranks({"a": 80.01, "b": 80.0})
    assert ranks == {"a": 1, "b": 2}


def test_units_without_a_value_are_not_ranked_nor_counted() -> None:
    ranks, rank_of = competition_ranks({"a": 50.0, "b": None, "c": 60.0})
    assert ranks == {"c": 1, "a": 2} and rank_of == 2


def test_no_values_no_ranks() -> None:
    assert competition_ranks({}) == ({}, 0)


# --- Rank intervals ---------------------------------------------------------------------------

PROVINCES = {f"{code:02d}": (60 + code * 0.3, 2.0) for code in range(1, 21)}


def test_the_same_seed_gives_the_same_intervals_whatever_the_order() -> None:
    first = rank_intervals(PROVINCES, seed=7)
    again = rank_intervals(dict(reversed(list(PROVINCES.items()))), seed=7)
    assert first == again


def test_another_seed_gives_other_intervals() -> None:
    # 20 units 0.3 points apart with SE 2: each interval spans many ranks, so its ends
    # depend on the draws; two seeds agree on every end with negligible probability.
    assert rank_intervals(PROVINCES, seed=7) != rank_intervals(PROVINCES, seed=8)


def test_the_seed_is_fixed_by_run_and_indicator() -> None:
    assert rank_seed(17, 3) == rank_seed(17, 3)
    assert len({rank_seed(17, 3), rank_seed(17, 4), rank_seed(18, 3)}) == 3


def test_well_separated_units_have_their_rank_for_sure() -> None:
    # 90, 70, 50 with SE 1: on the logit scale 2.197, 0.847, 0 with SDs .111, .048, .04;
    # the gaps are 12+ SDs, so no draw in 2000 swaps two units.
    found = rank_intervals({"a": (90.0, 1.0), "b": (50.0, 1.0), "c": (70.0, 1.0)}, seed=1)
    assert found == {"a": (1, 1), "c": (2, 2), "b": (3, 3)}


def test_identical_units_cannot_be_told_apart() -> None:
    # Five units with the same value and SE are exchangeable: each takes every rank 1..5
    # with probability 1/5, so its 2.5% quantile is 1 and its 97.5% quantile is 5.
    found = rank_intervals({unit: (50.0, 5.0) for unit in "abcde"}, seed=3)
    assert set(found.values()) == {(1, 5)}


def test_two_close_units_among_distant_ones_share_two_ranks() -> None:
    # b and c are 0.5 apart with SE 3 (d/SE_d = 0.5/4.24 = 0.12: a near coin toss); a and d
    # are far away. So b and c each cover ranks 2–3, a and d keep 1 and 4.
    found = rank_intervals(
        {"a": (95.0, 0.5), "b": (70.5, 3.0), "c": (70.0, 3.0), "d": (30.0, 1.0)}, seed=5
    )
    assert found == {"a": (1, 1), "b": (2, 3), "c": (2, 3), "d": (4, 4)}


def test_the_rank_distribution_matches_a_normal_comparison() -> None:
    # Two units: a above b with probability Φ((La − Lb)/√(sa² + sb²)) on the logit scale.
    # a = 55 ± 2, b = 50 ± 2: La = ln(.55/.45) = .2007, Lb = 0, sa = .02/.2475 = .0808,
    # sb = .02/.25 = .08; P(a ahead) = Φ(.2007/.1137) = Φ(1.765) = .961 — so a's rank is 2
    # in about 3.9% of draws (above 2.5%): a's interval is (1, 2), and b's (1, 2) too.
    la, lb = math.log(0.55 / 0.45), 0.0
    sa, sb = 0.02 / (0.55 * 0.45), 0.02 / 0.25
    ahead = 0.5 * math.erfc(-(la - lb) / math.hypot(sa, sb) / math.sqrt(2))
    assert ahead == pytest.approx(0.961, abs=0.001)
    assert rank_intervals({"a": (55.0, 2.0), "b": (50.0, 2.0)}, seed=11) == {
        "a": (1, 2),
        "b": (1, 2),
    }


def test_logit_spread_inside_and_at_the_edges() -> None:
    # inside: logit(.8) = ln 4, SD = .02/(.8·.2) = .125
    centre, sd = logit_spread(80.0, 2.0, None)
    assert centre == pytest.approx(math.log(4)) and sd == pytest.approx(0.125)
    # 100% of 63: p̃ = 63.5/64, SD = 1/√(63·p̃·(1 − p̃)) = 1/√(63·63.5·.5/64²) = 1.0118
    centre, sd = logit_spread(100.0, 0.0, 63)
    assert centre == pytest.approx(math.log(63.5 / 0.5))
    assert sd == pytest.approx(1 / math.sqrt(63 * 63.5 * 0.5 / 64**2))
    # without a size, an edge value is fixed where it is, and so is one without an SE
    assert logit_spread(100.0, 0.0, None) == (math.inf, 0.0)
    assert logit_spread(0.0, None, None) == (-math.inf, 0.0)
    assert logit_spread(50.0, None, None) == (0.0, 0.0)


def test_a_fixed_unit_at_100_stays_first_and_ties_take_the_best_place() -> None:
    found = rank_intervals({"top": (100.0, 0.0), "also": (100.0, None), "b": (60.0, 1.0)}, seed=2)
    assert found == {"top": (1, 1), "also": (1, 1), "b": (3, 3)}


def test_a_unit_at_100_with_few_respondents_is_not_certain_of_first_place() -> None:
    # 100% of 10 draws around p̃ = 10.5/11 = .9545 (logit 3.04, SD 1/√(10·.9545·.0455) = 1.51);
    # the other unit is 95 ± 1 (logit 2.944, SD .21): they swap places often.
    found = rank_intervals({"few": (100.0, 0.0), "many": (95.0, 1.0)}, seed=4, sizes={"few": 10})
    assert found == {"few": (1, 2), "many": (1, 2)}


def test_no_units_no_intervals_and_one_unit_is_first() -> None:
    assert rank_intervals({}, seed=1) == {}
    assert rank_intervals({"only": (40.0, 9.0)}, seed=1) == {"only": (1, 1)}


def test_draws_are_numerically_the_seeded_normal_stream() -> None:
    # The draw of unit k in draw i is centre_k + sd_k·Z[i, k] with Z the seeded standard
    # normal matrix over the units in sorted order: one draw, checked by hand.
    z = np.random.default_rng(9).standard_normal((1, 2))
    a = math.log(0.6 / 0.4) + (0.05 / 0.24) * z[0, 0]
    b = math.log(0.5 / 0.5) + (0.05 / 0.25) * z[0, 1]
    expected = {"a": (1, 1), "b": (2, 2)} if a >= b else {"a": (2, 2), "b": (1, 1)}
    assert rank_intervals({"b": (50.0, 5.0), "a": (60.0, 5.0)}, seed=9, draws=1) == expected


def test_the_fast_ranks_and_quantiles_equal_scipys_and_numpys() -> None:
    from scipy.stats import rankdata

    from scoring.ranking import competition_ranks_of_draws, rank_quantiles

    rng = np.random.default_rng(0)
    drawn = rng.standard_normal((500, 12))
    drawn[:, 3] = np.inf  # two fixed units at 100 tie in every draw
    drawn[:, 4] = np.inf
    drawn[:, 5] = drawn[:, 6] = 0.25  # and two fixed units inside
    ranks = competition_ranks_of_draws(drawn)
    assert (ranks == rankdata(-drawn, method="min", axis=1)).all()
    low, high = rank_quantiles(ranks, (0.025, 0.975))
    expected = np.quantile(ranks, (0.025, 0.975), axis=0, method="inverted_cdf")
    assert (low == expected[0]).all() and (high == expected[1]).all()
