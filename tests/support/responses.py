"""Citizens' responses for tests: SIPAS answer sets, bodies for the response API, stored ones."""

from __future__ import annotations

import random
import uuid
from typing import Any

from django.test import Client

from feedback.models import Response
from feedback.services import submit_response

RESPONSES_URL = "/api/v1/responses/"
RECORD_UNITS = ("19", "01", "79")  # of post_responses
DIAGNOSIS_UNITS = ["19", "20", "22"]  # of the fixture diagnosis_rounds


def valid_answers(**changes: Any) -> dict[str, Any]:
    """A complete SIPAS answer set of a respondent who did an administrative procedure."""
    answers: dict[str, Any] = {"A01": "nu", "A02": "35_49"}
    answers |= {f"Q8_{n}": n in (2, 4) for n in range(1, 8)}
    answers |= {f"S{n:02d}": 4 for n in range(1, 20)}
    answers |= {f"P{n:02d}": 5 for n in range(1, 15) if n != 7}
    answers |= {"Q2": ["internet", "loa_xa"], "Q4": "khong_co", "Q11": "  Tốt  "}
    answers.update(changes)
    return answers


def post(client: Client, body: Any, **extra: Any) -> Any:
    """POST ``body`` as JSON to the response API."""
    return client.post(RESPONSES_URL, body, content_type="application/json", **extra)


def payload(**changes: Any) -> dict[str, Any]:
    """A valid body for the response API: the round ``demo``, Thái Nguyên (19)."""
    body = {
        "round": "demo",
        "unit": "19",
        "client_id": str(uuid.uuid4()),
        "answers": valid_answers(),
    }
    body.update(changes)
    return body


def answer(
    unit: str,
    *,
    round_code: str = "demo",
    channel: str = Response.Channel.API,
    **changes: Any,
) -> Response:
    """Store a SIPAS response of ``unit`` through ``submit_response``, with ``changes``."""
    return submit_response(
        round_code=round_code,
        unit_code=unit,
        answers=valid_answers(**changes),
        channel=channel,
        client_id=uuid.uuid4(),
    )


def varied_answers(rng: random.Random) -> dict[str, Any]:
    """A SIPAS answer set with varied scale and yes/no answers (some questions skipped)."""
    answers = valid_answers()
    for n in range(1, 20):
        answers[f"S{n:02d}"] = rng.randint(1, 5)
    for n in range(1, 15):
        if n != 7:
            answers[f"P{n:02d}"] = rng.randint(1, 5)
    for n in range(1, 8):
        answers[f"Q8_{n}"] = rng.random() < 0.5
    for code in rng.sample(sorted(answers), 3):
        if code.startswith(("S", "P")):
            del answers[code]  # optional questions left out
    return answers


def post_responses(client: Client, count: int, seed: int = 1) -> None:
    """Post ``count`` varied responses of the round ``demo`` over three units, with PSUs."""
    rng = random.Random(seed)
    for i in range(count):
        body = {
            "round": "demo",
            "unit": RECORD_UNITS[i % len(RECORD_UNITS)],
            "client_id": str(uuid.uuid4()),
            "answers": varied_answers(rng),
            "psu": f"v{rng.randint(1, 3)}",
        }
        response = post(client, body)
        assert response.status_code == 201, response.content
