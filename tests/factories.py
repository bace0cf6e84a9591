"""Test data builders: questionnaires, units and agencies, rounds, responses, runs, petitions."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from feedback.models import Answer, Petition, PetitionCategory, Response
from feedback.petitions import services as petitions
from feedback.services import submit_response
from scoring.models import Run
from surveys.models import (
    Agency,
    Choice,
    Indicator,
    Question,
    Questionnaire,
    QuestionnaireVersion,
    Round,
    Section,
    Unit,
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


class OrderedFactory(factory.django.DjangoModelFactory):
    """Sections and questions: each new one takes the next ``position`` unless given one."""

    class Meta:
        abstract = True

    position = factory.Sequence(lambda n: n)


class SectionFactory(OrderedFactory):
    class Meta:
        model = Section

    version = factory.SubFactory(VersionFactory)
    code = factory.Sequence(lambda n: f"S{n}")
    title_vi = "Phần"
    title_en = "Part"


class QuestionFactory(OrderedFactory):
    class Meta:
        model = Question

    section = factory.SubFactory(SectionFactory)
    code = factory.Sequence(lambda n: f"Q{n}")
    type = Question.Type.YESNO
    label_vi = "Câu hỏi"
    label_en = "Question"


class IndicatorFactory(factory.django.DjangoModelFactory):
    """An item (the share of satisfied answers) named by its code; ``index=True`` makes it an
    index, the mean of its children."""

    class Meta:
        model = Indicator

    class Params:
        index = factory.Trait(kind=Indicator.Kind.INDEX, aggregation=Indicator.Aggregation.MEAN)

    version = factory.SubFactory(VersionFactory)
    code = factory.Sequence(lambda n: f"I{n}")
    kind = Indicator.Kind.ITEM
    aggregation = Indicator.Aggregation.SHARE
    name_vi = factory.LazyAttribute(lambda o: o.code)


def small_draft() -> QuestionnaireVersion:
    """A draft with a screener (USED, yes/no) and a scale (SAT, 1–5) shown if USED is yes."""
    version = VersionFactory(label="test")
    section = SectionFactory(version=version, code="MAIN", position=1)
    item = IndicatorFactory(version=version, code="SAT", name_vi="Hài lòng", name_en="Satisfied")
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


def choice_question_without_choices(draft: QuestionnaireVersion, code: str) -> Question:
    """A single-choice question (not scored) after USED and SAT of a ``small_draft``, with no
    choices: the draft can no longer be published."""
    return QuestionFactory(
        section=draft.sections.get(),
        code=code,
        position=3,
        type=Question.Type.SINGLE,
        excluded_from_indices=True,
    )


class UnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Unit

    code = factory.Sequence(lambda n: f"U{n}")
    name = factory.LazyAttribute(lambda o: f"Unit {o.code}")
    kind = Unit.Kind.PROVINCE


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency

    unit = factory.SubFactory(UnitFactory)
    code = factory.Sequence(lambda n: f"AG{n}")
    name_vi = factory.LazyAttribute(lambda o: f"Cơ quan {o.code}")


class RoundFactory(factory.django.DjangoModelFactory):
    """An open round (opened yesterday, closing in 30 days) of the first half of 2026;
    ``units=[…]`` sets the units it covers."""

    class Meta:
        model = Round
        skip_postgeneration_save = True  # the hook saves what it sets

    code = factory.Sequence(lambda n: f"r{n}")
    name_vi = factory.LazyAttribute(lambda o: f"Vòng {o.code}")
    period_start = dt.date(2026, 1, 1)
    period_end = dt.date(2026, 6, 30)
    opens_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    closes_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))
    version = factory.SubFactory(VersionFactory)

    @factory.post_generation
    def units(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted is not None:
            self.units.set(extracted)


def round_like(model: Round, **fields: Any) -> Round:
    """A round of ``model``'s questionnaire version, period and opening times."""
    same = {
        "period_start": model.period_start,
        "period_end": model.period_end,
        "opens_at": model.opens_at,
        "closes_at": model.closes_at,
        "version": model.version,
    }
    return RoundFactory(**same | fields)


def round_opening_on(day: dt.date, *, period_end: dt.date | None = None, **fields: Any) -> Round:
    """A round "Vòng <year>" of the first half of ``day``'s year (or up to ``period_end``),
    open for 60 days from ``day``."""
    opens_at = timezone.make_aware(dt.datetime.combine(day, dt.time()))
    return RoundFactory(
        name_vi=f"Vòng {day.year}",
        period_start=dt.date(day.year, 1, 1),
        period_end=period_end or dt.date(day.year, 6, 30),
        opens_at=opens_at,
        closes_at=opens_at + dt.timedelta(days=60),
        **fields,
    )


class RunFactory(factory.django.DjangoModelFactory):
    """A scoring run of a round (running unless a ``status`` is given)."""

    class Meta:
        model = Run

    round = factory.SubFactory(RoundFactory)


class ResponseFactory(factory.django.DjangoModelFactory):
    """A response written straight to the tables (no validation, no records), with
    ``answers={code: value}``: a yes/no or number goes to the answer's ``number``, any
    other value to its ``code``."""

    class Meta:
        model = Response
        skip_postgeneration_save = True  # the hook saves what it sets

    round = factory.SubFactory(RoundFactory)
    version = factory.SelfAttribute("round.version")
    unit = factory.SubFactory(UnitFactory)
    channel = Response.Channel.API

    @factory.post_generation
    def answers(self, create: bool, extracted: dict[str, Any] | None, **kwargs: Any) -> None:
        if not create or not extracted:
            return
        questions = dict(self.version.questions.values_list("code", "id"))
        Answer.objects.bulk_create(
            Answer(response=self, question_id=questions[code], value=value, **typed(value))
            for code, value in extracted.items()
        )


def submitted_response(
    round_code: str, unit: str, answers: dict[str, Any], **fields: Any
) -> Response:
    """A response as a citizen submits it, through ``submit_response`` (validated, with its
    records) with a new client id; channel API unless ``channel`` is given."""
    fields.setdefault("channel", Response.Channel.API)
    submission = submit_response(
        round_code=round_code, unit_code=unit, answers=answers, client_id=uuid.uuid4(), **fields
    )
    return submission.response


def typed(value: Any) -> dict[str, Any]:
    """The typed answer columns, as ``feedback.validation`` fills them."""
    if isinstance(value, bool):
        return {"number": 1.0 if value else 0.0}
    if isinstance(value, int):
        return {"number": float(value)}
    return {"code": value}


class PetitionCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PetitionCategory

    code = "road"
    name_vi = factory.LazyAttribute(lambda o: f"Loại {o.code}")
    name_en = factory.LazyAttribute(lambda o: f"Kind {o.code}")
    deadline_days = 10


class PetitionFactory(factory.Factory):
    """A petition as a citizen files it, through ``submit_petition`` (channel web):
    ``category``, ``unit`` and ``agency`` are codes."""

    class Meta:
        model = Petition

    category = "road"
    unit = "19"
    agency = ""
    description = "Đèn đường hỏng ở ngõ 12."

    @classmethod
    def _create(cls, model_class: type[Petition], **fields: Any) -> Petition:
        petition, _ = petitions.submit_petition(
            data=petitions.PetitionInput(**fields), channel="web"
        )
        return petition
