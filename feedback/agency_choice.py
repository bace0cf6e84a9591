"""Choosing an agency on a web form: the list narrowed to the unit chosen.

Agency codes are unique in the country, so the form posts an agency's code and the
services refuse one of another unit (``surveys.selectors.agency_of_unit``). The list itself
is narrowed in two ways. With JavaScript (``feedback/static/feedback/agencies.js``) it
narrows as soon as the unit changes, from a ``<template>`` holding every agency of the
form's units. Without it, the form is first sent with the unit, comes back listing that
unit's agencies, and is sent again: the hidden field ``agencies_of`` names the unit whose
agencies the citizen was shown (the script keeps it up to date), so a form with no agency
chosen is stored only once the citizen has seen the list of the unit chosen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from surveys.collation import sorted_by_name
from surveys.models import Agency, Unit
from surveys.selectors import agencies_of_units


@dataclass(frozen=True)
class AgencyChoice:
    """What the agency field of a form shows for the unit chosen so far."""

    everywhere: list[Agency]  # every agency of the form's units: the script's options
    listed: list[Agency]  # those of the unit chosen: the options without script
    listed_for: str  # the code of the unit chosen ("" before one is)

    @property
    def needed(self) -> bool:
        """Whether the form has an agency field at all."""
        return bool(self.everywhere)


def agency_choice(*, units: Iterable[Unit] | QuerySet[Unit], unit_code: str) -> AgencyChoice:
    """The agencies of ``units``, and those of the unit with ``unit_code`` to list now."""
    everywhere = sorted_by_name(agencies_of_units(units), lambda a: [a.unit.name, a.name_vi])
    listed = [a for a in everywhere if a.unit.code == unit_code] if unit_code else []
    return AgencyChoice(everywhere=everywhere, listed=listed, listed_for=unit_code)


def needs_agency_step(choice: AgencyChoice, *, agency_code: str, agencies_of: str) -> bool:
    """Whether the form must come back listing the chosen unit's agencies before storing:
    none was chosen, the unit has some, and the citizen was not shown them yet."""
    return not agency_code and bool(choice.listed) and agencies_of != choice.listed_for
