"""Test data builders for questionnaires."""

from __future__ import annotations

from decimal import Decimal

import factory

from surveys.models import (
    Choice,
    Indicator,
    Question,
    Questionnaire,
    QuestionnaireVersion,
    Section,
)


class QuestionnaireFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Questionnaire
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"q{n}")
    title_vi = factory.LazyAttribute(lambda o: f"Phiếu {o.code}")
    title_en = factory.LazyAttribute(lambda o: f"Form {o.code}")


class VersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QuestionnaireVersion

    questionnaire = factory.SubFactory(QuestionnaireFactory)
    number = factory.Sequence(lambda n: n + 1)


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Section

    version = factory.SubFactory(VersionFactory)
    code = factory.Sequence(lambda n: f"S{n}")
    position = factory.Sequence(lambda n: n)
    title_vi = "Phần"
    title_en = "Part"


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    section = factory.SubFactory(SectionFactory)
    code = factory.Sequence(lambda n: f"Q{n}")
    position = factory.Sequence(lambda n: n)
    type = Question.Type.YESNO
    label_vi = "Câu hỏi"
    label_en = "Question"


def small_draft() -> QuestionnaireVersion:
    """A draft with a screener (USED, yes/no) and a scale (SAT, 1–5) shown if USED is yes."""
    version = VersionFactory(label="test")
    section = SectionFactory(version=version, code="MAIN", position=1)
    item = Indicator.objects.create(
        version=version,
        code="SAT",
        kind=Indicator.Kind.ITEM,
        aggregation=Indicator.Aggregation.SHARE,
        name_vi="Hài lòng",
        name_en="Satisfied",
    )
    used = QuestionFactory(
        section=section,
        code="USED",
        position=1,
        type=Question.Type.YESNO,
        required=True,
        excluded_from_indices=True,
    )
    sat = QuestionFactory(
        section=section,
        code="SAT",
        position=2,
        type=Question.Type.SCALE,
        min_value=Decimal(1),
        max_value=Decimal(5),
        show_if_question=used,
        show_if_values=[True],
        indicator=item,
        satisfied_values=[4, 5],
    )
    Choice.objects.bulk_create(
        Choice(question=sat, code=str(p), position=p, label_vi=f"Mức {p}", label_en=f"Level {p}")
        for p in range(1, 6)
    )
    return version
