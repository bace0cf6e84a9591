"""JSON shapes of rounds and questionnaires for apps and portals that render the form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

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
        "published_run": published_run(survey_round),
    }


def published_run(survey_round: Round) -> dict[str, Any] | None:
    """The published run annotated on the round by the view (``published_run_id``), if any."""
    run_id = getattr(survey_round, "published_run_id", None)
    if run_id is None:
        return None
    return {"id": run_id, "published_at": survey_round.published_run_at.isoformat()}


# --- Schema of the documents above (drf-spectacular) -----------------------------------------


class TextsSchema(serializers.Serializer):
    vi = serializers.CharField()
    en = serializers.CharField(allow_blank=True)


class ChoiceSchema(serializers.Serializer):
    code = serializers.CharField()
    label = TextsSchema()


class ShowIfSchema(serializers.Serializer):
    question = serializers.CharField()
    values = serializers.ListField(child=serializers.JSONField())

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["in"] = fields.pop("values")  # "in" is a keyword
        return fields


class QuestionSchema(serializers.Serializer):
    code = serializers.CharField()
    type = serializers.ChoiceField(choices=Question.Type.choices)
    required = serializers.BooleanField()
    label = TextsSchema()
    help = TextsSchema()
    choices = ChoiceSchema(many=True)
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    max_length = serializers.IntegerField(required=False)
    show_if = ShowIfSchema(allow_null=True)


class SectionSchema(serializers.Serializer):
    code = serializers.CharField()
    title = TextsSchema()
    intro = TextsSchema()
    questions = QuestionSchema(many=True)


class RoundVersionSchema(serializers.Serializer):
    questionnaire = serializers.CharField()
    number = serializers.IntegerField()


class VersionSchema(RoundVersionSchema):
    label = serializers.CharField(allow_blank=True)
    status = serializers.CharField()


class QuestionnaireSchema(serializers.Serializer):
    round = serializers.CharField()
    version = VersionSchema()
    sections = SectionSchema(many=True)


class PeriodSchema(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()


class RoundUnitSchema(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class PublishedRunSchema(serializers.Serializer):
    id = serializers.IntegerField()
    published_at = serializers.DateTimeField()


class RoundSchema(serializers.Serializer):
    code = serializers.CharField()
    name = TextsSchema()
    period = PeriodSchema()
    opens_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()
    open_link = serializers.BooleanField()
    version = RoundVersionSchema()
    units = RoundUnitSchema(many=True)
    published_run = PublishedRunSchema(
        allow_null=True, help_text="The round's published scoring run, if any."
    )


class RoundListSchema(serializers.Serializer):
    results = RoundSchema(many=True)
