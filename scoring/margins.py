"""Population margins from a staff CSV: validation, then an atomic replace of a round's margins.

The file has the header ``unit,dimension,category,population`` and one row per unit,
dimension and category: ``unit`` a unit code covered by the round, ``dimension`` ``sex_age``
or ``area``, ``category`` choice codes of the ``RAKING_QUESTIONS`` of the round's
questionnaire (``nam|18_25`` for sex_age, ``do_thi`` for area), ``population`` a number
≥ 0. Every problem is reported with its row (the file's line; the header is row 1) and
field, and a file with any problem stores nothing.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from audit.services import record_change
from config.csv_upload import file_refused, uploaded_text
from scoring.models import PopulationMargin
from scoring.raking import DIMENSIONS, SEPARATOR
from surveys.models import Choice, Round, Unit

HEADER = ("unit", "dimension", "category", "population")
MAX_BYTES = 5 * 1024 * 1024


def margin_categories(*, version_id: int) -> dict[str, list[str]]:
    """The valid categories of each dimension for a questionnaire version, sorted."""
    codes: dict[str, list[str]] = defaultdict(list)
    questions = {code: role for role, code in settings.RAKING_QUESTIONS.items()}
    rows = (
        Choice.objects.filter(question__version_id=version_id, question__code__in=questions)
        .order_by("question__code", "position", "code")
        .values_list("question__code", "code")
    )
    for question, code in rows:
        codes[questions[question]].append(code)
    out: dict[str, list[str]] = {}
    for dimension, roles in DIMENSIONS.items():
        combined = [""]
        for role in roles:
            combined = [f"{c}{SEPARATOR}{x}" if c else x for c in combined for x in codes[role]]
        out[dimension] = sorted(combined)
    return out


def read_margins(*, survey_round: Round, data: bytes | str) -> list[PopulationMargin]:
    """The margins of a CSV file, unsaved; ValidationError ``{"file": [problems]}``."""

    reader = csv.reader(io.StringIO(uploaded_text(data, max_bytes=MAX_BYTES)))
    header = tuple(cell.strip().lower() for cell in next(reader, []))
    if header != HEADER:
        raise file_refused(
            [
                _("Row 1: the columns must be %(expected)s, not %(found)s.")
                % {"expected": ",".join(HEADER), "found": ",".join(header) or "-"}
            ]
        )

    units = dict(survey_round.units.values_list("code", "id"))
    known_units = set(Unit.objects.values_list("code", flat=True))
    categories = {
        d: set(c) for d, c in margin_categories(version_id=survey_round.version_id).items()
    }
    problems: list[str] = []
    seen: dict[tuple[str, str, str], int] = {}
    totals: dict[tuple[str, str], float] = defaultdict(float)
    margins: list[PopulationMargin] = []

    def problem(row: int, field: str, message: str) -> None:
        problems.append(
            _("Row %(row)d, %(field)s: %(message)s")
            % {"row": row, "field": field, "message": message}
        )

    for fields in reader:
        row = reader.line_num
        if not any(cell.strip() for cell in fields):
            continue  # blank line
        if len(fields) != len(HEADER):
            problems.append(
                _("Row %(row)d: %(n)d fields, expected 4.") % {"row": row, "n": len(fields)}
            )
            continue
        unit, dimension, key, population_text = (cell.strip() for cell in fields)
        ok = True
        if unit not in units:
            ok = False
            message = (
                _("unit %(unit)s is not covered by round %(round)s.")
                if unit in known_units
                else _("unknown unit %(unit)s.")
            )
            problem(row, "unit", message % {"unit": unit or "-", "round": survey_round.code})
        if dimension not in DIMENSIONS:
            ok = False
            problem(
                row,
                "dimension",
                _("unknown dimension %(value)s (expected %(expected)s).")
                % {"value": dimension or "-", "expected": ", ".join(DIMENSIONS)},
            )
        elif key not in categories[dimension]:
            ok = False
            expected = sorted(categories[dimension])
            problem(
                row,
                "category",
                _("unknown %(dimension)s category %(value)s (expected one of %(expected)s).")
                % {
                    "dimension": dimension,
                    "value": key or "-",
                    "expected": ", ".join(expected) if expected else _("none: no questions"),
                },
            )
        try:
            population = float(population_text)
        except ValueError:
            population = math.nan
        if not math.isfinite(population):
            ok = False
            problem(
                row,
                "population",
                _("%(value)s is not a number.") % {"value": population_text or "-"},
            )
        elif population < 0:
            ok = False
            problem(row, "population", _("%(value)s is negative.") % {"value": population_text})
        if not ok:
            continue
        first = seen.setdefault((unit, dimension, key), row)
        if first != row:
            problem(
                row,
                "category",
                _("%(unit)s %(dimension)s %(category)s repeats row %(first)d.")
                % {"unit": unit, "dimension": dimension, "category": key, "first": first},
            )
            continue
        totals[unit, dimension] += population
        margins.append(
            PopulationMargin(
                round=survey_round,
                unit_id=units[unit],
                dimension=dimension,
                category=key,
                population=population,
            )
        )
    for (unit, dimension), total in sorted(totals.items()):
        if total <= 0:
            problems.append(
                _("Unit %(unit)s, %(dimension)s: the populations sum to 0.")
                % {"unit": unit, "dimension": dimension}
            )
    if problems:
        raise file_refused(problems)
    return margins


def replace_margins(*, round_code: str, data: bytes | str) -> int:
    """Replace the round's population margins with those of a CSV file, all or nothing."""
    survey_round = Round.objects.filter(code=round_code).first()
    if survey_round is None:
        raise ValidationError(
            {"round": [_("There is no survey round %(code)s.") % {"code": round_code}]}
        )
    margins = read_margins(survey_round=survey_round, data=data)
    with transaction.atomic():
        old = PopulationMargin.objects.filter(round=survey_round)
        before = margins_text(old.order_by("unit__code", "dimension", "category"))
        old.delete()
        PopulationMargin.objects.bulk_create(margins, batch_size=2000)
        after = margins_text(
            PopulationMargin.objects.filter(round=survey_round).order_by(
                "unit__code", "dimension", "category"
            )
        )
        if before != after:  # the audit trail: the round's margins before and after
            record_change(survey_round, {"population margins": [before, after]})
    return len(margins)


def margins_text(margins: Any) -> str:
    """Margins as the lines of their CSV file (unit,dimension,category,population)."""
    return "\n".join(
        f"{unit},{dimension},{category},{population:g}"
        for unit, dimension, category, population in margins.values_list(
            "unit__code", "dimension", "category", "population"
        )
    )
