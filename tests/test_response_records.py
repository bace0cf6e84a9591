"""Compact response records (feedback.records): equal to a recomputation from the answers
after every write path, repaired by the rebuild command, and scored like the answers."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from feedback import records
from feedback.models import Answer, Response, ResponseRecord
from scoring.engine import compute_values
from surveys.models import Question, Round
from surveys.services import publish_version, start_draft
from tests.support.paper import csv_bytes, imported, row
from tests.support.records import assert_scored_alike, assert_values_alike
from tests.support.responses import post_responses

pytestmark = pytest.mark.django_db


def assert_records_match_answers(round_code: str = "demo") -> None:
    survey_round = Round.objects.get(code=round_code)
    assert records.mismatches(round_id=survey_round.pk) == (0, [])
    assert not ResponseRecord.objects.filter(round_id=survey_round.pk, stale=True).exists()
    assert ResponseRecord.objects.filter(round_id=survey_round.pk).count() == (
        Response.objects.filter(round=survey_round).count()
    )


def test_records_equal_the_answers_after_api_submissions(sipas: Any, client: Client) -> None:
    post_responses(client, 24)
    assert_records_match_answers()
    survey_round = Round.objects.get(code="demo")
    values = assert_scored_alike(survey_round.pk, survey_round.version_id)
    assert any(v.se is not None for v in values)  # the design path was exercised
    assert_scored_alike(survey_round.pk, survey_round.version_id, unit_level="agency")


def test_records_equal_the_answers_after_a_paper_import(sipas: Any) -> None:
    done = imported(csv_bytes([row("F-1"), row("F-2", unit="01"), row("F-3", weight="2.5")]))
    assert done.accepted_rows == 3
    assert_records_match_answers()
    survey_round = Round.objects.get(code="demo")
    assert_scored_alike(survey_round.pk, survey_round.version_id)


def test_records_follow_a_version_change_with_other_satisfied_sets(
    sipas: Any, client: Client
) -> None:
    post_responses(client, 9, seed=2)
    survey_round = Round.objects.get(code="demo")
    first = survey_round.version_id
    draft = start_draft(version_id=first, label="v2")
    Question.objects.filter(version=draft, code="S01").update(satisfied_values=[5])
    second = publish_version(version_id=draft.pk)
    Round.objects.filter(pk=survey_round.pk).update(version=second)
    post_responses(client, 9, seed=3)
    assert_records_match_answers()
    assert set(
        ResponseRecord.objects.filter(round_id=survey_round.pk).values_list("version_id", flat=True)
    ) == {first, second.pk}
    for version_id in (first, second.pk):
        assert_scored_alike(survey_round.pk, version_id)


def test_an_answer_changed_outside_the_services_is_scored_from_the_answers(
    sipas: Any, client: Client
) -> None:
    post_responses(client, 12, seed=4)
    survey_round = Round.objects.get(code="demo")
    answer = Answer.objects.filter(
        response__round=survey_round, question__code="S01", number__lt=5
    ).first()
    Answer.objects.filter(pk=answer.pk).update(number=5, value=5)  # no refresh: a trigger
    assert ResponseRecord.objects.get(response_id=answer.response_id).stale
    assert records.mismatches(round_id=survey_round.pk)[0] == 1
    assert_scored_alike(survey_round.pk, survey_round.version_id)
    call_command("rebuild_response_records", "--round", "demo")
    assert_records_match_answers()


def test_the_rebuild_command_repairs_a_corrupted_record(sipas: Any, client: Client) -> None:
    post_responses(client, 12, seed=5)
    survey_round = Round.objects.get(code="demo")
    before = compute_values(round_id=survey_round.pk, version_id=survey_round.version_id)
    victim = ResponseRecord.objects.filter(round_id=survey_round.pk).order_by("pk").first()
    ResponseRecord.objects.filter(pk=victim.pk).update(satisfied_0=0, weight=40.0, psu="x")
    with pytest.raises(CommandError, match=rf"1 response record\(s\) differ.*{victim.pk}"):
        call_command("rebuild_response_records", "--check")
    call_command("rebuild_response_records")
    call_command("rebuild_response_records", "--check")  # no error: repaired
    assert_records_match_answers()
    after = compute_values(round_id=survey_round.pk, version_id=survey_round.version_id)
    assert_values_alike(after, before)


def test_every_response_has_a_record_and_a_deleted_response_loses_it(
    sipas: Any, client: Client
) -> None:
    post_responses(client, 3, seed=6)
    response = Response.objects.filter(round__code="demo").first()
    response.answers.all().delete()
    response.delete()
    assert not ResponseRecord.objects.filter(response_id=response.pk).exists()
    assert_records_match_answers()
