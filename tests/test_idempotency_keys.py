"""Idempotency keys (``client_id``): a UUID written as text, and a replay answers with the
first result only to the client that stored it; anyone else gets a 409 showing nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from feedback.drafts import services as drafts
from feedback.models import Petition, Response, ResponseDraft
from tests.support.petitions import api_token, petition_desk

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
RESPONSES = "/api/v1/responses/"
PETITIONS = "/api/v1/petitions/"


def sipas_answers(**changes: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {"A01": "nu", "A02": "35_49"}
    answers |= {f"Q8_{n}": n in (2, 4) for n in range(1, 8)}
    answers |= {f"S{n:02d}": 4 for n in range(1, 20)}
    answers |= {f"P{n:02d}": 5 for n in range(1, 15) if n != 7}
    return answers | {"Q2": ["internet"], "Q4": "khong_co"} | changes


def send(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def response_body(client_id: Any, **answers: Any) -> dict[str, Any]:
    answered = sipas_answers(**answers)
    return {"round": "demo", "unit": "19", "client_id": client_id, "answers": answered}


def account_client(username: str) -> Client:
    user = get_user_model().objects.create_user(username, password="x")
    return Client(HTTP_AUTHORIZATION=f"Token {api_token(user)}")


def assert_conflict_shows_nothing(reply: Any, *secrets: str) -> None:
    assert reply.status_code == 409, reply.content
    assert reply.json()["code"] == "client_id_conflict" and "client_id" in reply.json()["fields"]
    for secret in secrets:
        assert secret not in reply.content.decode()


class TestClientIdIsAUuid:
    @pytest.mark.parametrize("client_id", [False, True, 0, 1, 1.5, [], {}, "0", "not-a-uuid"])
    def test_a_response_whose_client_id_is_not_a_uuid_string_is_a_400_naming_it(
        self, client: Client, sipas, client_id: Any
    ) -> None:
        reply = send(client, RESPONSES, response_body(client_id))
        assert reply.status_code == 400, reply.content
        assert "client_id" in reply.json()["fields"]
        assert not Response.objects.exists()

    @pytest.mark.parametrize("client_id", [False, 0])
    def test_a_petition_whose_client_id_is_not_a_uuid_string_is_a_400_naming_it(
        self, client: Client, petition_frame, client_id: Any
    ) -> None:
        reply = send(client, PETITIONS, PETITION | {"client_id": client_id})
        assert reply.status_code == 400 and "client_id" in reply.json()["fields"]
        assert not Petition.objects.exists()


class TestResponseReplays:
    def test_the_same_anonymous_body_and_key_replays_the_first_receipt(
        self, client: Client, sipas
    ) -> None:
        body = response_body(str(uuid.uuid4()))
        first = send(client, RESPONSES, body)
        again = send(Client(), RESPONSES, body)
        assert first.status_code == again.status_code == 201
        assert again.json()["receipt"] == first.json()["receipt"]
        assert again["Idempotent-Replayed"] == "true"
        assert Response.objects.count() == 1

    def test_another_body_with_the_same_key_is_a_409_without_the_receipt(
        self, client: Client, sipas
    ) -> None:
        key = str(uuid.uuid4())
        receipt = send(client, RESPONSES, response_body(key)).json()["receipt"]
        reply = send(client, RESPONSES, response_body(key, S01=1))
        assert_conflict_shows_nothing(reply, receipt)
        assert Response.objects.count() == 1

    def test_an_accounts_key_replays_only_to_that_account(self, sipas) -> None:
        owner, other = account_client("app-one"), account_client("app-two")
        body = response_body(str(uuid.uuid4()))
        first = send(owner, RESPONSES, body)
        assert first.status_code == 201, first.content
        receipt = first.json()["receipt"]

        assert_conflict_shows_nothing(send(other, RESPONSES, body), receipt)
        assert_conflict_shows_nothing(send(Client(), RESPONSES, body), receipt)
        replay = send(owner, RESPONSES, body)
        assert replay.status_code == 201 and replay.json()["receipt"] == receipt
        assert Response.objects.count() == 1

    def test_an_anonymous_key_is_not_replayed_to_an_account(self, client: Client, sipas) -> None:
        body = response_body(str(uuid.uuid4()))
        receipt = send(client, RESPONSES, body).json()["receipt"]
        assert_conflict_shows_nothing(send(account_client("app"), RESPONSES, body), receipt)


class TestWebFormReplays:
    def test_a_drafts_receipt_is_shown_only_through_that_drafts_link(self, sipas) -> None:
        citizen, prober = Client(), Client()
        path = citizen.post("/rounds/demo/", {"unit": "19"})["Location"]
        draft = ResponseDraft.objects.get()
        receipt = drafts.submit_draft(draft=draft, answers=sipas_answers()).response.receipt

        theirs = prober.post("/rounds/demo/", {"unit": "19"})["Location"]
        probe = prober.post(theirs, {"section": "A", "client_id": str(draft.client_id)})
        assert probe.status_code in (200, 302)
        assert receipt not in probe.get("Location", "") + probe.content.decode()

        repeat = citizen.post(path, {"section": "B7", "action": "next"})
        assert repeat.status_code == 302 and repeat["Location"] == f"/thanks/{receipt}/"
        assert Response.objects.count() == 1


@pytest.fixture
def petition_frame(db: None) -> None:
    petition_desk()


PETITION = {"category": "road", "unit": "T01", "description": "Đèn đường hỏng ở ngõ 12."}


class TestPetitionReplays:
    def test_the_same_anonymous_petition_replays_its_tracking_code(
        self, client: Client, petition_frame
    ) -> None:
        body = PETITION | {"client_id": str(uuid.uuid4())}
        first, again = send(client, PETITIONS, body), send(Client(), PETITIONS, body)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["tracking_code"] == first.json()["tracking_code"]

    def test_an_accounts_petition_key_is_a_409_for_anyone_else(self, petition_frame) -> None:
        owner = account_client("portal")
        body = PETITION | {"client_id": str(uuid.uuid4())}
        code = send(owner, PETITIONS, body).json()["tracking_code"]
        assert_conflict_shows_nothing(send(Client(), PETITIONS, body), code)
        assert_conflict_shows_nothing(send(account_client("other"), PETITIONS, body), code)
        assert send(owner, PETITIONS, body).json()["tracking_code"] == code
        assert Petition.objects.count() == 1

    def test_another_petition_with_the_same_key_is_a_409_without_the_tracking_code(
        self, client: Client, petition_frame
    ) -> None:
        key = str(uuid.uuid4())
        code = send(client, PETITIONS, PETITION | {"client_id": key}).json()["tracking_code"]
        other = PETITION | {"client_id": key, "description": "Another problem."}
        assert_conflict_shows_nothing(send(client, PETITIONS, other), code)
