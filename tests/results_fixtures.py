"""Fixtures of the results API tests: a round with published scores, clients of each tier.

Import the fixtures a test module uses from here (``from tests.results_fixtures import …``).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from rest_framework.authtoken.models import Token

from demo.responses import generate_demo_responses
from scoring.models import Run, Score
from scoring.services import recompute_round

ROUND = "sipas-2022"
RESPONSES = 63 * 10  # ten respondents per province
MIN_N = 8  # below it a value is suppressed: every unit has SIPAS, few have P06 or S01


@pytest.fixture
def published(sipas: Any, settings: Any) -> Run:
    """``sipas-2022`` with 630 demo responses, computed and published."""
    settings.MIN_PUBLISH_N = MIN_N
    generate_demo_responses(round_code=ROUND, responses=RESPONSES, seed=7)
    return recompute_round(round_code=ROUND)


def token_user(username: str, *, group: str | None = None, permission: str = "") -> Any:
    """A user, in a group and with a permission (``app_label.codename``) if given."""
    user = get_user_model().objects.create_user(username, password="a-long-password-1")
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    if permission:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def token_client(username: str, *, group: str | None = None, permission: str = "") -> Client:
    """A client authenticating with a DRF token, like an API consumer's program."""
    token = Token.objects.create(user=token_user(username, group=group, permission=permission))
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


@pytest.fixture
def consumer_client(db: None, settings: Any) -> Client:
    """A token of the API consumer group (a ministry's program, a portal)."""
    return token_client("ministry-portal", group=settings.RESULTS_API_CONSUMER_GROUP)


@pytest.fixture
def staff_client(db: None) -> Client:
    """A token of a staff analyst allowed to view raw responses."""
    return token_client("analyst", permission="feedback.view_response")


# issue 13: figures of a score hidden, like its value, when it is suppressed
UNCERTAINTY = ("deff", "n_eff", "rank_low", "rank_high", "change", "change_p", "change_significant")


def reveal_nothing_of(run: Run, indicator: str) -> list[Score]:
    """Give the run's suppressed unit scores of ``indicator`` every issue-13 figure (as a
    later round and a design-based engine would), so that hiding them is really tested."""
    scores = Score.objects.filter(run=run, indicator__code=indicator, scope="unit", suppressed=True)
    scores.update(
        deff=1.7, n_eff=7.3, rank_low=3, rank_high=9, change=4.2, change_p=0.01,
        change_significant=True,
    )  # fmt: skip
    return list(scores.select_related("unit"))
