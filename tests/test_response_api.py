"""POST /api/v1/responses/: validation, idempotency, rounds and invitations."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from feedback.models import Answer, Invitation, Response
from surveys.models import Round
from tests.support.responses import payload, post, valid_answers

pytestmark = pytest.mark.django_db
URL = "/api/v1/responses/"


class TestAccepted:
    def test_a_valid_response_is_stored_with_its_answers(self, client: Client, sipas) -> None:
        body = payload()
        response = post(client, body)
        assert response.status_code == 201, response.json()
        receipt = response.json()["receipt"]
        stored = Response.objects.get(receipt=receipt)
        assert (stored.round.code, stored.unit.code, stored.channel) == ("demo", "19", "api")
        assert stored.version == sipas and stored.weight == 1.0
        assert str(stored.client_id) == body["client_id"]
        answers = {a.question.code: a for a in stored.answers.select_related("question")}
        assert answers["S01"].number == 4.0 and answers["S01"].value == 4
        assert answers["Q4"].code == "khong_co"
        assert answers["Q8_4"].value is True and answers["Q8_4"].number == 1.0
        assert answers["Q2"].value == ["loa_xa", "internet"]  # in the questionnaire's order
        assert answers["Q11"].value == "Tốt"
        assert "P07" not in answers  # not answered

    def test_answers_to_hidden_questions_are_discarded(self, client: Client, sipas) -> None:
        answers = valid_answers(Q8_4=False)  # no procedure: S01–S19 are hidden
        response = post(client, payload(answers=answers))
        assert response.status_code == 201, response.json()
        stored = Response.objects.get(receipt=response.json()["receipt"])
        codes = set(stored.answers.values_list("question__code", flat=True))
        assert not any(code.startswith("S") for code in codes)
        assert response.json()["answers_stored"] == len(codes)


class TestIdempotency:
    def test_the_same_client_id_returns_the_first_result_and_stores_nothing(
        self, client: Client, sipas
    ) -> None:
        body = payload()
        first = post(client, body)
        again = post(client, body)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert Response.objects.count() == 1

    def test_the_same_client_id_with_other_answers_is_a_conflict(
        self, client: Client, sipas
    ) -> None:
        body = payload()
        post(client, body)
        changed = {**body, "answers": valid_answers(S01=1)}
        response = post(client, changed)
        assert response.status_code == 409
        assert response.json()["code"] == "client_id_conflict"
        assert "client_id" in response.json()["fields"]
        assert Answer.objects.get(question__code="S01").value == 4


class TestRejected:
    def assert_rejected(self, response: Any, *fields: str) -> dict[str, Any]:
        assert 400 <= response.status_code < 500, response.content
        body = response.json()
        for field in fields:
            path = field.split(".")
            node = body["fields"]
            for part in path:
                assert part in node, (field, body)
                node = node[part]
        assert Response.objects.count() == 0
        return body

    def test_malformed_json(self, client: Client, sipas) -> None:
        response = client.post(URL, "{not json", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"

    def test_missing_and_wrong_envelope_fields(self, client: Client, sipas) -> None:
        body = self.assert_rejected(
            post(client, {"round": "demo", "client_id": "not-a-uuid", "answers": []}),
            "unit",
            "client_id",
            "answers",
        )
        assert body["code"] == "invalid"

    def test_wrong_types_and_out_of_range_values_name_each_question(
        self, client: Client, sipas
    ) -> None:
        answers = valid_answers(S01=7, S02="4", Q4="maybe", Q8_1="yes", Q2="internet", A01=1)
        body = self.assert_rejected(post(client, payload(answers=answers)), "answers.S01")
        errors = body["fields"]["answers"]
        assert set(errors) == {"S01", "S02", "Q4", "Q8_1", "Q2", "A01"}
        assert "S01" in errors["S01"][0] and "1" in errors["S01"][0] and "5" in errors["S01"][0]
        assert body["code"] == "invalid_answers"

    def test_unknown_question_codes_are_rejected(self, client: Client, sipas) -> None:
        self.assert_rejected(post(client, payload(answers=valid_answers(Z99=1))), "answers.Z99")

    def test_missing_required_answers_are_named(self, client: Client, sipas) -> None:
        answers = valid_answers()
        del answers["A01"], answers["Q8_3"]
        self.assert_rejected(post(client, payload(answers=answers)), "answers.A01", "answers.Q8_3")

    def test_unknown_round_and_uncovered_unit(self, client: Client, sipas) -> None:
        self.assert_rejected(post(client, payload(round="nope")), "round")
        self.assert_rejected(post(client, payload(unit="19-2025")), "unit")

    def test_a_closed_round_is_refused(self, client: Client, sipas) -> None:
        body = self.assert_rejected(post(client, payload(round="sipas-2022")), "round")
        assert body["code"] == "round_closed"

    def test_a_round_not_yet_open_is_refused(self, client: Client, sipas) -> None:
        Round.objects.filter(code="demo").update(opens_at=timezone.now() + dt.timedelta(days=1))
        self.assert_rejected(post(client, payload()), "round")


class TestInvitations:
    def test_a_round_without_open_link_needs_an_invitation(self, client: Client, sipas) -> None:
        Round.objects.filter(code="demo").update(allow_open_link=False)
        response = post(client, payload())
        assert response.status_code == 400
        assert "token" in response.json()["fields"]
        assert Response.objects.count() == 0

    def test_an_invitation_is_used_once(self, client: Client, sipas) -> None:
        Round.objects.filter(code="demo").update(allow_open_link=False)
        survey_round = Round.objects.get(code="demo")
        invitation = Invitation.objects.create(
            round=survey_round, unit=survey_round.units.get(code="19")
        )
        first = post(client, payload(token=invitation.token))
        assert first.status_code == 201, first.json()
        second = post(client, payload(token=invitation.token))
        assert second.status_code == 400
        assert "token" in second.json()["fields"]
        assert Response.objects.count() == 1
        invitation.refresh_from_db()
        assert invitation.is_used

    def test_an_invitation_for_another_unit_is_refused(self, client: Client, sipas) -> None:
        survey_round = Round.objects.get(code="demo")
        invitation = Invitation.objects.create(
            round=survey_round, unit=survey_round.units.get(code="01")
        )
        response = post(client, payload(token=invitation.token))
        assert response.status_code == 400
        invitation.refresh_from_db()
        assert not invitation.is_used


class TestQuestionnaireApi:
    def test_open_rounds_list_their_units(self, client: Client, sipas) -> None:
        rounds = client.get("/api/v1/rounds/").json()["results"]
        assert [r["code"] for r in rounds] == ["demo"]
        assert len(rounds[0]["units"]) == 63

    def test_the_questionnaire_of_a_round_as_json(self, client: Client, sipas) -> None:
        document = client.get("/api/v1/rounds/demo/questionnaire/").json()
        assert document["round"] == "demo"
        assert document["version"]["number"] == sipas.number
        questions = {q["code"]: q for s in document["sections"] for q in s["questions"]}
        assert len(questions) == 75
        s01 = questions["S01"]
        assert (s01["type"], s01["min"], s01["max"]) == ("scale", 1, 5)
        assert s01["show_if"] == {"question": "Q8_4", "in": [True]}
        assert s01["choices"][4] == {
            "code": "5",
            "label": {"vi": "Rất hài lòng", "en": "Very satisfied"},
        }
        assert set(s01["label"]) == {"vi", "en"}
        assert questions["Q8_1"]["type"] == "yesno" and questions["Q8_1"]["required"]

    def test_an_unknown_round_is_a_json_404(self, client: Client, sipas) -> None:
        response = client.get("/api/v1/rounds/nope/questionnaire/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
