"""Codes stay unique within a version when editors rename questions in the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from surveys.models import QuestionnaireVersion
from tests.factories import QuestionFactory, SectionFactory
from tests.support.admin import edit_questions

pytestmark = pytest.mark.django_db


def rename_questions(client: Client, version: QuestionnaireVersion, renames: dict[str, str]) -> Any:
    """Post the version's change form back with some question codes changed."""
    return edit_questions(client, version, {old: {"code": new} for old, new in renames.items()})


def codes(version: QuestionnaireVersion) -> list[str]:
    return sorted(version.questions.values_list("code", flat=True))


def test_renaming_to_a_code_already_taken_is_a_form_error(admin_client: Client, make_draft) -> None:
    version = make_draft()
    response = rename_questions(admin_client, version, {"SAT": "USED"})
    assert response.status_code == 200
    assert "USED" in response.content.decode()
    assert codes(version) == ["SAT", "USED"]


def test_two_questions_of_a_section_renamed_alike_is_a_form_error(
    admin_client: Client, make_draft
) -> None:
    version = make_draft()
    response = rename_questions(admin_client, version, {"SAT": "SAME", "USED": "SAME"})
    assert response.status_code == 200
    assert "SAME" in response.content.decode()
    assert codes(version) == ["SAT", "USED"]


def test_a_code_taken_in_another_section_is_a_form_error(admin_client: Client, make_draft) -> None:
    version = make_draft()
    later = SectionFactory(version=version, code="LATER", position=9)
    QuestionFactory(section=later, code="LATE", position=1, excluded_from_indices=True)
    assert rename_questions(admin_client, version, {"USED": "SAME"}).status_code == 302
    response = rename_questions(admin_client, version, {"LATE": "SAME"})
    assert response.status_code == 200
    assert "SAME" in response.content.decode()
    assert codes(version) == ["LATE", "SAME", "SAT"]


def test_a_harmless_rename_is_saved(admin_client: Client, make_draft) -> None:
    version = make_draft()
    response = rename_questions(admin_client, version, {"SAT": "SAT2"})
    assert response.status_code == 302
    assert codes(version) == ["SAT2", "USED"]
