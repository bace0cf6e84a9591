"""Clients of the response review: field staff entering responses, reviewers excluding them."""

from __future__ import annotations

import itertools
from typing import Any

from django.test import Client

from tests.results_fixtures import token_client

USERS = itertools.count()


def field_client() -> Client:
    """Staff entering responses for citizens (not throttled)."""
    return token_client(f"field-{next(USERS)}", permission="feedback.submit_on_behalf")


def reviewer_client(username: str = "reviewer") -> Client:
    return token_client(username, permission="feedback.review_response")


def review(client: Client, receipt: str, **body: Any) -> Any:
    """POST a review (state, reason, note) of the response ``receipt``."""
    return client.post(
        f"/api/v1/responses/{receipt}/review/", body, content_type="application/json"
    )
