"""Multiple testing: which of a family of tests to call significant.

``benjamini_hochberg`` controls the false discovery rate (the expected share of false
alarms among the tests called significant) at ``q``: sort the m p-values
p_(1) ≤ … ≤ p_(m), take the largest k with p_(k) ≤ k·q/m, and call the tests 1..k
significant (Benjamini and Hochberg, 1995). It holds for independent tests and for tests
positively dependent in the sense of PRDS (Benjamini and Yekutieli, 2001), as changes of
nested indicators of one unit are.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

FALSE_DISCOVERY_RATE = 0.05


def benjamini_hochberg[K: Hashable](
    p_values: Mapping[K, float], q: float = FALSE_DISCOVERY_RATE
) -> set[K]:
    """The keys whose tests are significant at false discovery rate ``q`` (Benjamini–Hochberg).

    Every p-value counts in m, including those of 1; a NaN p-value is a ValueError.
    """
    if not 0 < q < 1:
        raise ValueError("q must be between 0 and 1")
    if any(math.isnan(p) for p in p_values.values()):
        raise ValueError("a p-value is NaN")
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    m = len(ordered)
    k = 0
    for position, (_key, p) in enumerate(ordered, start=1):
        if p <= position * q / m:
            k = position
    return {key for key, _p in ordered[:k]}
