"""English dates with a 24-hour clock and no trailing dot: "7 December 2026, 23:57"."""

DATE_FORMAT = "j F Y"
DATETIME_FORMAT = "j F Y, H:i"
