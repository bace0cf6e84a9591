"""Links to the service: built from PUBLIC_BASE_URL when set, else from the request (host and
port, forwarded host and scheme only behind NUM_PROXIES proxies of ours), in the pages and
e-mails that carry them."""

from __future__ import annotations

import uuid

import pytest
from django.core import mail
from django.core.exceptions import DisallowedHost
from django.test import Client, RequestFactory

from config.links import absolute_url, fallback_base_url, public_base_url
from feedback.models import Petition
from tests.support.petitions import petition_desk


@pytest.fixture
def proxies(settings):
    """Set NUM_PROXIES as the environment variable does (in REST_FRAMEWORK, read live)."""

    def set_proxies(count: int | None) -> None:
        settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"NUM_PROXIES": count}

    return set_proxies


@pytest.fixture(autouse=True)
def _no_public_base_url(settings) -> None:
    settings.PUBLIC_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["127.0.0.1", "khaosat.example.vn"]


def request_to(host: str, **headers: str):
    return RequestFactory().get("/", HTTP_HOST=host, **headers)


class TestPublicBaseUrl:
    def test_without_the_setting_links_use_the_requests_host_and_port(self, proxies) -> None:
        proxies(None)
        assert public_base_url(request_to("127.0.0.1:9000")) == "http://127.0.0.1:9000"
        assert (
            absolute_url(request_to("127.0.0.1:9000"), "/d/abc/") == "http://127.0.0.1:9000/d/abc/"
        )

    @pytest.mark.parametrize(
        ("count", "forwarded_host", "forwarded_proto", "base_url"),
        [
            (1, "khaosat.example.vn", "https", "https://khaosat.example.vn"),
            (
                1,
                "evil.example.com, khaosat.example.vn",
                "http, https",
                "https://khaosat.example.vn",
            ),
            (None, "khaosat.example.vn", "https", "http://127.0.0.1:9000"),
            (0, "khaosat.example.vn", "https", "http://127.0.0.1:9000"),
        ],
        ids=[
            "behind-one-proxy-the-forwarded-host-and-scheme-count",
            "behind-one-proxy-only-the-hop-it-appended-counts",
            "without-proxies-unset-they-are-ignored",
            "without-proxies-0-they-are-ignored",
        ],
    )
    def test_forwarded_headers_count_only_as_far_as_our_proxies_append_them(
        self, proxies, count, forwarded_host, forwarded_proto, base_url
    ) -> None:
        proxies(count)
        request = request_to(
            "127.0.0.1:9000",
            HTTP_X_FORWARDED_HOST=forwarded_host,
            HTTP_X_FORWARDED_PROTO=forwarded_proto,
        )
        assert public_base_url(request) == base_url

    def test_the_setting_wins_over_the_request(self, settings, proxies) -> None:
        proxies(1)
        settings.PUBLIC_BASE_URL = "https://dichvu.example.vn/"
        request = request_to("127.0.0.1:9000", HTTP_X_FORWARDED_HOST="khaosat.example.vn")
        assert public_base_url(request) == "https://dichvu.example.vn"
        assert absolute_url(request, "/i/t/") == "https://dichvu.example.vn/i/t/"

    def test_a_host_outside_allowed_hosts_is_refused_sent_or_forwarded(self, proxies) -> None:
        proxies(1)
        with pytest.raises(DisallowedHost):
            public_base_url(request_to("evil.example.com"))
        with pytest.raises(DisallowedHost):
            public_base_url(request_to("127.0.0.1", HTTP_X_FORWARDED_HOST="evil.example.com"))

    def test_without_request_the_setting_else_where_make_run_serves(
        self, settings, monkeypatch
    ) -> None:
        monkeypatch.setenv("PORT", "9000")
        monkeypatch.delenv("HOST", raising=False)
        assert public_base_url(None) == fallback_base_url() == "http://127.0.0.1:9000"
        settings.PUBLIC_BASE_URL = "https://dichvu.example.vn"
        assert public_base_url(None) == "https://dichvu.example.vn"


@pytest.mark.django_db
class TestLinksShown:
    def test_the_resume_link_points_where_the_form_was_reached(self, sipas) -> None:
        client = Client(HTTP_HOST="127.0.0.1:9000")
        started = client.post("/rounds/demo/", {"unit": "19"})
        path = started["Location"]
        page = client.get(path).content.decode()
        section = page.split('name="section" value="', 1)[1].split('"', 1)[0]
        saved = client.post(path, {"section": section, "action": "save"})
        assert saved.status_code == 302
        html = client.get(saved["Location"]).content.decode()
        assert f'href="http://127.0.0.1:9000{path}"' in html

    def test_a_petition_e_mail_links_to_the_host_the_citizen_used(
        self, db, django_capture_on_commit_callbacks
    ) -> None:
        petition_desk(("SO-A", "Sở A"))
        data = {
            "category": "road",
            "unit": "T01",
            "agency": "SO-A",
            "description": "Đèn đường hỏng ở ngõ 12.",
            "contact_email": "a@example.vn",
            "contact_consent": "yes",
            "client_id": str(uuid.uuid4()),
            "website": "",
        }
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            answer = Client(HTTP_HOST="127.0.0.1:9000").post("/petitions/new/", data)
        assert answer.status_code == 302
        code = Petition.objects.get().tracking_code
        assert [m.to for m in mail.outbox] == [["a@example.vn"]]
        assert f"http://127.0.0.1:9000/petitions/track/{code}/" in mail.outbox[0].body
