"""Inline SVG charts drawn on the server: pure functions from numbers to markup.

One chart shape serves every page: horizontal bars, one row per unit, indicator or round,
each with its 95% interval as a whisker and, optionally, a reference value (the national
value) marked per row or as one dashed line across the chart. A row without a value (a
suppressed value, or none at all) draws no bar: only its text. Text is passed in already
formatted and translated, so this module knows no language and no model.

The SVG has a fixed ``viewBox`` and scales to its container's width; it is ``role="img"``
and named by elements of the page (a ``<figcaption>`` and a summary), which also carries the
data as a table, so the drawing itself holds no information found nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 380  # viewBox units; the chart is drawn at its container's width
PLOT_LEFT = 12.0
PLOT_RIGHT = 320.0  # the value text sits right of the plot, right-aligned at WIDTH
ROW_HEIGHT = 36
LABEL_BASELINE = 13  # label text, above its bar
BAR_TOP = 18
BAR_HEIGHT = 12
LABEL_CHARS = 52  # letters of about 7 units (font size 13) across the chart
TOP = 20  # room for the reference line's label
AXIS_HEIGHT = 22  # tick labels under the plot

BAR_COLOUR = "#4a86e8"  # 3.6:1 against white, 4.9:1 against the black whisker
REFERENCE_COLOUR = "#b3261e"  # 6.5:1 against white
TEXT_COLOUR = "#1a1a1a"
GRID_COLOUR = "#d0d0d0"


@dataclass(frozen=True)
class Bar:
    """One row: a label, a value with its interval, and the row's reference value if any."""

    label: str
    value: float | None
    value_text: str
    low: float | None = None
    high: float | None = None
    reference: float | None = None


@dataclass(frozen=True)
class BarGeometry:
    """Where a row's shapes go, in viewBox units (None where nothing is drawn)."""

    bar_x: float
    bar_width: float | None
    whisker: tuple[float, float] | None
    reference_x: float | None


def scale(value: float, domain: tuple[float, float]) -> float:
    """The x coordinate of ``value`` on the plot, clamped to the domain."""
    low, high = domain
    share = (min(max(value, low), high) - low) / (high - low)
    return PLOT_LEFT + share * (PLOT_RIGHT - PLOT_LEFT)


def nice_domain(
    values: Sequence[float | None], *, step: float = 10.0, bounds: tuple[float, float] = (0, 100)
) -> tuple[float, float]:
    """The smallest range of whole ``step``s holding every value, within ``bounds``.

    Percentages of 72–91 get 70–100: differences between units stay visible on a phone.
    """
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return bounds
    low = max(bounds[0], math.floor(min(present) / step) * step)
    high = min(bounds[1], math.ceil(max(present) / step) * step)
    if high - low < step:  # all values equal and on a step: widen to one step
        high = min(bounds[1], low + step)
        low = max(bounds[0], high - step)
    return low, high


def ticks(domain: tuple[float, float], *, step: float = 10.0) -> list[float]:
    """Tick values every ``step`` from the domain's low end to its high end."""
    low, high = domain
    count = round((high - low) / step)
    return [low + i * step for i in range(count + 1)]


def bar_geometry(bar: Bar, domain: tuple[float, float]) -> BarGeometry:
    """The bar (from the domain's low end to the value), whisker and reference marker."""
    start = scale(domain[0], domain)
    width = None if bar.value is None else scale(bar.value, domain) - start
    whisker = None
    if bar.value is not None and bar.low is not None and bar.high is not None:
        whisker = (scale(bar.low, domain), scale(bar.high, domain))
    reference = None if bar.reference is None else scale(bar.reference, domain)
    return BarGeometry(bar_x=start, bar_width=width, whisker=whisker, reference_x=reference)


def fit(text: str, limit: int = LABEL_CHARS) -> str:
    """The text cut to ``limit`` characters with an ellipsis (the table holds it in full)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def chart_height(rows: int) -> int:
    return TOP + rows * ROW_HEIGHT + AXIS_HEIGHT


def _number(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def bar_chart(
    bars: Sequence[Bar],
    *,
    domain: tuple[float, float],
    labelled_by: str,
    described_by: str = "",
    reference: float | None = None,
    reference_label: str = "",
    tick_text: dict[float, str] | None = None,
) -> SafeString:
    """Horizontal bars with 95% whiskers; ``reference`` draws one dashed line over all rows.

    ``labelled_by``/``described_by`` are ids of page elements naming and describing the
    chart (its caption and summary); ``tick_text`` maps tick values to localized labels.
    """
    height = chart_height(len(bars))
    plot_bottom = TOP + len(bars) * ROW_HEIGHT
    described = f' aria-describedby="{escape(described_by)}"' if described_by else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'preserveAspectRatio="xMinYMin meet" aria-labelledby="{escape(labelled_by)}"'
        f"{described} "
        f'font-family="system-ui, sans-serif" font-size="13" fill="{TEXT_COLOUR}">'
    ]
    for tick in ticks(domain):
        x = _number(scale(tick, domain))
        text = escape((tick_text or {}).get(tick, _number(tick)))
        parts.append(
            f'<line class="grid" x1="{x}" y1="{TOP}" x2="{x}" y2="{plot_bottom}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
            f'<text class="tick" x="{x}" y="{plot_bottom + 15}" text-anchor="middle">{text}</text>'
        )
    for index, bar in enumerate(bars):
        parts.append(_row(bar, TOP + index * ROW_HEIGHT, domain))
    if reference is not None:
        x = _number(scale(reference, domain))
        anchor = "end" if scale(reference, domain) > (PLOT_LEFT + PLOT_RIGHT) / 2 else "start"
        parts.append(
            f'<line class="reference" x1="{x}" y1="{TOP - 4}" x2="{x}" y2="{plot_bottom}" '
            f'stroke="{REFERENCE_COLOUR}" stroke-width="2" stroke-dasharray="5 3"/>'
            f'<text class="reference-label" x="{x}" y="{TOP - 8}" text-anchor="{anchor}" '
            f'fill="{REFERENCE_COLOUR}" font-weight="bold">{escape(reference_label)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text above is escaped


def _row(bar: Bar, top: float, domain: tuple[float, float]) -> str:
    shape = bar_geometry(bar, domain)
    y = top + BAR_TOP
    middle = _number(y + BAR_HEIGHT / 2)
    parts = [
        f'<g class="row{" no-value" if shape.bar_width is None else ""}">',
        f'<text class="label" x="{_number(PLOT_LEFT)}" y="{_number(top + LABEL_BASELINE)}">'
        f"{escape(fit(bar.label))}</text>",
    ]
    if shape.bar_width is not None:
        parts.append(
            f'<rect class="bar" x="{_number(shape.bar_x)}" y="{_number(y)}" '
            f'width="{_number(shape.bar_width)}" height="{BAR_HEIGHT}" fill="{BAR_COLOUR}"/>'
        )
    if shape.whisker is not None:
        x1, x2 = (_number(x) for x in shape.whisker)
        top_cap, bottom_cap = _number(y - 3), _number(y + BAR_HEIGHT + 3)
        parts.append(
            f'<g class="whisker" stroke="{TEXT_COLOUR}" stroke-width="2">'
            f'<line x1="{x1}" y1="{middle}" x2="{x2}" y2="{middle}"/>'
            f'<line x1="{x1}" y1="{top_cap}" x2="{x1}" y2="{bottom_cap}"/>'
            f'<line x1="{x2}" y1="{top_cap}" x2="{x2}" y2="{bottom_cap}"/></g>'
        )
    if shape.reference_x is not None:
        x = _number(shape.reference_x)
        y1, y2 = _number(y - 5), _number(y + BAR_HEIGHT + 5)
        # White under the red mark: red on the blue bar alone is too faint (1.8:1).
        parts.append(
            f'<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="#ffffff" stroke-width="6"/>'
            f'<line class="marker" x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" '
            f'stroke="{REFERENCE_COLOUR}" stroke-width="3"/>'
        )
    style = ' font-style="italic"' if shape.bar_width is None else ' font-weight="bold"'
    parts.append(
        f'<text class="value" x="{WIDTH}" y="{_number(y + BAR_HEIGHT - 1)}" '
        f'text-anchor="end"{style}>{escape(bar.value_text)}</text></g>'
    )
    return "".join(parts)


# --- The priority matrix (issue 17): items placed by satisfaction and importance ------------

MATRIX_WIDTH = 380
MATRIX_HEIGHT = 300
MATRIX_LEFT, MATRIX_RIGHT = 40.0, 370.0
MATRIX_TOP, MATRIX_BOTTOM = 14.0, 262.0
POINT_COLOUR = "#1f4e9c"  # 8.2:1 against white
QUADRANT_FILL = "#f3e6e5"  # the quadrant to act on first, lightly shaded


@dataclass(frozen=True)
class Point:
    """One item of the matrix: its label (the code), satisfaction (x) and importance (y)."""

    label: str
    x: float
    y: float


def _place(value: float, domain: tuple[float, float], start: float, end: float) -> float:
    low, high = domain
    share = (min(max(value, low), high) - low) / (high - low) if high > low else 0.5
    return start + share * (end - start)


def importance_domain(values: Sequence[float]) -> tuple[float, float]:
    """A range of whole tenths holding every importance (correlations), at least 0.2 wide."""
    if not values:
        return 0.0, 1.0
    low = math.floor(min(values) * 10) / 10
    high = math.ceil(max(values) * 10) / 10
    if high - low < 0.2:
        high = low + 0.2
    return max(-1.0, low), min(1.0, high)


def matrix_chart(
    points: Sequence[Point],
    *,
    x_domain: tuple[float, float],
    y_domain: tuple[float, float],
    x_cut: float,
    y_cut: float,
    labelled_by: str,
    described_by: str = "",
    x_title: str = "",
    y_title: str = "",
    quadrant_titles: tuple[str, str, str, str] = ("", "", "", ""),
) -> SafeString:
    """A scatter of items, split in four by dashed lines at the cuts (the medians).

    ``quadrant_titles``: top left (important, less satisfied: act first), top right, bottom
    left, bottom right. Each point is a dot with its label beside it.
    """

    def px(x: float) -> float:
        return _place(x, x_domain, MATRIX_LEFT, MATRIX_RIGHT)

    def py(y: float) -> float:
        return _place(y, y_domain, MATRIX_BOTTOM, MATRIX_TOP)

    described = f' aria-describedby="{escape(described_by)}"' if described_by else ""
    cx, cy = px(x_cut), py(y_cut)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart matrix" role="img" '
        f'viewBox="0 0 {MATRIX_WIDTH} {MATRIX_HEIGHT}" width="{MATRIX_WIDTH}" '
        f'height="{MATRIX_HEIGHT}" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="{escape(labelled_by)}"{described} '
        f'font-family="system-ui, sans-serif" font-size="11" fill="{TEXT_COLOUR}">',
        f'<rect class="act-first" x="{_number(MATRIX_LEFT)}" y="{_number(MATRIX_TOP)}" '
        f'width="{_number(cx - MATRIX_LEFT)}" height="{_number(cy - MATRIX_TOP)}" '
        f'fill="{QUADRANT_FILL}"/>',
        f'<rect x="{_number(MATRIX_LEFT)}" y="{_number(MATRIX_TOP)}" '
        f'width="{_number(MATRIX_RIGHT - MATRIX_LEFT)}" '
        f'height="{_number(MATRIX_BOTTOM - MATRIX_TOP)}" fill="none" stroke="{GRID_COLOUR}"/>',
        f'<line class="cut" x1="{_number(cx)}" y1="{_number(MATRIX_TOP)}" x2="{_number(cx)}" '
        f'y2="{_number(MATRIX_BOTTOM)}" stroke="{REFERENCE_COLOUR}" stroke-dasharray="5 3"/>',
        f'<line class="cut" x1="{_number(MATRIX_LEFT)}" y1="{_number(cy)}" '
        f'x2="{_number(MATRIX_RIGHT)}" y2="{_number(cy)}" stroke="{REFERENCE_COLOUR}" '
        f'stroke-dasharray="5 3"/>',
    ]
    corners = (
        (MATRIX_LEFT + 4, MATRIX_TOP + 12, "start"),
        (MATRIX_RIGHT - 4, MATRIX_TOP + 12, "end"),
        (MATRIX_LEFT + 4, MATRIX_BOTTOM - 5, "start"),
        (MATRIX_RIGHT - 4, MATRIX_BOTTOM - 5, "end"),
    )
    for (x, y, anchor), title in zip(corners, quadrant_titles, strict=True):
        parts.append(
            f'<text class="quadrant" x="{_number(x)}" y="{_number(y)}" text-anchor="{anchor}" '
            f'font-style="italic">{escape(title)}</text>'
        )
    for x in (x_domain[0], x_domain[1]):
        parts.append(
            f'<text class="tick" x="{_number(px(x))}" y="{_number(MATRIX_BOTTOM + 13)}" '
            f'text-anchor="middle">{_number(x)}</text>'
        )
    for y in (y_domain[0], y_domain[1]):
        parts.append(
            f'<text class="tick" x="{_number(MATRIX_LEFT - 4)}" y="{_number(py(y) + 4)}" '
            f'text-anchor="end">{y:.1f}</text>'
        )
    parts.append(
        f'<text class="axis-title" x="{_number((MATRIX_LEFT + MATRIX_RIGHT) / 2)}" '
        f'y="{MATRIX_HEIGHT - 8}" text-anchor="middle">{escape(x_title)}</text>'
        f'<text class="axis-title" transform="rotate(-90)" '
        f'x="{_number(-(MATRIX_TOP + MATRIX_BOTTOM) / 2)}" y="12" '
        f'text-anchor="middle">{escape(y_title)}</text>'
    )
    for point in points:
        x, y = px(point.x), py(point.y)
        parts.append(
            f'<g class="point"><circle cx="{_number(x)}" cy="{_number(y)}" r="3.5" '
            f'fill="{POINT_COLOUR}"/><text x="{_number(x + 5)}" y="{_number(y - 4)}">'
            f"{escape(point.label)}</text></g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text above is escaped
