"""Working days: Monday to Friday, minus Vietnam's public holidays (``holidays.VN``), with
the staff-maintained exceptions of ``CalendarDay`` (extra days off, make-up working days)
taking precedence over both rules."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import holidays

from feedback.models import CalendarDay


@cache
def _public_holidays() -> holidays.HolidayBase:
    # expand=True (the default) adds each year the first time a date of it is looked up.
    return holidays.country_holidays("VN")


def _exceptions(start: date, end: date) -> dict[date, bool]:
    return dict(
        CalendarDay.objects.filter(day__gte=start, day__lte=end).values_list(
            "day", "is_working_day"
        )
    )


def _is_working(day: date, exceptions: dict[date, bool]) -> bool:
    if day in exceptions:
        return exceptions[day]
    return day.weekday() < 5 and day not in _public_holidays()


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a working day for public administration."""
    return _is_working(day, _exceptions(day, day))


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself is not counted).

    A petition received on a Friday with a 1-day deadline is due on the next working
    Monday; with ``days == 0`` the answer is ``start`` itself.
    """
    if days <= 0:
        return start
    # Tết can add nine days off in a row; three calendar days per working day plus a margin
    # covers every real calendar, and the window grows if it ever does not.
    window = days * 3 + 30
    exceptions = _exceptions(start, start + timedelta(days=window))
    day, left = start, days
    while left:
        day += timedelta(days=1)
        if day > start + timedelta(days=window):
            window *= 2
            exceptions = _exceptions(start, start + timedelta(days=window))
        if _is_working(day, exceptions):
            left -= 1
    return day
