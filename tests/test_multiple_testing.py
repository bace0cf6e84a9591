"""Benjamini–Hochberg, worked by hand: sort, compare p_(k) with k·q/m, keep 1..k."""

from __future__ import annotations

import pytest

from scoring.multiple_testing import benjamini_hochberg


def test_the_largest_k_under_its_threshold_takes_all_smaller_ones_with_it() -> None:
    # m = 5, q = .05: thresholds k·.01 = .01 .02 .03 .04 .05.
    # sorted: a .005 ≤ .01 ✓, b .025 > .02 ✗, c .028 ≤ .03 ✓, d .045 > .04 ✗, e .2 > .05 ✗.
    # The largest k with p_(k) ≤ k·q/m is 3, so a, b and c are significant — b too,
    # although .025 > .02 on its own (the step-up rule).
    p = {"a": 0.005, "b": 0.025, "c": 0.028, "d": 0.045, "e": 0.2}
    assert benjamini_hochberg(p) == {"a", "b", "c"}


def test_bh_flags_fewer_than_unadjusted_tests_at_five_percent() -> None:
    # m = 4: thresholds .0125 .025 .0375 .05. Sorted .01 ✓, .03 ✗, .04 ✗, .049 ✓ → k = 4:
    # all four (.049 ≤ .05 carries the others). With .06 instead of .049: .06 > .05, k = 1.
    assert benjamini_hochberg({1: 0.03, 2: 0.01, 3: 0.049, 4: 0.04}) == {1, 2, 3, 4}
    assert benjamini_hochberg({1: 0.03, 2: 0.01, 3: 0.06, 4: 0.04}) == {2}


def test_a_largest_p_value_at_q_carries_all_the_smaller_ones() -> None:
    # m = 3: the smallest, .02, exceeds .05/3 = .0167 and .04 > .0333, but .05 ≤ .05 → k = 3
    assert benjamini_hochberg({"x": 0.02, "y": 0.04, "z": 0.05}) == {"x", "y", "z"}
    # with .051 as the largest: .051 > .05, .04 > .0333, .02 > .0167 → none
    assert benjamini_hochberg({"x": 0.02, "y": 0.04, "z": 0.051}) == set()


def test_one_test_is_an_ordinary_test_at_q() -> None:
    assert benjamini_hochberg({"only": 0.049}) == {"only"}
    assert benjamini_hochberg({"only": 0.051}) == set()


def test_another_level() -> None:
    # q = .10, m = 2: thresholds .05 and .10; .07 > .05 but .09 ≤ .10 → both
    assert benjamini_hochberg({"a": 0.07, "b": 0.09}, q=0.10) == {"a", "b"}
    assert benjamini_hochberg({"a": 0.07, "b": 0.09}) == set()


def test_an_empty_family_has_no_discoveries_and_bad_input_is_refused() -> None:
    assert benjamini_hochberg({}) == set()
    with pytest.raises(ValueError):
        benjamini_hochberg({"a": float("nan")})
    with pytest.raises(ValueError):
        benjamini_hochberg({"a": 0.01}, q=0)
