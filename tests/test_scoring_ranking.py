"""Ranking: highest first, ties at 2 decimals share a rank, missing values are not ranked."""

from scoring.ranking import competition_ranks


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
