"""JSON shapes of rounds and questionnaires for apps and portals that render the form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from surveys.models import Question, Round, Section


def texts(obj: Any, field: str) -> dict[str, str]:
    return {"vi": getattr(obj, f"{field}_vi", ""), "en": getattr(obj, f"{field}_en", "")}


def _number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def question_document(question: Question) -> dict[str, Any]:
    document: dict[str, Any] = {
        "code": question.code,
        "type": question.type,
        "required": question.required,
        "label": texts(question, "label"),
        "help": texts(question, "help"),
        "choices": [{"code": c.code, "label": texts(c, "label")} for c in question.choices.all()],
        "min": _number(question.min_value),
        "max": _number(question.max_value),
        "show_if": None,
    }
    if question.max_length is not None:
        document["max_length"] = question.max_length
    if question.show_if_question_id is not None:
        document["show_if"] = {
            "question": question.show_if_question.code,
            "in": question.show_if_values,
        }
    return document


def questionnaire_document(survey_round: Round, sections: list[Section]) -> dict[str, Any]:
    """``{"round", "version", "sections": [...]}`` as documented in the API."""
    version = survey_round.version
    return {
        "round": survey_round.code,
        "version": {
            "questionnaire": version.questionnaire.code,
            "number": version.number,
            "label": version.label,
            "status": version.status,
        },
        "sections": [
            {
                "code": section.code,
                "title": texts(section, "title"),
                "intro": texts(section, "intro"),
                "questions": [question_document(q) for q in section.questions.all()],
            }
            for section in sections
        ],
    }


def round_document(survey_round: Round) -> dict[str, Any]:
    return {
        "code": survey_round.code,
        "name": texts(survey_round, "name"),
        "period": {
            "start": survey_round.period_start.isoformat(),
            "end": survey_round.period_end.isoformat(),
        },
        "opens_at": survey_round.opens_at.isoformat(),
        "closes_at": survey_round.closes_at.isoformat(),
        "open_link": survey_round.allow_open_link,
        "version": {
            "questionnaire": survey_round.version.questionnaire.code,
            "number": survey_round.version.number,
        },
        "units": [{"code": u.code, "name": u.name} for u in survey_round.units.all()],
    }
