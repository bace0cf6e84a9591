"""Reads of the survey frame and questionnaires."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from surveys.models import (
    Agency,
    Choice,
    Question,
    QuestionnaireVersion,
    Round,
    Section,
    Unit,
    localized,
)


def version_sections(*, version_id: int) -> QuerySet[Section]:
    """Sections of a version in order, each with its questions and their choices."""
    questions = (
        Question.objects.select_related("show_if_question", "indicator")
        .prefetch_related(Prefetch("choices", queryset=Choice.objects.order_by("position", "id")))
        .order_by("position", "id")
    )
    return (
        Section.objects.filter(version_id=version_id)
        .prefetch_related(Prefetch("questions", queryset=questions))
        .order_by("position", "id")
    )


def open_rounds(*, at: timezone.datetime | None = None) -> QuerySet[Round]:
    """Rounds accepting responses now, with their published questionnaire version."""
    at = at or timezone.now()
    return (
        Round.objects.filter(
            opens_at__lte=at,
            closes_at__gt=at,
            version__status__in=[
                QuestionnaireVersion.Status.PUBLISHED,
                QuestionnaireVersion.Status.RETIRED,
            ],
        )
        .select_related("version__questionnaire")
        .order_by("closes_at", "code")
    )


def agencies_of_units(units: Iterable[Unit] | QuerySet[Unit]) -> QuerySet[Agency]:
    """The agencies of ``units``, with their unit, by unit and then name: a form's choices."""
    return (
        Agency.objects.filter(unit__in=units)
        .select_related("unit")
        .order_by("unit__name", "unit__code", "name_vi", "code")
    )


def agency_of_unit(*, unit: Unit, code: str) -> Agency:
    """The agency with this code (unique in the country) if it belongs to ``unit``.

    Otherwise a ``ValidationError`` on ``agency`` says which: an unknown code (with the
    country-wide code when the client sent a unit's own code, as before codes were made
    unique), or an agency of another unit, named, so nothing is stored for the wrong one.
    """
    agency = Agency.objects.select_related("unit").filter(code=code).first()
    if agency is None:
        message = _("There is no agency with the code %(code)s.") % {"code": code}
        if Agency.objects.filter(unit=unit, code=f"{unit.code}-{code}").exists():
            message += " " + _(
                "Agency codes are unique in the country: did you mean %(suggestion)s?"
            ) % {"suggestion": f"{unit.code}-{code}"}
        raise ValidationError({"agency": [message]})
    if agency.unit_id != unit.pk:
        raise ValidationError(
            {
                "agency": [
                    _(
                        "The agency %(code)s (%(agency)s) belongs to %(other)s, not to "
                        "%(unit)s: choose an agency of %(unit)s, or none."
                    )
                    % {
                        "code": agency.code,
                        "agency": localized(agency, "name"),
                        "other": agency.unit.name,
                        "unit": unit.name,
                    }
                ]
            }
        )
    return agency
