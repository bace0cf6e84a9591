"""Property: whatever reaches a field of ``POST /api/v1/webhooks/`` (or ``PATCH`` of one),
any Unicode text with NUL and lone surrogates, odd URLs, huge numbers, the answer is a 2xx or
a 400 naming the field, never a server error; and a URL refused is never stored.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st

from tests.support.hostile_input import (
    JSON_VALUES,
    PROPERTY,
    STRINGS,
    assert_handled,
    fresh_limits,
    json_body,
)
from webhooks.models import Subscription

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/"
# A public address written as such: nothing is resolved, nothing is contacted at creation.
PUBLIC = "http://93.184.215.14/hook"
VALID = {"url": PUBLIC, "events": ["run.published"], "include_answers": False}

ODD_URLS = st.sampled_from(
    [
        "http://127.0.0.1/",
        "http://[::1]:80/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://017700000001/",
        "http://169.254.169.254/latest/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fe80::1%25eth0]/",
        "http://93.184.215.14:0/",
        "http://93.184.215.14:65536/",
        "http://93.184.215.14:-1/",
        "https://93.184.215.14:99999999999999999999/",
        "http://[93.184.215.14/",
        "http://93.184.215.14\x00.example/",
        "http://93.184.215.14/\ud800",
        "http://ex\u00e4mple.com/",
        "http://a..b/",
        "http://" + "a" * 64 + ".com/",
        "http://" + "a" * 2100 + "/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "gopher://93.184.215.14/",
        "http:93.184.215.14",
        "//93.184.215.14/",
        "http://93.184.215.14/#frag",
        "http://u@93.184.215.14/",
        " http://93.184.215.14/",
        "",
    ]
)
URLS = ODD_URLS | STRINGS | STRINGS.map(lambda text: "http://" + text) | JSON_VALUES


@pytest.fixture
def staff_client(django_user_model: Any, settings: Any) -> Client:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    user = django_user_model.objects.create_user("analyst", password="x" * 20, is_staff=True)
    client = Client()
    client.force_login(user)
    return client


FIELDS = st.sampled_from(["url", "events", "include_answers", "is_active", "description"])


@PROPERTY
@given(field=FIELDS, url=URLS, value=JSON_VALUES)
@example(field="url", url="http://127.0.0.1/", value=None)
@example(field="events", url=PUBLIC, value=["run.published", "\x00"])
@example(field="events", url=PUBLIC, value=[10**400])
def test_creating_a_webhook_never_fails_with_a_server_error(
    staff_client: Client, field: str, url: Any, value: Any
) -> None:
    fresh_limits()
    body = dict(VALID)
    body[field] = url if field == "url" else value
    before = Subscription.objects.count()
    response = staff_client.post(URL, json_body(body), content_type="application/json")
    assert_handled(response, field)
    if response.status_code == 201:
        stored = Subscription.objects.get(pk=response.json()["id"])
        assert stored.url.startswith(("http://", "https://"))
        assert "127.0.0.1" not in stored.url and "[::" not in stored.url
    else:
        assert response.status_code == 400 and Subscription.objects.count() == before


@PROPERTY
@given(url=URLS, events=JSON_VALUES | st.lists(STRINGS, max_size=3))
def test_changing_a_webhook_never_fails_with_a_server_error(
    staff_client: Client, url: Any, events: Any
) -> None:
    fresh_limits()
    created = staff_client.post(URL, json_body(VALID), content_type="application/json")
    path = f"{URL}{created.json()['id']}/"
    for change in ({"url": url}, {"events": events}):
        response = staff_client.patch(path, json_body(change), content_type="application/json")
        assert_handled(response, *change)
    assert Subscription.objects.get(pk=created.json()["id"]).url in (PUBLIC, url)
