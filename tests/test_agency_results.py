"""Agency results for the province (issue 17, item 5): values per agency, and who sees them.

One world per module: provinces A and B with agencies in each, a national round covering
both and a local round of each, responses naming agencies, published runs. Every role
(staff of A, staff of B, national staff, a superuser, staff without permissions, an
agency's action plan staff with no other permission, the public) against the page and the
API; the round setting ``publish_agency_results`` switching public access; values checked
against the stored scores, a suppressed agency withheld.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from plans.models import PlanStaff
from results import agencies
from scoring.models import Score
from scoring.services import recompute_round
from surveys.admin import RoundForm
from surveys.models import Agency, Indicator, QuestionnaireVersion, Round
from surveys.services import publish_version
from tests.factories import IndicatorFactory, RoundFactory, small_draft, submitted_response
from tests.support import provinces
from tests.support.browser import PASSWORD
from tests.support.hostile_input import ANY_CHARACTER, FEWER_EXAMPLES
from tests.support.provinces import login, province_roles, two_provinces

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]
ROLES = ("staff_a", "staff_b", "national", "superuser", "plain", "planner", "public")


def answer(round_code: str, unit: str, agency: str, sat: int) -> None:
    submitted_response(round_code, unit, {"USED": True, "SAT": sat}, agency_code=agency)


def published_version() -> QuestionnaireVersion:
    """The small test questionnaire with a main index (IDX) over its item SAT."""
    version = small_draft()
    index = IndicatorFactory(
        version=version, code="IDX", index=True, name_vi="Chỉ số", name_en="Index"
    )
    Indicator.objects.filter(version=version, code="SAT").update(parent=index, position=1)
    return publish_version(version_id=version.pk)


def build_world() -> SimpleNamespace:
    w = SimpleNamespace()
    two_provinces(w)
    w.a_shop = Agency.objects.create(unit=w.a, code="PA-TTHC", name_vi="Trung tâm hành chính A")
    w.a_justice = Agency.objects.create(unit=w.a, code="PA-STP", name_vi="Sở Tư pháp A")
    version = published_version()
    w.nat = RoundFactory(code="nat", version=version, units=[w.a, w.b])
    w.loc_a = RoundFactory(code="loc-a", version=version, units=[w.a], owner_unit=w.a)
    w.loc_b = RoundFactory(code="loc-b", version=version, units=[w.b], owner_unit=w.b)
    for sat in (5, 4, 2):
        answer("nat", "PA", "PA-SXD", sat)
        answer("nat", "PB", "PB-SXD", sat)
    answer("nat", "PA", "PA-TTHC", 5)  # one respondent: withheld
    for sat in (5, 5, 1):  # withheld too, or the unit's value would give PA-TTHC's back
        answer("nat", "PA", "PA-STP", sat)
    for sat in (5, 1):
        answer("loc-a", "PA", "PA-SXD", sat)
        answer("loc-b", "PB", "PB-SXD", sat)
    w.runs = {code: recompute_round(round_code=code) for code in ("nat", "loc-a", "loc-b")}

    province_roles(w)
    users = get_user_model().objects
    w.planner = users.create_user("planner", password=PASSWORD, is_staff=True)
    PlanStaff.objects.create(user=w.planner, unit=w.a, agency=w.a_build)
    w.public = None
    return w


world = provinces.world


def bare(page: Any, path: str) -> bytes:
    """A page without what differs per request: its CSP nonce, CSRF token and own path (in
    the language form)."""
    content = re.sub(rb'(nonce|name="csrfmiddlewaretoken" value)="[^"]*"', b"", page.content)
    return content.replace(quote(path).encode(), b"")


def page_url(round_code: str, unit_code: str) -> str:
    return reverse("dashboard:agencies", args=[round_code, unit_code])


def api_url(round_code: str, unit_code: str) -> str:
    return reverse("v1:unit-agencies", args=[round_code, unit_code])


def publish_agencies(survey_round: Round, on: bool) -> None:
    """The setting, written to the database only (the world's objects stay as built)."""
    Round.objects.filter(pk=survey_round.pk).update(publish_agency_results=on)


# --- Who sees what: (round, unit) → the roles that see it, setting off and on -------------------

STAFF_OF = {"PA": "staff_a", "PB": "staff_b"}
PLACES = [("nat", "PA"), ("nat", "PB"), ("loc-a", "PA"), ("loc-b", "PB")]


def allowed(round_code: str, unit_code: str, *, public: bool) -> set[str]:
    seen = {"national", "superuser", STAFF_OF[unit_code]}
    if public and round_code == "nat":  # a local round is never public
        seen |= set(ROLES)
    return seen


@pytest.mark.parametrize("public", [False, True], ids=["setting-off", "setting-on"])
@pytest.mark.parametrize("role", ROLES)
def test_every_role_against_page_and_api(world: SimpleNamespace, role: str, public: bool) -> None:
    for survey_round in (world.nat, world.loc_a, world.loc_b):
        publish_agencies(survey_round, public)
    client = login(getattr(world, role))
    for round_code, unit_code in PLACES:
        expected = 200 if role in allowed(round_code, unit_code, public=public) else 404
        page = client.get(page_url(round_code, unit_code))
        api = client.get(api_url(round_code, unit_code))
        assert (page.status_code, api.status_code) == (expected, expected), (
            role,
            round_code,
            unit_code,
        )
        if expected == 404:  # the same answer as for an unknown round: nothing revealed
            unknown = client.get(page_url("no-such-round", unit_code))
            assert bare(page, page_url(round_code, unit_code)) == bare(
                unknown, page_url("no-such-round", unit_code)
            )
            assert b"PA-" not in page.content and b"PB-" not in page.content
            assert api.json() == client.get(api_url("no-such-round", unit_code)).json()


def test_nothing_of_province_b_reaches_province_a(world: SimpleNamespace) -> None:
    client = login(world.staff_a)
    for round_code, unit_code in PLACES:
        for response in (
            client.get(page_url(round_code, unit_code)),
            client.get(api_url(round_code, unit_code)),
        ):
            assert b"PB-SXD" not in response.content and "Tỉnh B".encode() not in response.content
    # nor does asking for B's unit in A's local round, or A's unit in B's
    assert client.get(api_url("loc-b", "PA")).status_code == 404
    assert client.get(api_url("loc-a", "PB")).status_code == 404


def test_the_rule_in_one_function(world: SimpleNamespace) -> None:
    nat, loc_a, loc_b = (Round.objects.get(code=c) for c in ("nat", "loc-a", "loc-b"))
    assert agencies.may_see(world.staff_a, nat, world.a)
    assert not agencies.may_see(world.staff_a, nat, world.b)
    assert not agencies.may_see(world.staff_a, loc_b, world.b)
    assert agencies.may_see(world.national, loc_b, world.b)
    assert not agencies.may_see(world.planner, nat, world.a)
    assert not agencies.may_see(None, nat, world.a)
    nat.publish_agency_results = True
    loc_a.publish_agency_results = True
    assert agencies.may_see(None, nat, world.a)
    assert not agencies.may_see(None, loc_a, world.a)  # local: never public


# --- The values ----------------------------------------------------------------------------------


def test_values_are_the_stored_scores_and_a_suppressed_agency_is_withheld(
    world: SimpleNamespace,
) -> None:
    doc = login(world.national).get(api_url("nat", "PA")).json()
    assert doc["unit"] == {"code": "PA", "name": "Tỉnh A"}
    assert doc["round"] == {
        "code": "nat",
        "name": {"vi": "Vòng nat", "en": ""},
        "local": False,
        "public": False,
    }
    # by Vietnamese name
    assert [a["code"] for a in doc["agencies"]] == ["PA-STP", "PA-SXD", "PA-TTHC"]
    run = world.runs["nat"]
    sat = next(i for i in doc["indicators"] if i["code"] == "SAT")
    assert doc["headline"] == "IDX"
    stored_unit = Score.objects.get(
        run=run, scope=Score.Scope.UNIT, unit=world.a, indicator__code="SAT"
    )
    assert sat["unit"]["value"] == pytest.approx(stored_unit.value)
    assert sat["unit"]["n"] == stored_unit.n == 7
    by_code = {a["code"]: a["value"] for a in sat["agencies"]}
    build = Score.objects.get(
        run=run, scope=Score.Scope.AGENCY, agency=world.a_build, indicator__code="SAT"
    )
    assert not build.suppressed and build.n == 3
    assert by_code["PA-SXD"]["value"] == pytest.approx(build.value) == pytest.approx(200 / 3)
    assert by_code["PA-SXD"]["ci_low"] == pytest.approx(build.ci_low)
    assert by_code["PA-SXD"]["ci_high"] == pytest.approx(build.ci_high)
    assert by_code["PA-SXD"]["n"] == 3 and by_code["PA-SXD"]["suppressed"] is False
    shop = Score.objects.get(
        run=run, scope=Score.Scope.AGENCY, agency=world.a_shop, indicator__code="SAT"
    )
    assert shop.suppressed and shop.value is not None  # stored, but never shown
    assert by_code["PA-TTHC"] == {
        "value": None,
        "se": None,
        "ci_low": None,
        "ci_high": None,
        "n": 1,
        "suppressed": True,
        "children_suppressed": False,
    }
    # Complementary: the unit's value pools its agencies', so with PA-TTHC alone withheld,
    # 7·unit − 3·SXD − 3·STP would give it back. The smaller code of the two n = 3 goes.
    justice = Score.objects.get(
        run=run, scope=Score.Scope.AGENCY, agency=world.a_justice, indicator__code="SAT"
    )
    assert justice.suppressed and justice.n == 3 and justice.value == pytest.approx(200 / 3)
    assert by_code["PA-STP"]["value"] is None and by_code["PA-STP"]["suppressed"] is True
    shown = [a for a in doc["agencies"] if by_code[a["code"]]["value"] is not None]
    assert [a["code"] for a in shown] == ["PA-SXD"]


def test_the_page_shows_the_values_and_withholds_the_suppressed(world: SimpleNamespace) -> None:
    page = login(world.staff_a).get(page_url("nat", "PA"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Sở Xây dựng A" in html and "66.67" in html  # 2 of 3 satisfied
    shop_row = html.split('data-agency="PA-TTHC"')[1].split("</tr>")[0]
    assert "suppressed" in shop_row and "100" not in shop_row  # its 100% not shown
    assert "Not public" in html
    page = login(world.staff_a).get(page_url("nat", "PA"), headers={"Accept-Language": "vi"})
    html = page.content.decode()
    assert "Kết quả theo cơ quan" in html and "toàn đơn vị" in html
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]


def test_a_local_round_for_its_province(world: SimpleNamespace) -> None:
    page = login(world.staff_a).get(page_url("loc-a", "PA"))
    assert page.status_code == 200
    assert "never public" in page.content.decode()
    assert f'href="{reverse("dashboard:round", args=["loc-a"])}"' not in page.content.decode()
    doc = login(world.national).get(api_url("loc-b", "PB")).json()
    assert doc["round"]["local"] is True and doc["round"]["public"] is False
    for indicator in doc["indicators"]:
        stored = Score.objects.get(
            run=world.runs["loc-b"], scope=Score.Scope.AGENCY, indicator__code=indicator["code"]
        )
        assert indicator["agencies"][0]["value"]["value"] == pytest.approx(stored.value)


def test_caching_headers_keep_staff_answers_private(world: SimpleNamespace) -> None:
    staff = login(world.staff_a).get(api_url("nat", "PA"))
    assert "private" in staff["Cache-Control"] and "no-store" in staff["Cache-Control"]
    publish_agencies(world.nat, True)
    public = Client().get(api_url("nat", "PA"))
    assert public.status_code == 200 and "private" not in public["Cache-Control"]
    assert public.json()["round"]["public"] is True
    assert "Authorization" in public["Vary"] and "Cookie" in public["Vary"]
    # the staff answer to a public round is still not kept by shared caches
    staff = login(world.staff_a).get(api_url("nat", "PA"))
    assert "private" in staff["Cache-Control"]
    publish_agencies(world.nat, False)
    assert Client().get(api_url("nat", "PA")).status_code == 404


def test_no_personal_data_in_the_answer(world: SimpleNamespace) -> None:
    doc = login(world.superuser).get(api_url("nat", "PA")).json()
    assert set(doc) == {"round", "unit", "run", "headline", "agencies", "indicators"}
    assert set(doc["run"]) == {"id", "published_at", "min_n"}
    for indicator in doc["indicators"]:
        assert set(indicator) == {"code", "name", "kind", "parent", "unit", "agencies"}
        for entry in indicator["agencies"]:
            assert set(entry) == {"code", "name", "value"}
    text = str(doc)
    assert "receipt" not in text and "USED" not in text


# --- Links, the setting in the admin -------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "linked"),
    [
        ("staff_a", True),
        ("national", True),
        ("staff_b", False),
        ("plain", False),
        ("public", False),
    ],
)
def test_unit_and_diagnosis_pages_link_for_those_who_may_see(
    world: SimpleNamespace, role: str, linked: bool
) -> None:
    client = login(getattr(world, role))
    for name in ("dashboard:unit", "dashboard:diagnosis"):
        html = client.get(reverse(name, args=["nat", "PA"])).content.decode()
        assert ('id="agencies-link"' in html) is linked, name
        assert (page_url("nat", "PA") in html) is linked, name


def test_the_public_sees_the_link_when_the_setting_is_on(world: SimpleNamespace) -> None:
    publish_agencies(world.nat, True)
    html = Client().get(reverse("dashboard:unit", args=["nat", "PA"])).content.decode()
    assert 'id="agencies-link"' in html


def test_the_round_admin_page_links_each_unit_to_its_agency_results(
    world: SimpleNamespace,
) -> None:
    """The way to a local round's agency page (it has no public page to link from)."""
    change = reverse("admin:surveys_round_change", args=[world.loc_a.pk])
    html = login(world.staff_a).get(change).content.decode()
    assert f'href="{page_url("loc-a", "PA")}"' in html


def test_the_setting_is_in_the_round_form(world: SimpleNamespace) -> None:
    assert "publish_agency_results" in RoundForm.Meta.fields
    page = login(world.superuser).get(reverse("admin:surveys_round_change", args=[world.nat.pk]))
    assert page.status_code == 200 and b'name="publish_agency_results"' in page.content
    assert Round._meta.get_field("publish_agency_results").default is False


def test_the_api_is_in_the_schema(world: SimpleNamespace) -> None:
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/rounds/{code}/units/{unit}/agencies/"]["get"]
    assert "agency" in operation["description"] and "404" in operation["responses"]


# --- Hostile path parts ------------------------------------------------------------------


@FEWER_EXAMPLES
@given(
    round_code=st.text(ANY_CHARACTER, min_size=1, max_size=30) | st.just("9" * 400),
    unit_code=st.text(ANY_CHARACTER, min_size=1, max_size=30) | st.just("PA\x00"),
)
def test_odd_codes_are_404_never_500(
    world: SimpleNamespace, round_code: str, unit_code: str
) -> None:
    client = login(world.national)
    path = f"/results/{quote(round_code, safe='', errors='surrogatepass')}/units/"
    path += f"{quote(unit_code, safe='', errors='surrogatepass')}/agencies/"
    assert client.get(path).status_code in (404, 400, 301)
