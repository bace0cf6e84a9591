"""The sample design of responses: stratum and primary sampling unit (PSU).

A response stores ``stratum`` and ``psu`` as sent (API, paper import, or taken from its
invitation); empty means "not given" and stays empty in storage. Whoever estimates
variance (scoring) reads the defaults through this module, never by its own rule:

- an empty stratum is the response's unit (code ``unit:<unit code>``);
- an empty PSU is the response itself (code ``response:<id>``), i.e. today's simple random
  sample within the unit.

Given codes are prefixed too (``stratum:``/``psu:``), so a given code can never coincide
with a default one. PSU codes are meant within a stratum: the same village code in two
strata is two PSUs (scoring groups by the pair, as R's ``survey`` with ``nest=TRUE``).

A round may give stratum population sizes (``surveys.models.StratumPopulation``) for a finite
population correction; ``stratum_populations`` keys them by the same effective codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, CharField, F, QuerySet, Value, When
from django.db.models.functions import Cast, Concat

from feedback.models import Response
from surveys.models import Round, StratumPopulation


@dataclass(frozen=True)
class Design:
    """The effective stratum and PSU of one response."""

    stratum: str
    psu: str


def effective_stratum(stratum: str, unit_code: str) -> str:
    return f"stratum:{stratum}" if stratum else f"unit:{unit_code}"


def effective_psu(psu: str, response_id: int) -> str:
    return f"psu:{psu}" if psu else f"response:{response_id}"


def design_of(response: Response) -> Design:
    """The stratum and PSU scoring uses for ``response`` (defaults filled in)."""
    return Design(
        stratum=effective_stratum(response.stratum, response.unit.code),
        psu=effective_psu(response.psu, response.pk),
    )


def with_design(queryset: QuerySet[Response]) -> QuerySet[Response]:
    """``queryset`` annotated with ``design_stratum`` and ``design_psu``, the same codes as
    ``design_of`` gives, computed in the database (one query for any number of responses)."""
    return queryset.annotate(
        design_stratum=Case(
            When(stratum="", then=Concat(Value("unit:"), F("unit__code"))),
            default=Concat(Value("stratum:"), F("stratum")),
            output_field=CharField(),
        ),
        design_psu=Case(
            When(
                psu="",
                then=Concat(Value("response:"), Cast("pk", output_field=CharField())),
            ),
            default=Concat(Value("psu:"), F("psu")),
            output_field=CharField(),
        ),
    )


def stratum_populations(survey_round: Round) -> dict[str, int]:
    """The population sizes a round gives (``StratumPopulation``), by effective stratum code
    as ``design_of`` names strata; a stratum missing here has no finite population
    correction."""
    rows = StratumPopulation.objects.filter(round=survey_round).values_list(
        "stratum", "unit__code", "population"
    )
    return {
        effective_stratum(stratum, unit_code or ""): population
        for stratum, unit_code, population in rows
    }
