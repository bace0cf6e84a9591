"""Review of responses (feedback.review): an excluded response leaves the next run exactly as
its deletion would, stays in the raw export with its state, is counted per unit in the run's
report; only reviewers may exclude, through the admin action or the API."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback.models import Response, ResponseRecord
from scoring import services
from scoring.margins import replace_margins
from scoring.models import Score
from surveys.models import Round
from tests.results_fixtures import token_client
from tests.support.downloads import csv_rows, xlsx_sheets
from tests.support.records import assert_scored_alike, same
from tests.support.responses import post_responses
from tests.support.review import USERS, field_client, review, reviewer_client

pytestmark = pytest.mark.django_db

FIGURES = (
    "value",
    "n",
    "valid",
    "weight_sum",
    "se",
    "ci_low",
    "ci_high",
    "deff",
    "n_eff",
    "suppressed",
    "rank",
    "rank_of",
    "change",
)


def scores_of(run: Any) -> dict[tuple, dict[str, Any]]:
    rows = Score.objects.filter(run=run).values(
        "scope", "indicator_id", "unit_id", "agency_id", *FIGURES
    )
    return {
        (r.pop("scope"), r.pop("indicator_id"), r.pop("unit_id"), r.pop("agency_id")): r
        for r in rows
    }


def assert_same_scores(a: Any, b: Any) -> None:
    left, right = scores_of(a), scores_of(b)
    assert left.keys() == right.keys() and left
    for key, figures in left.items():
        for field, value in figures.items():
            other = right[key][field]
            if isinstance(value, float) or isinstance(other, float):
                assert same(value, other), (key, field, value, other)
            else:
                assert value == other, (key, field, value, other)


@pytest.mark.parametrize("variance", ["taylor", "jackknife"])
def test_an_excluded_response_changes_the_run_exactly_as_its_deletion(
    sipas: Any, variance: str
) -> None:
    """Two responses excluded through the API: the run computed then (the real recompute
    path: raking, engine from the compact records, jackknife, agencies) equals, figure by
    figure, the run computed after deleting those two responses instead."""
    post_responses(field_client(), 36, seed=7)
    survey_round = Round.objects.get(code="demo")
    Round.objects.filter(pk=survey_round.pk).update(variance_method=variance)
    replace_margins(
        round_code="demo",
        data="unit,dimension,category,population\n19,sex_age,nu|35_49,900\n01,sex_age,nu|35_49,500\n",
    )
    before = services.recompute_round(round_code="demo")
    # The two excluded responses are of unit 19 and unit 01.
    chosen = [
        Response.objects.filter(round=survey_round, unit__code=code).order_by("pk")[1]
        for code in ("19", "01")
    ]
    api = reviewer_client()
    for response, reason in zip(chosen, ("duplicate", "fraud"), strict=True):
        answer = review(api, response.receipt, state="excluded", reason=reason, note="seen twice")
        assert answer.status_code == 200, answer.content
        assert answer.json()["state"] == "excluded" and answer.json()["changed"] is True
    assert_scored_alike(survey_round.pk, survey_round.version_id)  # records ≡ answers path
    excluded = services.recompute_round(round_code="demo")
    assert excluded.settings_used["excluded"] == {"responses": 2, "units": {"01": 1, "19": 1}}
    assert excluded.response_count == before.response_count - 2
    figures = {k: v["value"] for k, v in scores_of(excluded).items()}
    assert figures != {k: v["value"] for k, v in scores_of(before).items()}  # it did change

    # Nothing was deleted by the review; now delete them, as the comparison.
    assert Response.objects.filter(pk__in=[r.pk for r in chosen]).count() == 2
    assert ResponseRecord.objects.filter(response_id__in=[r.pk for r in chosen]).count() == 2
    Response.objects.filter(pk__in=[r.pk for r in chosen]).delete()
    deleted = services.recompute_round(round_code="demo")
    assert deleted.settings_used["excluded"] == {"responses": 0, "units": {}}
    assert (deleted.response_count, deleted.answer_count) == (
        excluded.response_count,
        excluded.answer_count,
    )
    assert_same_scores(excluded, deleted)
    if variance == "taylor":
        raking = (excluded.settings_used["raking"], deleted.settings_used["raking"])
        assert raking[0]["units"] == raking[1]["units"]


def test_accepting_again_restores_the_values(sipas: Any, client: Client) -> None:
    post_responses(client, 18, seed=3)
    first = services.recompute_round(round_code="demo")
    receipt = Response.objects.order_by("pk").first().receipt
    api = reviewer_client()
    assert review(api, receipt, state="excluded", reason="test").status_code == 200
    services.recompute_round(round_code="demo")
    answer = review(api, receipt, state="accepted")
    assert answer.status_code == 200 and answer.json()["state"] == "accepted"
    assert answer.json()["reason"] == ""
    again = services.recompute_round(round_code="demo")
    assert_same_scores(first, again)
    assert again.settings_used["excluded"]["responses"] == 0


def test_the_run_reports_excluded_counts_in_the_api_and_the_admin(
    sipas: Any, client: Client, admin_client: Client
) -> None:
    post_responses(client, 9, seed=5)
    api = reviewer_client()
    for response in Response.objects.filter(unit__code="79"):
        assert review(api, response.receipt, state="excluded", reason="other").status_code == 200
    run = services.recompute_round(round_code="demo")
    document = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert document["excluded"] == {"responses": 3, "units": {"79": 3}}
    assert document["responses"] == 6
    page = admin_client.get(f"/admin/scoring/run/{run.pk}/change/").content.decode()
    assert "3 (79: 3)" in page


def test_an_excluded_response_is_in_the_raw_exports_with_its_state(
    sipas: Any, client: Client
) -> None:
    post_responses(client, 4, seed=2)
    excluded = Response.objects.order_by("pk")[2]
    assert (
        review(reviewer_client(), excluded.receipt, state="excluded", reason="test").status_code
        == 200
    )
    staff = token_client("analyst", permission="feedback.view_response")
    rows = csv_rows(staff.get("/api/v1/rounds/demo/responses.csv"))
    header, body = rows[0], rows[1:]
    column = header.index("review_state")
    states = {int(row[0]): row[column] for row in body}
    assert len(states) == 4
    assert states.pop(excluded.pk) == "excluded" and set(states.values()) == {"accepted"}
    sheet = xlsx_sheets(staff.get("/api/v1/rounds/demo/responses.xlsx"))["responses"]
    by_id = {row[0]: row[sheet[0].index("review_state")] for row in sheet[1:]}
    assert by_id[excluded.pk] == "excluded" and len(by_id) == 4


class TestPermissions:
    def test_staff_without_the_review_permission_get_403(self, sipas: Any, client: Client) -> None:
        post_responses(client, 1)
        response = Response.objects.get()
        staff = token_client("analyst", permission="feedback.view_response")
        answer = review(staff, response.receipt, state="excluded", reason="fraud")
        assert answer.status_code == 403
        assert review(client, response.receipt, state="excluded", reason="fraud").status_code in (
            401,
            403,
        )
        assert Response.objects.get().review_state == "accepted"

    def test_an_unknown_receipt_is_404(self, sipas: Any) -> None:
        answer = review(reviewer_client(), "AAAAA-AAAAA", state="accepted")
        assert answer.status_code == 404

    def test_the_admin_offers_the_action_to_reviewers_only(
        self, sipas: Any, client: Client, django_user_model: Any
    ) -> None:
        post_responses(client, 2)
        staff = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
        staff.user_permissions.add(Permission.objects.get(codename="view_response"))
        browser = Client()
        browser.force_login(staff)
        page = browser.get("/admin/feedback/response/").content.decode()
        assert page.count("<tr") >= 3 and "review_responses" not in page
        ids = list(Response.objects.values_list("pk", flat=True))
        posted = browser.post(
            "/admin/feedback/response/",
            {
                "action": "review_responses",
                "_selected_action": ids,
                "apply": "1",
                "state": "excluded",
                "reason": "fraud",
            },
        )
        assert posted.status_code in (200, 302)
        assert set(Response.objects.values_list("review_state", flat=True)) == {"accepted"}
        staff.user_permissions.add(Permission.objects.get(codename="review_response"))
        staff = django_user_model.objects.get(pk=staff.pk)
        browser.force_login(staff)
        assert "review_responses" in browser.get("/admin/feedback/response/").content.decode()


def test_the_admin_action_excludes_with_a_reason_after_a_form(
    sipas: Any, client: Client, django_user_model: Any
) -> None:
    post_responses(client, 3)
    reviewer = django_user_model.objects.create_user("lan", password="x", is_staff=True)
    reviewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_response", "review_response"])
    )
    browser = Client()
    browser.force_login(reviewer)
    chosen = list(Response.objects.order_by("pk").values_list("pk", flat=True)[:2])
    form = browser.post(
        "/admin/feedback/response/",
        {"action": "review_responses", "_selected_action": chosen},
    )
    assert form.status_code == 200 and 'id="review-form"' in form.content.decode()
    # Excluding without a reason: the form again, naming the field; nothing changed.
    posted = {"action": "review_responses", "_selected_action": chosen, "apply": "1"}
    again = browser.post("/admin/feedback/response/", {**posted, "state": "excluded"})
    assert again.status_code == 200
    assert "An excluded response needs a reason." in again.content.decode() or re.search(
        r"errorlist", again.content.decode()
    )
    assert not Response.objects.filter(review_state="excluded").exists()
    done = browser.post(
        "/admin/feedback/response/",
        {**posted, "state": "excluded", "reason": "duplicate", "note": "cùng hộ"},
        follow=True,
    )
    assert done.status_code == 200
    stored = Response.objects.filter(review_state="excluded").order_by("pk")
    assert [r.pk for r in stored] == chosen
    assert {(r.review_reason, r.review_note, r.reviewed_by_id) for r in stored} == {
        ("duplicate", "cùng hộ", reviewer.pk)
    }
    assert Response.objects.count() == 3


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"state": "rejected"}, "state"),
            ({"state": "excluded", "reason": "boredom"}, "reason"),
            ({"state": "excluded"}, "reason"),
            ({"state": "accepted", "reason": "fraud"}, "reason"),
            ({"state": "excluded", "reason": "other", "note": "x" * 501}, "note"),
            ({"state": "excluded", "reason": "other", "note": "a\u0000b"}, "note"),
            ({"reason": "other"}, "state"),
            ({"state": ["excluded"], "reason": "other"}, "state"),
        ],
    )
    def test_bad_input_is_a_400_naming_the_field(
        self, sipas: Any, client: Client, body: dict[str, Any], field: str
    ) -> None:
        post_responses(client, 1)
        response = Response.objects.get()
        answer = review(reviewer_client(), response.receipt, **body)
        assert answer.status_code == 400, answer.content
        assert field in answer.json()["fields"], answer.json()
        assert Response.objects.get().review_state == "accepted"

    def test_a_lone_surrogate_is_a_400_naming_the_field(self, sipas: Any, client: Client) -> None:
        post_responses(client, 1)
        receipt = Response.objects.get().receipt
        raw = '{"state": "excluded", "reason": "other", "note": "\\ud800"}'
        answer = reviewer_client().post(
            f"/api/v1/responses/{receipt}/review/", raw, content_type="application/json"
        )
        assert answer.status_code == 400 and "note" in answer.json()["fields"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    state=st.one_of(st.sampled_from(["accepted", "excluded"]), st.text(max_size=12), st.integers()),
    reason=st.one_of(
        st.sampled_from(["", "duplicate", "fraud", "test", "other"]),
        st.text(max_size=12),
        st.none(),
        # Infinity is not JSON (RFC 8259): such a body is a parse error, not a field's.
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    note=st.one_of(
        st.text(max_size=600), st.none(), st.integers(min_value=-(10**30), max_value=10**30)
    ),
)
def test_any_review_body_is_stored_or_refused_with_a_400(
    sipas: Any, client: Client, state: Any, reason: Any, note: Any
) -> None:
    """Whatever the body: 200 with the state stored, or 400 naming a field and the response
    as it was; never a 500 and never a response lost."""
    if not Response.objects.exists():
        post_responses(client, 1)
    response = Response.objects.get()
    before = (response.review_state, response.review_reason, response.review_note)
    api = reviewer_client(f"reviewer-{next(USERS)}")
    answer = review(api, response.receipt, state=state, reason=reason, note=note)
    assert answer.status_code in (200, 400), answer.content
    stored = Response.objects.get()
    if answer.status_code == 400:
        assert set(answer.json()["fields"]) & {"state", "reason", "note"}, answer.json()
        assert (stored.review_state, stored.review_reason, stored.review_note) == before
    else:
        assert stored.review_state == state
        assert (stored.review_state == "excluded") == bool(stored.review_reason)


def test_the_round_admin_counts_only_the_responses_a_run_counts(sipas: Any) -> None:
    from django.contrib.auth import get_user_model

    post_responses(Client(), 3)
    survey_round = Round.objects.get(code="demo")
    response = Response.objects.filter(round=survey_round).first()
    unit = response.unit.code
    stored = Response.objects.filter(round=survey_round, unit=response.unit).count()
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", password="x-long-pw-1"))

    def shown() -> int:
        page = admin.get(f"/admin/surveys/round/{survey_round.pk}/change/").content.decode()
        row = re.search(rf'<tr data-unit="{unit}">.*?</tr>', page, re.S)
        assert row, page[:2000]
        return int(re.search(r'<td class="responses">(\d+)</td>', row.group(0)).group(1))

    assert shown() == stored
    answer = review(reviewer_client(), response.receipt, state="excluded", reason="test")
    assert answer.status_code == 200
    assert shown() == stored - 1
