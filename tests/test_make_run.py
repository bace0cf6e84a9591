"""`make run` as a newcomer meets it: served on another port the links shown work, the demo
round has published results, and the start output says what to open and nothing wrong."""

from __future__ import annotations

import http.cookiejar
import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from scoring.models import Run, Score
from tests.support.faults import free_port

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def make_run_recipe() -> list[str]:
    """The commands of the Makefile's ``run`` target, as written."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = lines.index(next(line for line in lines if line.startswith("run:")))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().lstrip("@"))
    return recipe


def manage_steps(recipe: list[str]) -> list[list[str]]:
    """The ``$(MANAGE) …`` steps of a recipe, as management command arguments."""
    return [shlex.split(line.removeprefix("$(MANAGE)")) for line in recipe if "$(MANAGE)" in line]


# --- Served on another port --------------------------------------------------------------


def uv_command() -> list[str] | None:
    if shutil.which("uv"):
        return ["uv"]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    return [sys.executable, "-m", "uv"] if probe.returncode == 0 else None


class Browser:
    """A real HTTP client with cookies that does not follow redirects (to see them)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), self._NoRedirect()
        )

    def open(self, url: str, data: dict[str, str] | None = None) -> tuple[int, str, str]:
        """(status, Location, body) of a GET, or of a form POST with the CSRF token."""
        body = None
        headers = {"Accept-Language": "en"}
        if data is not None:
            csrf = next((c.value for c in self.cookies if c.name == "csrftoken"), "")
            body = urllib.parse.urlencode(data | {"csrfmiddlewaretoken": csrf}).encode()
            headers["Referer"] = url
        request = urllib.request.Request(url, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as answer:
                return answer.status, answer.headers.get("Location", ""), answer.read().decode()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers.get("Location", ""), answer.read().decode()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The project set up and served the way `make run` does (``bin/serve``), on a free port
    other than 8000, with SQLite in a temporary directory and no PUBLIC_BASE_URL."""
    uv = uv_command()
    if uv is None:
        pytest.skip("uv is not installed: `make run` cannot run here")
    port = free_port(range(19000, 19100))
    assert port != 8000
    var = tmp_path_factory.mktemp("make-run")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "PUBLIC_BASE_URL", "DEBUG"}
    } | {
        "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}",
        "HOST": HOST,
        "PORT": str(port),
        "SCORING_AUTO_MINUTES": "0",
    }
    manage = [*uv, "run", "--frozen", "python", "manage.py"]
    for step in (["migrate", "--noinput"], ["load_sipas"]):
        subprocess.run([*manage, *step], cwd=ROOT, env=env, check=True, capture_output=True)
    log = (var / "serve.log").open("w")
    server = subprocess.Popen(
        ["bash", "bin/serve", HOST, str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: runserver and its reloader child
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/health/", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None:
                    break
                time.sleep(0.3)
        else:
            pytest.fail("bin/serve did not answer within 40 s:\n" + (var / "serve.log").read_text())
        if server.poll() is not None:
            pytest.fail("bin/serve stopped:\n" + (var / "serve.log").read_text())
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_the_resume_link_shown_after_saving_opens_when_served_on_another_port(served) -> None:
    citizen = Browser()
    status, _where, _page = citizen.open(f"{served}/rounds/demo/")
    assert status == 200
    status, draft, _page = citizen.open(f"{served}/rounds/demo/", {"unit": "19"})
    assert status == 302, _page
    draft = urllib.parse.urljoin(served, draft)
    status, _where, page = citizen.open(draft)
    section = re.search(r'name="section" value="([^"]+)"', page).group(1)
    status, saved, _page = citizen.open(draft, {"section": section, "action": "save"})
    assert status == 302
    status, _where, page = citizen.open(urllib.parse.urljoin(served, saved))
    assert status == 200
    resume_link = re.search(r'id="resume-link"[^>]*>([^<]+)<', page).group(1)
    assert resume_link.startswith(f"{served}/d/"), resume_link

    status, _where, page = Browser().open(resume_link)  # another browser, with only the link
    assert status == 200
    assert f'name="section" value="{section}"' in page


# --- The demo round scored, the start output ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_after_the_set_up_steps_the_demo_round_has_published_ranked_results(sipas) -> None:
    steps = [step for step in manage_steps(make_run_recipe()) if step[0] != "migrate"]
    assert ["generate_demo_data", "--round", "demo"] in [step[:3] for step in steps]
    assert ["recompute_scores", "--round", "demo"] in [step[:3] for step in steps]
    for step in steps:
        if step[0] != "run_info":
            call_command(*step, stdout=io.StringIO())
    run = Run.objects.get(round__code="demo", status=Run.Status.PUBLISHED)
    ranked = Score.objects.filter(run=run, scope=Score.Scope.UNIT, suppressed=False)
    assert ranked.values("unit").distinct().count() == 63
    page = Client().get("/results/demo/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "Quảng Ninh" in page.text


def run_info(**options: str) -> str:
    out = io.StringIO()
    call_command("run_info", stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_start_output_names_the_dashboard_and_asks_for_an_admin_only_when_none() -> None:
    step = next(s for s in manage_steps(make_run_recipe()) if s[0] == "run_info")
    assert step[1:] == ["--host", "$(HOST)", "--port", "$(PORT)"]
    before = run_info(host="127.0.0.1", port="9000")
    assert "http://127.0.0.1:9000/results/" in before
    assert "http://127.0.0.1:9000/admin/" in before
    assert "createsuperuser" in before
    get_user_model().objects.create_superuser("admin", "", "a-long-password-for-tests")
    after = run_info(host="127.0.0.1", port="9000")
    assert "http://127.0.0.1:9000/results/" in after
    assert "createsuperuser" not in after and "No admin account" not in after
    assert "admin" in after.split("Admin account:")[1]


@pytest.mark.django_db
def test_bootstrap_creating_the_admin_is_not_followed_by_advice_to_create_one(monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "chief")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-password-for-tests")
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    assert "admin account 'chief': created" in out.getvalue()
    assert "createsuperuser" not in run_info()
