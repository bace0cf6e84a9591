"""Personal data is asked only with consent: the rule holds at publishing and at answering."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from feedback.validation import clean_answers
from surveys import services
from surveys.models import Question
from surveys.validation import question_errors
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db


def phone_question(version, **condition):
    """PHONE, a personal-data text question (not scored) after the draft's, shown under
    ``condition`` (``show_if_question``, ``show_if_values``) if one is given."""
    return QuestionFactory(
        section=version.sections.get(),
        code="PHONE",
        position=11,
        type=Question.Type.TEXT,
        personal_data=True,
        excluded_from_indices=True,
        **condition,
    )


def with_contact_question(version, *, condition=None, values=None):
    """CONSENT (yes/no, not scored) and PHONE shown if CONSENT (or ``condition``) is yes (or
    one of ``values``)."""
    consent = QuestionFactory(
        section=version.sections.get(), code="CONSENT", position=10, excluded_from_indices=True
    )
    phone = phone_question(
        version,
        show_if_question=condition or consent,
        show_if_values=[True] if values is None else values,
    )
    return consent, phone


def test_personal_data_behind_a_consent_question_is_accepted(make_draft) -> None:
    version = make_draft()
    _, phone = with_contact_question(version)
    assert question_errors(phone) == {}
    services.publish_version(version_id=version.pk)


def test_personal_data_without_a_consent_condition_cannot_be_published(make_draft) -> None:
    version = make_draft()
    phone_question(version)
    with pytest.raises(ValidationError) as error:
        services.publish_version(version_id=version.pk)
    assert "question:PHONE" in error.value.message_dict


def test_a_condition_on_a_non_consent_answer_is_not_enough(make_draft) -> None:
    version = make_draft()
    sat = version.questions.get(code="SAT")
    _, phone = with_contact_question(version, condition=sat, values=[5])
    assert "personal_data" in question_errors(phone)


def test_without_consent_the_personal_answer_is_discarded(make_draft) -> None:
    version = make_draft()
    with_contact_question(version)
    questions = list(version.questions.order_by("section__position", "position"))
    base = {"USED": False}
    cleaned, errors = clean_answers(questions, {**base, "CONSENT": False, "PHONE": "0912345678"})
    assert errors == {} and "PHONE" not in cleaned
    cleaned, _ = clean_answers(questions, {**base, "CONSENT": True, "PHONE": "0912345678"})
    assert cleaned["PHONE"].value == "0912345678"
