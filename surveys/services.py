"""State changes of questionnaires: publish, retire, start a new draft from a version, and
put a draft's sections, questions or choices in order (positions 1..n, no gaps)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Max, Model, QuerySet, Value, When
from django.utils.translation import gettext as _

from config import status_moves
from surveys.models import (
    Choice,
    Indicator,
    PublishedVersionImmutable,
    Question,
    Questionnaire,
    QuestionnaireVersion,
    Section,
)
from surveys.validation import version_errors


def _locked_version(version_id: int) -> QuestionnaireVersion:
    return QuestionnaireVersion.objects.select_for_update().get(pk=version_id)


def _locked_draft(version_id: int) -> QuestionnaireVersion:
    version = _locked_version(version_id)
    if not version.is_editable:
        raise PublishedVersionImmutable(
            _("Version %(v)s is %(s)s and cannot be changed; start a new draft.")
            % {"v": version.number, "s": version.get_status_display()}
        )
    return version


def _number(siblings: QuerySet, first: Sequence[int]) -> None:
    """Positions 1..n: ``first`` in that order, then the other siblings as they stood."""
    stored = list(siblings.order_by("position", "id").values_list("id", flat=True))
    wanted = [pk for pk in dict.fromkeys(first) if pk in set(stored)]
    order = wanted + [pk for pk in stored if pk not in set(wanted)]
    if order:
        siblings.update(
            position=Case(*(When(pk=pk, then=Value(n)) for n, pk in enumerate(order, start=1)))
        )


def order_sections(*, version_id: int, section_ids: Sequence[int]) -> None:
    """Number a draft's sections 1..n in the order given (any left out follow)."""
    with transaction.atomic():
        _locked_draft(version_id)
        _number(Section.objects.filter(version_id=version_id), section_ids)


def order_questions(*, section_id: int, question_ids: Sequence[int]) -> None:
    """Number the questions of a draft's section 1..n in the order given (any left out follow)."""
    with transaction.atomic():
        _locked_draft(Section.objects.values_list("version_id", flat=True).get(pk=section_id))
        _number(Question.objects.filter(section_id=section_id), question_ids)


def order_choices(*, question_id: int, choice_ids: Sequence[int]) -> None:
    """Number the choices of a draft's question 1..n in the order given (any left out follow)."""
    with transaction.atomic():
        _locked_draft(Question.objects.values_list("version_id", flat=True).get(pk=question_id))
        _number(Choice.objects.filter(question_id=question_id), choice_ids)


def publish_version(*, version_id: int) -> QuestionnaireVersion:
    """Check a draft and publish it; publishing a published version is a no-op."""
    with transaction.atomic():
        version = _locked_version(version_id)
        refusal = _("Only a draft can be published; this version is %s.")
        if status_moves.already(
            version,
            QuestionnaireVersion.Status.PUBLISHED,
            allowed_from=QuestionnaireVersion.Status.DRAFT,
            refusal=refusal % version.get_status_display(),
        ):
            return version
        if errors := version_errors(version):
            raise ValidationError(errors)
        status_moves.move(version, QuestionnaireVersion.Status.PUBLISHED, stamp="published_at")
    return version


def retire_version(*, version_id: int) -> QuestionnaireVersion:
    """Retire a published version (rounds keep using it; no new round should)."""
    with transaction.atomic():
        version = _locked_version(version_id)
        if not status_moves.already(
            version,
            QuestionnaireVersion.Status.RETIRED,
            allowed_from=QuestionnaireVersion.Status.PUBLISHED,
            refusal=_("Only a published version can be retired."),
        ):
            status_moves.move(version, QuestionnaireVersion.Status.RETIRED, stamp="retired_at")
    return version


def start_draft(*, version_id: int, label: str = "") -> QuestionnaireVersion:
    """Copy a version (sections, questions, choices, indicators) into a new draft.

    Codes stay the same (results of two versions are compared through a version mapping,
    ``surveys.mapping``, which can be filled in from the shared codes); links
    (parents, display conditions, indicator tags) are re-pointed to the copies.
    """
    with transaction.atomic():
        source = QuestionnaireVersion.objects.select_related("questionnaire").get(pk=version_id)
        # Lock the questionnaire's versions so two drafts don't take the same number.
        siblings = QuestionnaireVersion.objects.select_for_update().filter(
            questionnaire_id=source.questionnaire_id
        )
        number = (siblings.aggregate(n=Max("number"))["n"] or 0) + 1
        draft = QuestionnaireVersion.objects.create(
            questionnaire=source.questionnaire,
            number=number,
            label=label or source.label,
            based_on=source,
        )
        _copy_content(source, draft)
    return draft


def copy_questionnaire(
    *,
    version_id: int,
    code: str,
    title_vi: str,
    title_en: str = "",
    owner_unit_id: int | None = None,
) -> QuestionnaireVersion:
    """A new questionnaire (a province's own when ``owner_unit_id`` is set) whose version 1
    is a draft copy of the version given (e.g. the built-in SIPAS), codes unchanged."""
    with transaction.atomic():
        source = QuestionnaireVersion.objects.select_related("questionnaire").get(pk=version_id)
        questionnaire = Questionnaire(
            code=code,
            title_vi=title_vi,
            title_en=title_en,
            description_vi=source.questionnaire.description_vi,
            description_en=source.questionnaire.description_en,
            owner_unit_id=owner_unit_id,
        )
        questionnaire.full_clean()
        questionnaire.save()
        draft = QuestionnaireVersion.objects.create(
            questionnaire=questionnaire, number=1, label=source.label, based_on=source
        )
        _copy_content(source, draft)
    return draft


def _copy_of[ModelT: Model](content: ModelT, **links: Any) -> ModelT:
    """An unsaved copy of ``content``: its own values (codes, texts, positions, rules), with
    ``links`` (the draft's version, section, question, group or indicator) for its relations."""
    values = {
        f.attname: getattr(content, f.attname)
        for f in content._meta.concrete_fields
        if not f.is_relation and not f.primary_key
    }
    return type(content)(**values, **links)


def _copy_content(source: QuestionnaireVersion, draft: QuestionnaireVersion) -> None:
    """Copy the sections, questions, choices, policy groups and indicators of ``source``
    into ``draft``, re-pointing parents, display conditions and indicator tags."""
    groups = {g.pk: _copy_of(g, version=draft) for g in source.policy_groups.all()}
    for group in groups.values():
        group.save()

    indicators: dict[int, Indicator] = {}
    parents: dict[int, int | None] = {}
    for ind in source.indicators.order_by("id"):
        parents[ind.pk] = ind.parent_id
        indicators[ind.pk] = _copy_of(
            ind, version=draft, policy_group=groups.get(ind.policy_group_id)
        )
    Indicator.objects.bulk_create(indicators.values())
    for old_pk, parent_pk in parents.items():
        if parent_pk is not None:
            indicators[old_pk].parent = indicators[parent_pk]
    Indicator.objects.bulk_update(
        [i for old, i in indicators.items() if parents[old] is not None], ["parent"]
    )

    sections = {s.pk: _copy_of(s, version=draft) for s in source.sections.all()}
    for section in sections.values():
        section.save()

    copied: dict[int, Question] = {}
    conditions: dict[int, int] = {}
    for q in source.questions.prefetch_related("choices").order_by("id"):
        copy = _copy_of(q, section=sections[q.section_id], indicator=indicators.get(q.indicator_id))
        copy.save()
        copied[q.pk] = copy
        if q.show_if_question_id is not None:
            conditions[q.pk] = q.show_if_question_id
        Choice.objects.bulk_create(_copy_of(c, question=copy) for c in q.choices.all())
    for old_pk, condition_pk in conditions.items():
        copied[old_pk].show_if_question = copied[condition_pk]
    Question.objects.bulk_update([copied[pk] for pk in conditions], ["show_if_question"])
