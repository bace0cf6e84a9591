"""The running API honours its OpenAPI schema under every schemathesis check, for an
anonymous client, a plain user and a superuser (``schemathesis run --checks all``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from demo.responses import generate_demo_responses
from feedback.models import PetitionCategory
from feedback.petitions.services import PetitionInput, submit_petition
from scoring.services import recompute_round

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).resolve().parent.parent / "schemathesis.toml"
# Bounded so that the three runs take a couple of minutes together (CI budget): a few
# generated requests per operation and phase, on top of the coverage phase's boundary cases.
MAX_EXAMPLES = 5
ROUND = "sipas-2022"


@pytest.fixture
def seeded(sipas: Any, settings: Any) -> dict[str, str]:
    """A round with published scores, a petition to act on, and the three callers' tokens;
    throttles lifted (their 429 is documented, but would hide everything behind it)."""
    settings.MIN_PUBLISH_N = 2
    generate_demo_responses(round_code=ROUND, responses=63 * 3, seed=7)
    recompute_round(round_code=ROUND)
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "DEFAULT_THROTTLE_RATES": {
            key: "1000000/minute" for key in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        }
    }
    for rate in ("RESPONSE_SUBMIT_RATE", "PETITION_SUBMIT_RATE", "OPEN311_SUBMIT_RATE"):
        setattr(settings, rate, "1000000/minute")
    category, _ = PetitionCategory.objects.get_or_create(
        code="road", defaults={"name_vi": "Đường sá", "deadline_days": 10}
    )
    submit_petition(
        data=PetitionInput(category=category.code, unit="01", description="Ổ gà trên đường."),
        channel="api",
    )
    users = get_user_model().objects
    plain = users.create_user("citizen-app", password="a-long-password-1")
    admin = users.create_superuser("root", "root@example.gov.vn", "a-long-password-2")
    return {
        "anonymous": "",
        "user": Token.objects.create(user=plain).key,
        "superuser": Token.objects.create(user=admin).key,
    }


def start_schemathesis(live_server_url: str, token: str) -> subprocess.Popen[str]:
    """``schemathesis run --checks all`` against the live server, as this caller."""
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{live_server_url}/api/schema/?format=json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers",
        "1",
        "--no-color",
        "--request-timeout",
        "30",
    ]
    if token:
        command += ["--header", f"Authorization: Token {token}"]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"NO_COLOR": "1"},
    )


@pytest.mark.postgres
def test_the_api_meets_every_schemathesis_check(live_server: Any, seeded: dict[str, str]) -> None:
    """Anonymous, a plain user and a superuser, at once: no 5xx, nothing outside the schema.

    The report of each failing caller (operation, check, response and a curl line to
    reproduce it) is the assertion's message.
    """
    runs = {caller: start_schemathesis(live_server.url, token) for caller, token in seeded.items()}
    failures = {}
    for caller, run in runs.items():
        output, _ = run.communicate(timeout=600)
        if run.returncode != 0:
            failures[caller] = output.partition("FAILURES")[2] or output
    assert failures == {}, "\n\n".join(f"=== {c} ===\n{f}" for c, f in failures.items())


# --- What the violations found before were, each answered and documented ---------------------


@pytest.fixture
def schema_document(client: Client, db: None) -> dict[str, Any]:
    return client.get("/api/schema/", {"format": "json"}).json()


@pytest.mark.parametrize("query", ["state=", "state=bogus"])
def test_a_round_state_outside_the_enum_is_a_400_naming_it(
    client: Client, db: None, query: str
) -> None:
    response = client.get(f"/api/v1/rounds/?{query}")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["state"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=x", "page"),
        ("page_size=0", "page_size"),
        ("page_size=501", "page_size"),
    ],
)
def test_a_page_or_page_size_out_of_range_is_a_400_naming_it(
    client: Client, units: None, query: str, field: str
) -> None:
    response = client.get(f"/api/v1/units/?{query}")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]


def test_a_page_past_the_last_is_a_404_naming_it(client: Client, units: None) -> None:
    assert client.get("/api/v1/units/?page=2&page_size=50").status_code == 200
    response = client.get("/api/v1/units/?page=99&page_size=50")
    assert response.status_code == 404
    assert list(response.json()["fields"]) == ["page"]


@pytest.mark.parametrize("query", ["status=bogus", "status=", "overdue=maybe", "overdue=null"])
def test_a_petition_filter_outside_its_enum_is_a_400(
    client: Client, admin_user: Any, query: str
) -> None:
    client.force_login(admin_user)
    response = client.get(f"/api/v1/petitions/?{query}")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [query.split("=")[0]]


def test_recomputing_an_unknown_round_is_a_404(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.post("/api/v1/rounds/no-such-round/recompute/")
    assert response.status_code == 404
    assert list(response.json()["fields"]) == ["round"]


def test_the_schema_documents_paging_traps_and_long_urls(schema_document: dict[str, Any]) -> None:
    paginated = 0
    for operations in schema_document["paths"].values():
        for operation in operations.values():
            assert "414" in operation["responses"]
            query = {
                p["name"]: p["schema"]
                for p in operation.get("parameters", [])
                if p["in"] == "query"
            }
            if "page" in query:
                paginated += 1
                assert {"400", "404"} <= set(operation["responses"])
                assert query["page"]["minimum"] == 1
                assert (query["page_size"]["minimum"], query["page_size"]["maximum"]) == (1, 500)
    assert paginated >= 4
    petition = schema_document["components"]["schemas"]["PetitionSubmitInputRequest"]
    assert petition["properties"]["website"]["maxLength"] == 0
    valid_on = next(
        p
        for p in schema_document["paths"]["/api/v1/units/"]["get"]["parameters"]
        if p["name"] == "valid_on"
    )
    assert valid_on["schema"] == {"type": "string", "format": "date"}


@pytest.mark.parametrize(
    ("query", "status"),
    [("valid_on=", 400), ("kind=", 400), ("region=", 200), ("round=", 200)],
)
def test_a_typed_filter_given_blank_is_a_400_a_free_text_one_is_ignored(
    client: Client, units: None, query: str, status: int
) -> None:
    response = client.get(f"/api/v1/units/?{query}")
    assert response.status_code == status
    if status == 400:
        assert list(response.json()["fields"]) == [query.rstrip("=")]
