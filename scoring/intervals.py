"""95% intervals of indicator values (0–100) from their design-based standard errors.

One z for every interval and every test of the scoring: ``Z`` is the 0.975 quantile of the
normal distribution.

* Between 0 and 100 (exclusive): the logit interval, R ``svyciprop(method = "logit")``'s
  default. With p = value/100 and s = SE/100, L = logit(p) ± q·s/(p(1 − p)) and the interval
  is 100·expit(L). It stays inside (0, 100) and is asymmetric near the edges, where the Wald
  interval p ± Z·s (clipped) is too narrow on the inner side. Like ``svyciprop``, q is the
  0.975 quantile of Student's t with the design's degrees of freedom (PSUs − strata of the
  scope) when they are given, else ``Z``: a province of 19 villages has 18 degrees of
  freedom and q = 2.101, which a design-based SE from so few PSUs needs to cover 95%; with
  hundreds of PSUs (the nation, or respondents as PSUs) q is Z to three decimals.
* At exactly 0 or 100 the logit is undefined and the design-based SE is 0: the interval is
  Clopper–Pearson's exact binomial interval on the effective sample size (Korn–Graubard),
  with x = p·n* "successes" out of n*. There s = 0 gives no design effect, so n* is the
  effective size passed in (the design effect of a related estimate) or the number of
  respondents: at 100% with n* = 63, [100·0.025^(1/63), 100] = [94.31, 100].
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy.stats import beta, t

Z = 1.959963984540054  # the 0.975 normal quantile: one constant for intervals and tests
ALPHA = 0.05
EDGE = 1e-12  # values within this of 0 or 100 (on the 0–1 scale) are at the edge


def critical_value(df: float | None = None) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom, or ``Z`` without."""
    if df is None or not math.isfinite(df) or df <= 0:
        return Z
    return _t_quantile(float(df))


@lru_cache(maxsize=4096)
def _t_quantile(df: float) -> float:
    """``t.ppf`` once per degrees of freedom: a run asks for a few dozen, thousands of times."""
    return float(t.ppf(1 - ALPHA / 2, df))


def logit_interval(value: float, se: float, *, df: float | None = None) -> tuple[float, float]:
    """The logit interval of a value strictly between 0 and 100 with standard error ``se``
    (``df``: the design's degrees of freedom, see ``critical_value``)."""
    p, s = value / 100, se / 100
    centre = math.log(p / (1 - p))
    half = critical_value(df) * s / (p * (1 - p))
    return 100 * _expit(centre - half), 100 * _expit(centre + half)


def clopper_pearson(successes: float, n: float) -> tuple[float, float]:
    """Clopper–Pearson's interval (0–100) for ``successes`` out of ``n`` (both may be
    fractional, as with an effective sample size)."""
    low = 0.0 if successes <= 0 else float(beta.ppf(ALPHA / 2, successes, n - successes + 1))
    high = 1.0 if successes >= n else float(beta.ppf(1 - ALPHA / 2, successes + 1, n - successes))
    return 100 * low, 100 * high


def interval(
    value: float | None,
    se: float | None,
    *,
    n: int,
    n_eff: float | None = None,
    df: float | None = None,
) -> tuple[float | None, float | None]:
    """The published interval of a value: logit inside (0, 100), Korn–Graubard at the edges.

    ``(None, None)`` when the value or its SE is unknown (no answer, fewer than two PSUs).
    """
    if value is None or se is None:
        return None, None
    p = value / 100
    if p <= EDGE or p >= 1 - EDGE:
        size = n_eff if n_eff is not None and math.isfinite(n_eff) and n_eff > 0 else n
        if size <= 0:
            return None, None
        return clopper_pearson(0.0 if p <= EDGE else size, size)
    return logit_interval(value, se, df=df)


def _expit(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)
