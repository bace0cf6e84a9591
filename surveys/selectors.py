"""Reads of the survey frame and questionnaires."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from surveys.models import Choice, Question, QuestionnaireVersion, Round, Section


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


def questions_by_code(*, version_id: int) -> dict[str, Question]:
    """Every question of a version, keyed by its code."""
    return {
        q.code: q
        for q in Question.objects.filter(version_id=version_id).prefetch_related("choices")
    }


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
