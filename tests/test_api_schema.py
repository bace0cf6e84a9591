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
from rest_framework.authtoken.models import Token

from feedback.models import PetitionCategory
from feedback.petitions.services import PetitionInput, submit_petition
from scoring.models import Run
from tests import results_fixtures

published = results_fixtures.published

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Bounded so that the three runs take a couple of minutes together (CI budget): a few
# generated requests per operation and phase, on top of the coverage phase's boundary cases.
MAX_EXAMPLES = 10


@pytest.fixture
def seeded(published: Run, settings: Any) -> dict[str, str]:
    """Published results, a petition to read and the three callers' tokens (throttles lifted)."""
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


def run_schemathesis(live_server_url: str, token: str) -> subprocess.CompletedProcess[str]:
    """``schemathesis run --checks all`` against the live server, as this caller."""
    command = [
        str(SCHEMATHESIS),
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
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=os.environ | {"NO_COLOR": "1"}
    )


@pytest.mark.postgres
@pytest.mark.parametrize("caller", ["anonymous", "user", "superuser"])
def test_the_api_meets_every_schemathesis_check(
    live_server: Any, seeded: dict[str, str], caller: str
) -> None:
    result = run_schemathesis(live_server.url, seeded[caller])
    failures = result.stdout.partition("FAILURES")[2] or result.stdout + result.stderr
    assert result.returncode == 0, failures
