"""Every page carries a Content-Security-Policy that allows nothing from another host and no
inline script or style but the page's own (marked with the request's nonce); in a real
browser the pages, the admin and the API docs work under it without a violation and without a
request to another host."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from surveys.models import QuestionnaireVersion
from tests.support.dashboard import published  # noqa: F401 (a fixture)

# Pages of each kind: the citizens' pages, the dashboard with its charts, the API and its
# docs, the admin (with the questionnaire editor's pages), errors.
ANONYMOUS_PAGES = [
    "/",
    "/rounds/demo/",
    "/petitions/new/",
    "/petitions/track/",
    "/results/",
    "/results/demo/",
    "/results/r2025/units/19-2025/",
    "/api/v1/",
    "/api/v1/scores/?round=demo",
    "/api/schema/",
    "/api/docs/",
    "/api/redoc/",
    "/api/redoc/redoc.standalone.js",
    "/admin/login/",
    "/health/",
    "/no-such-page/",
]
STAFF_PAGES = [
    "/admin/",
    "/admin/surveys/questionnaireversion/",
    "/admin/surveys/round/",
    "/admin/feedback/petition/",
    "/admin/auth/user/add/",
    "/api/docs/",
    "/api/redoc/",
    "/api/v1/me/",
]


def policy(response: Any) -> dict[str, list[str]]:
    """The Content-Security-Policy header, by directive."""
    header = response.headers["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


def assert_strict(response: Any) -> None:
    """Only this server's resources, and inline code only with this response's nonce."""
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src"):
        values = csp[directive]
        assert "'unsafe-inline'" not in values and "'unsafe-eval'" not in values, directive
        nonces = [v for v in values if v.startswith("'nonce-")]
        assert set(values) - set(nonces) == {"'self'"}, directive
    for directive, values in csp.items():
        assert not [v for v in values if "://" in v or v in ("*", "http:", "https:")], directive
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    if response["Content-Type"].startswith("text/html"):
        page = response.content.decode()
        inline = re.findall(r"<(script|style)\b([^>]*)>", page)
        nonce = next((v[7:-1] for v in csp["script-src"] if v.startswith("'nonce-")), "no nonce")
        for tag, attributes in inline:
            if tag == "script" and "src=" in attributes:
                continue
            assert f'nonce="{nonce}"' in attributes, (response.request["PATH_INFO"], tag)
        assert not re.search(r"\sstyle=\"", page), "a style attribute needs 'unsafe-inline'"


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize("path", ANONYMOUS_PAGES)
def test_every_anonymous_page_carries_a_strict_content_security_policy(
    client: Client, path: str
) -> None:
    response = client.get(path, follow=True)
    assert response.status_code in (200, 404), path
    assert_strict(response)


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize("path", STAFF_PAGES)
def test_every_staff_page_carries_a_strict_content_security_policy(
    client: Client, admin_user: Any, path: str
) -> None:
    client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 200, path
    assert_strict(response)


def test_each_response_gets_its_own_nonce(client: Client, db: None) -> None:
    first, second = (policy(client.get("/api/docs/"))["script-src"] for _ in range(2))
    assert first != second


def test_redoc_is_served_without_its_logo_from_another_host(client: Client) -> None:
    response = client.get("/api/redoc/redoc.standalone.js")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    assert b"Redoc" in response.content and b"cdn.redoc.ly" not in response.content


# --- In a real browser ------------------------------------------------------------------------

RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture
def watched_page(browser: Any, live_server: Any) -> Any:
    """A browser page whose requests, CSP violations and console errors are recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.requests = []
    page.console_errors = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("pageerror", lambda error: page.console_errors.append(f"uncaught {error}"))
    page.on(
        "console",
        lambda message: message.type == "error" and page.console_errors.append(message.text),
    )
    yield page
    context.close()


def visit(page: Any, url: str, ready: str) -> None:
    """Open ``url``, wait for the element that shows the page rendered, check what happened."""
    page.requests.clear()
    page.console_errors.clear()
    page.goto(url)
    page.locator(ready).first.wait_for(state="visible", timeout=30_000)
    page.wait_for_load_state("networkidle")
    host = urlsplit(url).netloc
    outside = [
        r
        for r in page.requests
        if urlsplit(r).scheme not in ("data", "blob") and urlsplit(r).netloc != host
    ]
    assert outside == [], url
    assert page.evaluate("window.cspViolations") == [], url
    assert [e for e in page.console_errors if "Content Security Policy" in e] == [], url


@pytest.mark.browser
@pytest.mark.usefixtures("published")
def test_pages_docs_and_admin_work_in_a_browser_under_the_policy(
    watched_page: Any, live_server: Any, django_user_model: Any
) -> None:
    page = watched_page
    base = live_server.url
    visit(page, f"{base}/api/docs/", "#swagger-ui .opblock")
    visit(page, f"{base}/api/redoc/", "#redoc-container h1")
    assert "SIPAS" in page.locator("#redoc-container h1").first.inner_text()
    visit(page, f"{base}/rounds/demo/", "#id_unit")
    page.select_option("#id_unit", "19")
    page.locator("form.questionnaire button.primary").click()
    page.wait_for_url(re.compile(r"/d/"))
    visit(page, page.url, "#q-A01")
    visit(page, f"{base}/petitions/new/", "#petition-form")
    visit(page, f"{base}/results/demo/", "svg.chart")
    visit(page, f"{base}/results/r2025/units/19-2025/", "svg.chart")

    django_user_model.objects.create_superuser("admin", "admin@example.org", "a-long-password")
    visit(page, f"{base}/admin/login/", "#id_username")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "a-long-password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    visit(page, f"{base}/admin/surveys/questionnaireversion/", "#result_list")
    version = QuestionnaireVersion.objects.filter(rounds__code="demo").get()
    visit(page, f"{base}/admin/surveys/questionnaireversion/{version.pk}/change/", ".version-state")
    section = version.sections.order_by("position").first()
    visit(page, f"{base}/admin/surveys/section/{section.pk}/change/", ".reorderable")
    visit(page, f"{base}/preview/versions/{version.pk}/?section=B3", ".preview-banner")
    visit(page, f"{base}/api/docs/", "#swagger-ui .opblock")
