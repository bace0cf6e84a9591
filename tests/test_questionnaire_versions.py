"""Questionnaire versions: published content is frozen, codes are unique, conditions look back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import translation

from surveys import services
from surveys.models import (
    Choice,
    PublishedVersionImmutable,
    Question,
    QuestionnaireVersion,
    Section,
)
from surveys.validation import question_errors
from tests.factories import (
    QuestionFactory,
    SectionFactory,
    VersionFactory,
    choice_question_without_choices,
)

pytestmark = pytest.mark.django_db


def published(version: QuestionnaireVersion) -> QuestionnaireVersion:
    return services.publish_version(version_id=version.pk)


class TestPublishedVersionIsImmutable:
    def test_question_of_a_published_version_cannot_be_saved(self, make_draft) -> None:
        version = published(make_draft())
        question = version.questions.get(code="SAT")
        question.label_vi = "Đã sửa"
        with pytest.raises(PublishedVersionImmutable):
            question.save()
        assert version.questions.get(code="SAT").label_vi == "Câu hỏi"

    def test_no_question_can_be_added_to_a_published_version(self, make_draft) -> None:
        version = published(make_draft())
        with pytest.raises(PublishedVersionImmutable):
            QuestionFactory(section=version.sections.get(), code="NEW")
        assert not version.questions.filter(code="NEW").exists()

    def test_choices_sections_and_indicators_are_frozen_too(self, make_draft) -> None:
        version = published(make_draft())
        choice = Choice.objects.filter(question__version=version).first()
        choice.label_vi = "khác"
        with pytest.raises(PublishedVersionImmutable):
            choice.save()
        with pytest.raises(PublishedVersionImmutable):
            choice.delete()
        with pytest.raises(PublishedVersionImmutable):
            version.sections.get().delete()
        indicator = version.indicators.get()
        indicator.weight = 2
        with pytest.raises(PublishedVersionImmutable):
            indicator.save()
        assert version.questions.count() == 2
        assert Choice.objects.filter(question__version=version).count() == 5

    def test_content_cannot_be_moved_out_of_a_published_version(self, make_draft) -> None:
        version = published(make_draft())
        other = SectionFactory(code="OTHER")
        question = version.questions.get(code="USED")
        question.section = other
        with pytest.raises(PublishedVersionImmutable):
            question.save()

    def test_version_itself_cannot_be_relabelled_deleted_or_reopened(self, make_draft) -> None:
        version = published(make_draft())
        version.label = "changed"
        with pytest.raises(PublishedVersionImmutable):
            version.save()
        version.refresh_from_db()
        version.status = QuestionnaireVersion.Status.DRAFT
        with pytest.raises(PublishedVersionImmutable):
            version.save()
        version.refresh_from_db()
        with pytest.raises(PublishedVersionImmutable):
            version.delete()
        assert QuestionnaireVersion.objects.filter(pk=version.pk, label="test").exists()

    def test_publishing_twice_is_a_no_op_and_retiring_is_final(self, make_draft) -> None:
        version = published(make_draft())
        first_published_at = version.published_at
        assert published(version).published_at == first_published_at
        retired = services.retire_version(version_id=version.pk)
        assert retired.status == QuestionnaireVersion.Status.RETIRED
        with pytest.raises(ValidationError):
            services.publish_version(version_id=version.pk)

    def test_editing_means_starting_a_new_draft_that_copies_everything(self, make_draft) -> None:
        source = published(make_draft())
        draft = services.start_draft(version_id=source.pk)

        assert draft.status == QuestionnaireVersion.Status.DRAFT
        assert draft.number == source.number + 1
        assert draft.based_on == source
        sat = draft.questions.get(code="SAT")
        assert sat.show_if_question == draft.questions.get(code="USED")
        assert sat.indicator.version == draft
        assert sat.satisfied_values == [4, 5]
        assert list(sat.choices.values_list("code", flat=True)) == ["1", "2", "3", "4", "5"]

        sat.label_vi = "Câu mới"
        sat.save()
        assert source.questions.get(code="SAT").label_vi == "Câu hỏi"
        assert published(draft).status == QuestionnaireVersion.Status.PUBLISHED


class TestQuestionCodes:
    def test_question_codes_are_unique_within_a_version(self, make_draft) -> None:
        version = make_draft()
        section = version.sections.get()
        with pytest.raises(IntegrityError), transaction.atomic():
            QuestionFactory(section=section, code="USED")

    def test_full_clean_reports_a_duplicate_code_on_the_field(self, make_draft) -> None:
        version = make_draft()
        duplicate = Question(
            section=version.sections.get(), code="SAT", type=Question.Type.YESNO, label_vi="x"
        )
        with pytest.raises(ValidationError) as error:
            duplicate.full_clean(exclude=["version"])
        assert "code" in error.value.message_dict
        assert "SAT" in error.value.message_dict["code"][0]

    def test_the_same_code_may_be_used_in_another_version(self, make_draft) -> None:
        make_draft()
        other = make_draft()
        assert Question.objects.filter(code="SAT").count() == 2
        assert other.questions.filter(code="SAT").exists()

    def test_section_codes_are_unique_within_a_version(self, make_draft) -> None:
        version = make_draft()
        with pytest.raises(IntegrityError), transaction.atomic():
            Section.objects.create(version=version, code="MAIN", title_vi="Trùng")


class TestDisplayConditions:
    def test_a_condition_on_an_earlier_question_is_accepted(self, make_draft) -> None:
        sat = make_draft().questions.get(code="SAT")
        assert question_errors(sat) == {}

    def test_a_condition_on_a_later_question_is_rejected(self, make_draft) -> None:
        version = make_draft()
        used, sat = version.questions.get(code="USED"), version.questions.get(code="SAT")
        used.show_if_question, used.show_if_values = sat, [5]
        with translation.override("en"):
            errors = question_errors(used)
        assert "show_if_question" in errors
        assert "earlier question" in errors["show_if_question"][0]
        with pytest.raises(ValidationError):
            used.full_clean()

    def test_a_condition_in_a_later_section_counts_as_later(self, make_draft) -> None:
        version = make_draft()
        later = SectionFactory(version=version, code="LATER", position=9)
        follow_up = QuestionFactory(section=later, code="LATE", position=1)
        used = version.questions.get(code="USED")
        used.show_if_question, used.show_if_values = follow_up, [True]
        assert "show_if_question" in question_errors(used)

    def test_a_question_cannot_depend_on_itself(self, make_draft) -> None:
        used = make_draft().questions.get(code="USED")
        used.show_if_question, used.show_if_values = used, [True]
        assert "show_if_question" in question_errors(used)

    def test_a_condition_on_another_version_is_rejected(self, make_draft) -> None:
        first, second = make_draft(), make_draft()
        sat = second.questions.get(code="SAT")
        sat.show_if_question = first.questions.get(code="USED")
        assert "show_if_question" in question_errors(sat)

    def test_publishing_refuses_a_later_condition_and_names_the_question(self, make_draft) -> None:
        version = make_draft()
        used, sat = version.questions.get(code="USED"), version.questions.get(code="SAT")
        Question.objects.filter(pk=used.pk).update(show_if_question=sat, show_if_values=[5])
        with pytest.raises(ValidationError) as error:
            services.publish_version(version_id=version.pk)
        assert "question:USED" in error.value.message_dict
        version.refresh_from_db()
        assert version.status == QuestionnaireVersion.Status.DRAFT

    def test_condition_values_must_be_possible_answers(self, make_draft) -> None:
        version = make_draft()
        Question.objects.filter(version=version, code="SAT").update(show_if_values=["maybe"])
        with pytest.raises(ValidationError) as error:
            services.publish_version(version_id=version.pk)
        assert "question:SAT" in error.value.message_dict


class TestQuestionRules:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            pytest.param({"max_value": None}, "min_value", id="a-scale-needs-its-bounds"),
            pytest.param(
                {"min_value": Decimal(5), "max_value": Decimal(1)},
                "max_value",
                id="min-above-max-is-rejected",
            ),
            pytest.param(
                {"excluded_from_indices": True},
                "indicator",
                id="an-excluded-question-cannot-feed-an-indicator",
            ),
            pytest.param(
                {"satisfied_values": []},
                "satisfied_values",
                id="a-scored-question-says-which-answers-are-satisfied",
            ),
        ],
    )
    def test_a_broken_rule_is_named_by_its_field(
        self, make_draft, change: dict[str, object], field: str
    ) -> None:
        sat = make_draft().questions.get(code="SAT")
        for name, value in change.items():
            setattr(sat, name, value)
        assert field in question_errors(sat)

    def test_a_choice_question_needs_two_choices_to_be_published(self, make_draft) -> None:
        version = make_draft()
        choice_question_without_choices(version, "PICK")
        with pytest.raises(ValidationError) as error:
            services.publish_version(version_id=version.pk)
        assert "question:PICK" in error.value.message_dict

    def test_an_empty_version_cannot_be_published(self) -> None:
        version = VersionFactory()
        with pytest.raises(ValidationError) as error:
            services.publish_version(version_id=version.pk)
        assert "questions" in error.value.message_dict
