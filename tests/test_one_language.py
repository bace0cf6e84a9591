"""One language at a time: every admin page and every API error in Vietnamese, no English left.

The detector is exact: while a request is served in ``vi``, every lookup of Django's
translation object (``gettext``, ``ngettext`` and, through them, ``pgettext``/``npgettext``,
template ``{% translate %}``/``{% blocktranslate %}`` and lazy strings) whose msgid is absent
from the merged ``vi`` catalogue (Django's, its contrib apps', DRF's and ours) is recorded
with the page that asked. For admin pages the scripts a page loads are read too, and each
msgid they pass to ``gettext``/``ngettext``/``pgettext``/``interpolate`` must be in the
JavaScript catalogue the page loads (``/admin/jsi18n/`` in ``vi``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.utils.translation import trans_real
from rest_framework.authtoken.models import Token

from demo.responses import generate_demo_responses
from feedback.models import (
    CalendarDay,
    Invitation,
    PaperImport,
    PetitionCategory,
    PetitionStaff,
)
from feedback.openrosa.auth import issue_password
from feedback.petitions import services as petition_services
from scoring.models import PopulationMargin, RakingFactor, Run
from scoring.services import recompute_round
from surveys.loaders import ensure_demo_agencies
from surveys.models import Agency, ProvinceStaff, QuestionnaireVersion, Round, Unit, VersionMapping
from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription

pytestmark = pytest.mark.django_db

VI = {"HTTP_ACCEPT_LANGUAGE": "vi"}

# Msgids that read the same in Vietnamese, each with its reason. Nothing else may miss.
SAME_IN_VIETNAMESE: dict[str, str] = {
    "…": "the paginator's ellipsis between page numbers: punctuation, no words",
}
# Lookups of text that is no msgid, each with its reason.
NOT_MSGIDS: dict[re.Pattern[str], str] = {
    re.compile(r"Có thể thử lại sau \d+ giây\.|Expected available in \d+ seconds?\."): (
        "DRF's Throttled passes its already formatted, already translated sentence to "
        "ngettext; its two msgids are looked up (and checked) just before"
    ),
}


class Misses:
    """Msgids looked up in ``vi`` and missing from its catalogue, with the pages that asked."""

    def __init__(self) -> None:
        self.found: dict[str, set[str]] = defaultdict(set)
        self.page = ""

    def record(self, msgid: str) -> None:
        # Only while a page is served: the setup of a test runs in vi too.
        if (
            self.page
            and msgid
            and msgid not in SAME_IN_VIETNAMESE
            and not any(pattern.fullmatch(msgid) for pattern in NOT_MSGIDS)
        ):
            self.found[msgid.replace(trans_real.CONTEXT_SEPARATOR, " | ")].add(self.page)

    def report(self) -> str:
        return "\n".join(
            f"{msgid!r} on {sorted(pages)[:3]}" for msgid, pages in sorted(self.found.items())
        )


@pytest.fixture
def misses(monkeypatch: pytest.MonkeyPatch) -> Iterator[Misses]:
    """Record every catalogue miss of the ``vi`` translation while the test runs."""
    found = Misses()
    gettext = trans_real.DjangoTranslation.gettext
    ngettext = trans_real.DjangoTranslation.ngettext

    def checked_gettext(self: trans_real.DjangoTranslation, message: str) -> str:
        if self.language() == "vi" and message not in self._catalog:
            found.record(message)
        return gettext(self, message)

    def checked_ngettext(
        self: trans_real.DjangoTranslation, msgid1: str, msgid2: str, n: int
    ) -> str:
        if self.language() == "vi":
            try:
                self._catalog.plural(msgid1, n)
            except KeyError:
                # npgettext retries without its context: only a miss of both counts.
                if trans_real.CONTEXT_SEPARATOR not in msgid1:
                    found.record(msgid1)
        return ngettext(self, msgid1, msgid2, n)

    monkeypatch.setattr(trans_real.DjangoTranslation, "gettext", checked_gettext)
    monkeypatch.setattr(trans_real.DjangoTranslation, "ngettext", checked_ngettext)
    yield found


# --- Admin ------------------------------------------------------------------------------------


@pytest.fixture
def one_of_each(sipas: Any, settings: Any) -> None:
    """At least one object of every model the admin shows."""
    settings.MIN_PUBLISH_N = 1
    ensure_demo_agencies()
    generate_demo_responses(round_code="sipas-2022", responses=63 * 2, seed=5)
    run = recompute_round(round_code="sipas-2022")
    survey_round = Round.objects.get(code="sipas-2022")
    unit = Unit.objects.filter(agencies__isnull=False).order_by("code").first()
    agency = Agency.objects.filter(unit=unit).first()
    user = get_user_model().objects.create_user("handler", password="a-long-password-1")
    Group.objects.create(name="Petition handlers")
    Token.objects.create(user=user)
    PetitionStaff.objects.create(user=user, unit=unit, agency=agency)
    province_user = get_user_model().objects.create_user("province", password="a-long-pw-1")
    ProvinceStaff.objects.create(user=province_user, unit=unit)  # issue 17
    category = PetitionCategory.objects.create(
        code="road", name_vi="Đường sá", name_en="Roads", deadline_days=10
    )
    CalendarDay.objects.create(day=date(2026, 9, 2), is_working_day=False, name="Quốc khánh")
    petition_services.submit_petition(
        data=petition_services.PetitionInput(
            category=category.code, unit=unit.code, description="Đèn đường hỏng ở ngõ 12."
        ),
        channel="web",
    )
    Invitation.objects.create(round=survey_round, unit=unit)
    issue_password(user)  # an ODK password (feedback.openrosa)
    PaperImport.objects.create(round=survey_round, file_name="phieu.csv", content=b"id\n")
    PopulationMargin.objects.create(
        round=survey_round, unit=unit, dimension="area", category="do_thi", population=1000
    )
    RakingFactor.objects.create(
        run=run, unit=unit, area="do_thi", responses=2, design_weight=2.0, factor=1.0
    )
    subscription = Subscription.objects.create(
        owner=user, url="http://93.184.215.14/hook", events=["run.published"]
    )
    event = Event.objects.create(type="run.published", data={"run": run.pk})
    delivery = Delivery.objects.create(event=event, subscription=subscription, attempts=1)
    DeliveryAttempt.objects.create(delivery=delivery, number=1, status_code=500)
    # issue 17: action plans
    from plans.models import PlanStaff, Task, TaskNote

    PlanStaff.objects.create(user=user, unit=unit, agency=agency)
    task = Task.objects.create(
        round=survey_round, unit=unit, agency=agency, indicator_code="S07", title="Rút ngắn",
        target_kind="above_national", working_days=10, deadline=date(2026, 9, 30), owner=user,
    )  # fmt: skip
    TaskNote.objects.create(task=task, author=user, text="Đã họp", status_to="in_progress")

    later = QuestionnaireVersion.objects.create(questionnaire=sipas.questionnaire, number=99)
    mapping = VersionMapping.objects.create(from_version=sipas, to_version=later)
    mapping.rows.create(kind="question", from_code="E08", relation="none")
    assert Run.objects.exists()


def _named_patterns(patterns: list[Any]) -> Iterator[URLPattern]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _named_patterns(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield pattern


def admin_pages() -> Iterator[tuple[str, str]]:
    """(name, URL) of every GET page of every registered model, one object filling any
    parameter, and of the admin site's own pages."""
    for name in ("index", "password_change", "password_change_done"):
        yield name, reverse(f"admin:{name}")
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        yield f"{meta.app_label} app", reverse("admin:app_list", args=[meta.app_label])
        obj = model_admin.get_queryset(_superuser_request()).order_by("pk").first()
        assert obj is not None, f"no {meta.label} to show: add one to the one_of_each fixture"
        for pattern in _named_patterns(model_admin.urls):
            kwargs = {key: obj.pk for key in pattern.pattern.converters}
            yield pattern.name, reverse(f"admin:{pattern.name}", kwargs=kwargs)


def _superuser_request() -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = get_user_model().objects.filter(is_superuser=True).get()
    return request


SCRIPT = re.compile(r'<script[^>]+src="([^"]+)"')
JS_CALL = re.compile(
    r"\b(gettext|ngettext|pgettext|interpolate)\(\s*(['\"])((?:\\.|(?!\2).)*)\2"
    r"(?:\s*,\s*(['\"])((?:\\.|(?!\4).)*)\4)?"
)


def script_msgids(source: str) -> set[str]:
    """The msgids a script looks up in the JavaScript catalogue."""
    found = set()
    for function, _q, first, _q2, second in JS_CALL.findall(source):
        if function == "pgettext":
            found.add(f"{first}{trans_real.CONTEXT_SEPARATOR}{second}")
        elif function != "interpolate":
            found.add(re.sub(r"\\(.)", r"\1", first))
    return found


def javascript_catalogue(client: Client) -> dict[str, Any]:
    page = client.get(reverse("admin:jsi18n"), **VI).content.decode()
    return json.loads(re.search(r"const newcatalog = (\{.*?\});\n", page, re.S).group(1))


def test_every_admin_page_in_vietnamese_has_no_catalogue_miss(
    admin_client: Client, one_of_each: None, misses: Misses, settings: Any
) -> None:
    pages = list(admin_pages())
    assert len(pages) > 80  # every model's changelist, add, change, delete, history, more
    scripts: set[str] = set()
    for name, url in pages:
        misses.page = name
        response = admin_client.get(url, **VI)
        assert response.status_code < 500, (name, url, response.status_code)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            assert 'lang="vi"' in response.content.decode(), (name, url)
            scripts.update(SCRIPT.findall(response.content.decode()))
        if name.endswith("_add") and response.status_code == 200:
            misses.page = f"{name} (errors)"  # an empty form: the error banner and messages
            assert admin_client.post(url, {}, **VI).status_code < 500, (name, url)
        if name.endswith("_changelist") and b'name="action"' in response.content:
            misses.page = f"{name} (action, nothing selected)"
            actions = response.content.split(b'name="action"')[1]
            action = re.search(rb'<option value="(\w+)">', actions).group(1).decode()
            posted = admin_client.post(url, {"action": action, "index": 0}, **VI)
            assert posted.status_code < 500, (name, url)
            admin_client.get(url, **VI)  # the message it left
    misses.page = "login"
    assert Client().get(reverse("admin:login"), **VI).status_code == 200
    Client().post(reverse("admin:login"), {"username": "x", "password": "y"}, **VI)
    catalogue = javascript_catalogue(admin_client)
    missing = defaultdict(set)
    for src in scripts:
        path = src.removeprefix(settings.STATIC_URL).split("?")[0]
        if "/vendor/" in path or not src.startswith(settings.STATIC_URL):
            continue  # vendor scripts (select2, jQuery) carry their own translations
        source = Path(finders.find(path)).read_text(encoding="utf-8")
        for msgid in script_msgids(source):
            if msgid not in catalogue and msgid not in SAME_IN_VIETNAMESE:
                missing[msgid].add(path)
    assert not misses.found and not missing, (
        "catalogue misses in vi:\n"
        + misses.report()
        + "\nJavaScript catalogue misses in vi:\n"
        + "\n".join(f"{m!r} in {sorted(p)}" for m, p in sorted(missing.items()))
    )


def test_the_detector_catches_a_miss(client: Client, misses: Misses) -> None:
    """A string nobody translated is reported; a translated one is not."""
    from django.utils.translation import gettext, override

    misses.page = "a test page"
    with override("vi"):
        gettext("A sentence no catalogue has, 5e1c.")
        gettext("Not found.")
    assert list(misses.found) == ["A sentence no catalogue has, 5e1c."]


# --- API errors -------------------------------------------------------------------------------

RESPONSES = "/api/v1/responses/"


def _token(*codenames: str, username: str) -> str:
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username, password="a-long-password-1")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return Token.objects.create(user=user).key


@pytest.fixture
def broker_down(settings: Any) -> Iterator[None]:
    """Tasks are published (not run in-process) to a port nothing listens on."""
    import socket

    from tests.support.queues import publishing_to

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with publishing_to(f"redis://127.0.0.1:{closed}/0"):
        yield


Provoke = Callable[[Client, dict], Any]


def api_errors(*, reader: str, analyst: str) -> dict[str, tuple[int, Provoke]]:
    """Each API error a client can meet: (its status, how to provoke it with some headers)."""

    def twice(client: Client, headers: dict) -> Any:
        client.post(RESPONSES, {}, content_type="application/json", **headers)
        return client.post(RESPONSES, {}, content_type="application/json", **headers)

    return {
        "400 no fields": (
            400,
            lambda c, h: c.post(RESPONSES, {}, content_type="application/json", **h),
        ),
        "400 wrong types": (
            400,
            lambda c, h: c.post(
                RESPONSES,
                {"round": 5, "unit": [], "answers": "x", "client_id": "no"},
                content_type="application/json",
                **h,
            ),
        ),
        "400 malformed JSON": (
            400,
            lambda c, h: c.post(RESPONSES, "{", content_type="application/json", **h),
        ),
        "400 petition": (
            400,
            lambda c, h: c.post("/api/v1/petitions/", {}, content_type="application/json", **h),
        ),
        "401 no credentials": (401, lambda c, h: c.post("/api/v1/paper-imports/", {}, **h)),
        "401 wrong token": (
            401,
            lambda c, h: c.get("/api/v1/me/", HTTP_AUTHORIZATION="Token wrong", **h),
        ),
        "403 not allowed": (
            403,
            lambda c, h: c.post(
                "/api/v1/rounds/demo/recompute/", HTTP_AUTHORIZATION=f"Token {reader}", **h
            ),
        ),
        "404 no such run": (404, lambda c, h: c.get("/api/v1/runs/999999/", **h)),
        "404 no such round": (404, lambda c, h: c.get("/api/v1/rounds/nope/questionnaire/", **h)),
        "404 no such path": (404, lambda c, h: c.get("/api/v1/nope/", **h)),
        "405 method": (405, lambda c, h: c.delete("/api/v1/rounds/", **h)),
        "406 media type": (406, lambda c, h: c.get("/api/v1/rounds/", HTTP_ACCEPT="text/csv", **h)),
        "415 content type": (
            415,
            lambda c, h: c.post(RESPONSES, "x", content_type="text/plain", **h),
        ),
        "429 throttled": (429, twice),
        "503 queue down": (
            503,
            lambda c, h: c.post(
                "/api/v1/rounds/demo/recompute/", HTTP_AUTHORIZATION=f"Token {analyst}", **h
            ),
        ),
    }


@pytest.mark.django_db(transaction=True)  # a task is published only outside a transaction
def test_every_api_error_in_vietnamese_has_no_catalogue_miss_and_no_english_detail(
    sipas: Any, misses: Misses, settings: Any, broker_down: None
) -> None:
    from django.core.cache import cache

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"response-submit": "1/hour"}
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}
    errors = api_errors(
        reader=_token(username="reader"), analyst=_token("add_run", username="analyst")
    )
    same_detail = []
    for name, (status, provoke) in errors.items():
        answers = {}
        for language in ("vi", "en"):
            cache.clear()
            misses.page = name if language == "vi" else ""
            answer = provoke(Client(), {"HTTP_ACCEPT_LANGUAGE": language})
            assert answer.status_code == status, (name, language, answer.content)
            answers[language] = answer.json()
        if answers["vi"]["detail"] == answers["en"]["detail"]:
            same_detail.append((name, answers["vi"]["detail"]))
    assert not misses.found, "catalogue misses in vi:\n" + misses.report()
    assert not same_detail, f"an error detail reads the same in vi and en: {same_detail}"


# --- Dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [("vi", "đến 23:57 ngày 7 tháng 12 năm 2026. "), ("en", "until 7 December 2026, 23:57. ")],
)
def test_the_saved_draft_page_gives_its_expiry_as_a_natural_local_date_time(
    sipas: Any, settings: Any, language: str, expected: str
) -> None:
    from feedback.drafts import services as drafts
    from feedback.models import ResponseDraft

    settings.TIME_ZONE = "Asia/Ho_Chi_Minh"
    draft = drafts.start_draft(round_code="demo", unit_code="19")
    expires = datetime(2026, 12, 7, 16, 57, tzinfo=UTC)  # 23:57 in Hà Nội (UTC+7)
    ResponseDraft.objects.filter(pk=draft.pk).update(expires_at=expires)
    page = Client().get(f"/d/{draft.token}/saved/", HTTP_ACCEPT_LANGUAGE=language)
    text = re.sub(r"\s+", " ", page.content.decode())
    assert expected in text
    assert ".." not in text and "Ngày" not in text
