"""The built-in SIPAS rounds narrowed to a few units, the earlier one scored on demo data."""

from __future__ import annotations

from collections.abc import Sequence

from demo.responses import generate_demo_responses
from scoring.services import recompute_round
from surveys.models import Round, Unit


def narrowed_sipas_rounds(
    unit_codes: Sequence[str], *, earlier_per_unit: int, seed: int
) -> tuple[Round, Round]:
    """The rounds ``sipas-2022`` and ``demo`` over ``unit_codes`` only; ``sipas-2022`` gets
    ``earlier_per_unit`` demo responses a unit (drawn with ``seed``) and its run published."""
    earlier, demo = Round.objects.get(code="sipas-2022"), Round.objects.get(code="demo")
    for survey_round in (earlier, demo):
        survey_round.units.set(Unit.objects.filter(code__in=unit_codes))
    responses = earlier_per_unit * len(unit_codes)
    generate_demo_responses(round_code=earlier.code, responses=responses, seed=seed)
    recompute_round(round_code=earlier.code)
    return earlier, demo
