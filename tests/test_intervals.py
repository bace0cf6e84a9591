"""The published 95% intervals: logit inside (0, 100), Clopper–Pearson (Korn–Graubard) at the
edges, one z for all. Expected values are worked by hand in the comments (or taken from the
standard Clopper–Pearson table), not produced by the code under test."""

import math

import pytest

from scoring.intervals import Z, clopper_pearson, critical_value, interval


def test_one_z_is_the_normal_quantile():
    from scipy.stats import norm

    assert abs(Z - norm.ppf(0.975)) < 1e-15


def test_logit_interval_at_one_half_is_symmetric():
    # logit(0.5) = 0; half width = 1.959964 · 0.05 / 0.25 = 0.3919928;
    # expit(0.3919928) = 1 / (1 + e^−0.3919928) = 1 / 1.6757340 = 0.5967623
    low, high = interval(50.0, 5.0, n=100)
    assert high == pytest.approx(59.67623, abs=1e-4)
    assert low == pytest.approx(100 - 59.67623, abs=1e-4)


def test_near_the_top_the_logit_interval_reaches_lower_than_wald():
    # The example: 98.41 from n = 63, SE of a simple sample √(p(1−p)/n) = 1.57597.
    # logit(0.9841) = ln(0.9841/0.0159) = ln(61.893082) = 4.125410;
    # half width = 1.959964 · 0.0157597 / (0.9841 · 0.0159) = 0.0308884 / 0.01564719 = 1.974051
    # low = expit(2.151359) = 0.895795, high = expit(6.099461) = 0.997761
    se = math.sqrt(0.9841 * 0.0159 / 63) * 100
    low, high = interval(98.41, se, n=63)
    assert low == pytest.approx(89.5795, abs=1e-3)
    assert high == pytest.approx(99.7761, abs=1e-3)
    assert high < 100  # not the Wald interval's zero-width top edge
    assert low < 98.41 - Z * se  # lower than the Wald interval's 95.32


def test_at_100_percent_clopper_pearson_on_the_respondents():
    # 63 of 63 satisfied: the lower bound solves p^63 = 0.025, p = 0.025^(1/63) = 0.943128
    assert interval(100.0, 0.0, n=63) == pytest.approx((94.3128, 100.0), abs=1e-3)


def test_at_0_percent_the_mirror_image():
    assert interval(0.0, 0.0, n=63) == pytest.approx((0.0, 5.6872), abs=1e-3)


def test_at_the_edge_an_effective_size_widens_the_interval():
    # Korn–Graubard: with n* = 20 (a design effect of 3.15 on 63 respondents),
    # 0.025^(1/20) = e^(ln 0.025 / 20) = e^(−0.184444) = 0.831565
    low, high = interval(100.0, 0.0, n=63, n_eff=20.0)
    assert (low, high) == pytest.approx((83.1565, 100.0), abs=1e-3)


def test_clopper_pearson_matches_the_table():
    # 3 of 10: the exact interval of the standard tables is [0.0667, 0.6525]
    assert clopper_pearson(3, 10) == pytest.approx((6.67, 65.25), abs=0.01)


@pytest.mark.parametrize(("value", "se"), [(None, 1.0), (40.0, None), (None, None)])
def test_no_interval_without_a_value_and_an_se(value, se):
    assert interval(value, se, n=10) == (None, None)


@pytest.mark.parametrize("value", [0.5, 12.0, 50.0, 87.0, 99.5])
def test_the_interval_holds_the_value_and_stays_inside_0_100(value):
    low, high = interval(value, 3.0, n=50)
    assert 0 < low < value < high < 100


def test_with_design_degrees_of_freedom_the_t_quantile_widens_the_interval():
    # 19 villages in one stratum: 18 degrees of freedom, t(0.975, 18) = 2.1009 (t tables).
    # half width = 2.100922 · 0.05 / 0.25 = 0.4201844; expit(0.4201844) = 1/(1 + 0.656906)
    # = 0.603527
    assert critical_value(18) == pytest.approx(2.1009, abs=1e-4)
    low, high = interval(50.0, 5.0, n=589, df=18)
    assert (low, high) == pytest.approx((39.6473, 60.3527), abs=1e-3)


def test_without_degrees_of_freedom_the_normal_quantile():
    assert critical_value(None) == Z
    assert interval(50.0, 5.0, n=100, df=None) == interval(50.0, 5.0, n=100)
