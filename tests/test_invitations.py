"""Invitations: generation, CSV export, the admin generate view and its permissions, and
single use through the API."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from feedback.invitations.services import generate_invitations, invitations_csv
from feedback.models import Invitation, Response
from surveys.models import Agency, Round, Unit
from tests.support.downloads import streamed
from tests.support.responses import payload, post, valid_answers

pytestmark = pytest.mark.django_db
GENERATE_URL = "/admin/feedback/invitation/generate/"
CHANGELIST_URL = "/admin/feedback/invitation/"
BASE = "https://khaosat.example.vn/"


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    # Some tests submit through the API: start and leave with no throttle history.
    cache.clear()
    yield
    cache.clear()


def read_csv(lines: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(lines))))


def staff(*permissions: str) -> Any:
    user = get_user_model().objects.create_user(
        username=f"staff-{uuid.uuid4().hex[:8]}", password="x", is_staff=True
    )
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def manager_client(client: Client) -> Client:
    client.force_login(staff("manage_invitations"))
    return client


class TestGenerate:
    def test_generates_the_requested_number_of_unused_unique_tokens(self, sipas) -> None:
        created = generate_invitations(round_code="demo", unit_code="19", count=250, batch="mail-1")
        assert len(created) == 250
        stored = Invitation.objects.filter(batch="mail-1")
        assert stored.count() == 250
        assert stored.values("token").distinct().count() == 250
        assert not stored.filter(used_at__isnull=False).exists()
        assert set(stored.values_list("round__code", "unit__code")) == {("demo", "19")}

    def test_no_token_starts_like_a_spreadsheet_formula(self, sipas) -> None:
        generate_invitations(round_code="demo", unit_code="19", count=500)
        assert not any(t[0] in "=+-@" for t in Invitation.objects.values_list("token", flat=True))

    def test_an_agency_of_the_unit_is_recorded(self, sipas) -> None:
        unit = Unit.objects.get(code="19")
        agency = Agency.objects.create(unit=unit, code="ttphcc", name_vi="Trung tâm")
        created = generate_invitations(
            round_code="demo", unit_code="19", agency_code="ttphcc", count=2
        )
        assert {i.agency for i in created} == {agency}

    @pytest.mark.parametrize("count", [0, -1, 10_001])
    def test_a_count_out_of_range_names_count(self, sipas, count: int) -> None:
        with pytest.raises(ValidationError) as raised:
            generate_invitations(round_code="demo", unit_code="19", count=count)
        assert "count" in raised.value.message_dict
        assert not Invitation.objects.exists()

    def test_a_unit_the_round_does_not_cover_names_unit(self, sipas) -> None:
        with pytest.raises(ValidationError) as raised:
            generate_invitations(round_code="demo", unit_code="19-2025", count=1)
        assert "unit" in raised.value.message_dict
        assert not Invitation.objects.exists()

    def test_an_unknown_round_or_agency_is_named(self, sipas) -> None:
        with pytest.raises(ValidationError) as raised:
            generate_invitations(round_code="nope", unit_code="19", count=1)
        assert "round" in raised.value.message_dict
        with pytest.raises(ValidationError) as raised:
            generate_invitations(round_code="demo", unit_code="19", agency_code="x", count=1)
        assert "agency" in raised.value.message_dict
        assert not Invitation.objects.exists()


class TestCsv:
    def test_csv_lists_each_invitation_with_its_public_link(self, sipas) -> None:
        created = generate_invitations(round_code="demo", unit_code="19", count=3, batch="b1")
        rows = read_csv(invitations_csv(Invitation.objects.all(), base_url=BASE))
        assert [r["token"] for r in rows] == [i.token for i in created]
        assert rows[0] == {
            "token": created[0].token,
            "link": f"https://khaosat.example.vn/i/{created[0].token}/",
            "round": "demo",
            "unit": "19",
            "agency": "",
            "batch": "b1",
            "psu": "",
            "stratum": "",
            "used": "",
        }

    def test_a_used_invitation_shows_when_it_was_used(self, sipas) -> None:
        (invitation,) = generate_invitations(round_code="demo", unit_code="19", count=1)
        Invitation.objects.filter(pk=invitation.pk).update(used_at="2025-03-01T08:00:00+00:00")
        (row,) = read_csv(invitations_csv(Invitation.objects.all(), base_url=BASE))
        assert row["used"].startswith("2025-03-01T")


class TestAdmin:
    def test_generate_answers_a_csv_download_of_the_new_invitations(
        self, manager_client: Client, sipas
    ) -> None:
        survey_round = Round.objects.get(code="demo")
        unit = Unit.objects.get(code="19")
        response = manager_client.post(
            GENERATE_URL,
            {"round": survey_round.pk, "unit": unit.pk, "count": 25, "batch": "Đợt 1"},
        )
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = read_csv(streamed(response))
        assert len(rows) == 25
        assert {r["batch"] for r in rows} == {"Đợt 1"}
        assert set(Invitation.objects.values_list("token", flat=True)) == {r["token"] for r in rows}
        assert all(r["link"] == f"http://testserver/i/{r['token']}/" for r in rows)

    def test_links_point_where_the_admin_was_reached_or_to_public_base_url(
        self, manager_client: Client, sipas, settings
    ) -> None:
        data = {"round": Round.objects.get(code="demo").pk, "unit": Unit.objects.get(code="19").pk}
        settings.ALLOWED_HOSTS = ["127.0.0.1"]
        served = manager_client.post(GENERATE_URL, {**data, "count": 1}, HTTP_HOST="127.0.0.1:9000")
        (row,) = read_csv(streamed(served))
        assert row["link"] == f"http://127.0.0.1:9000/i/{row['token']}/"
        settings.PUBLIC_BASE_URL = "https://khaosat.example.vn/"
        configured = manager_client.post(GENERATE_URL, {**data, "count": 1}, HTTP_HOST="127.0.0.1")
        (row,) = read_csv(streamed(configured))
        assert row["link"] == f"https://khaosat.example.vn/i/{row['token']}/"

    def test_the_add_button_opens_the_generate_form(self, manager_client: Client, sipas) -> None:
        response = manager_client.get(reverse("admin:feedback_invitation_add"))
        assert response.status_code == 200
        assert b'id="generate-invitations-form"' in response.content

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"count": 0}, "count"),
            ({"count": 10_001}, "count"),
            ({"count": "many"}, "count"),
            ({"unit": "19-2025"}, "unit"),
            ({"round": 999_999}, "round"),
            ({"agency": "other-unit"}, "agency"),
            ({"batch": "=cmd"}, "batch"),
        ],
    )
    def test_invalid_input_shows_form_errors_and_generates_nothing(
        self, manager_client: Client, sipas, changes: dict[str, Any], field: str
    ) -> None:
        data: dict[str, Any] = {
            "round": Round.objects.get(code="demo").pk,
            "unit": Unit.objects.get(code="19").pk,
            "count": 5,
        }
        if changes.get("unit"):
            changes["unit"] = Unit.objects.get(code=changes["unit"]).pk
        if changes.get("agency"):
            other = Agency.objects.create(unit=Unit.objects.get(code="01"), code="x", name_vi="X")
            changes["agency"] = other.pk
        response = manager_client.post(GENERATE_URL, data | changes)
        assert response.status_code == 200
        assert field in response.context["form"].errors, response.context["form"].errors
        assert not Invitation.objects.exists()

    def test_download_selected_action_streams_only_the_selection(
        self, manager_client: Client, sipas
    ) -> None:
        created = generate_invitations(round_code="demo", unit_code="19", count=4)
        chosen = [created[0].pk, created[2].pk]
        response = manager_client.post(
            CHANGELIST_URL, {"action": "download_csv", "_selected_action": chosen}
        )
        assert response.status_code == 200
        rows = read_csv(streamed(response))
        assert [r["token"] for r in rows] == [created[0].token, created[2].token]

    def test_the_list_filters_by_batch_and_use(self, manager_client: Client, sipas) -> None:
        generate_invitations(round_code="demo", unit_code="19", count=2, batch="a")
        (used,) = generate_invitations(round_code="demo", unit_code="19", count=1, batch="b")
        Invitation.objects.filter(pk=used.pk).update(used_at="2025-03-01T08:00:00+00:00")
        by_batch = manager_client.get(CHANGELIST_URL, {"batch": "a"})
        assert by_batch.context["cl"].result_count == 2
        by_use = manager_client.get(CHANGELIST_URL, {"used": "yes"})
        assert [i.pk for i in by_use.context["cl"].result_list] == [used.pk]

    @pytest.mark.parametrize("url", [GENERATE_URL, CHANGELIST_URL, CHANGELIST_URL + "add/"])
    def test_staff_without_manage_invitations_are_refused(
        self, client: Client, sipas, url: str
    ) -> None:
        client.force_login(staff("view_response", "change_response"))
        assert client.get(url).status_code == 403
        survey_round = Round.objects.get(code="demo")
        response = client.post(
            GENERATE_URL, {"round": survey_round.pk, "unit": survey_round.units.first().pk}
        )
        assert response.status_code == 403
        assert not Invitation.objects.exists()

    def test_a_superuser_may_generate(self, admin_client: Client, sipas) -> None:
        survey_round = Round.objects.get(code="demo")
        response = admin_client.post(
            GENERATE_URL,
            {"round": survey_round.pk, "unit": Unit.objects.get(code="19").pk, "count": 1},
        )
        assert len(read_csv(streamed(response))) == 1


class TestResponseAdmin:
    def test_a_response_is_shown_read_only_with_its_answers_and_no_ip(
        self, client: Client, sipas
    ) -> None:
        submitted = post(client, payload(), REMOTE_ADDR="198.51.100.23")
        assert submitted.status_code == 201, submitted.json()
        response = Response.objects.get()
        client.force_login(staff("view_response"))
        listing = client.get("/admin/feedback/response/")
        assert listing.status_code == 200 and response.receipt in listing.content.decode()
        page = client.get(f"/admin/feedback/response/{response.pk}/change/")
        html = page.content.decode()
        assert page.status_code == 200
        assert "S01" in html and response.receipt in html
        assert "198.51.100.23" not in html
        assert 'name="_save"' not in html  # read-only
        assert client.get("/admin/feedback/response/add/").status_code == 403
        assert client.post(f"/admin/feedback/response/{response.pk}/delete/").status_code == 403

    def test_only_a_superuser_may_delete_a_response(self, admin_client: Client, sipas) -> None:
        admin_client.post(
            "/api/v1/responses/",
            {
                "round": "demo",
                "unit": "19",
                "client_id": str(uuid.uuid4()),
                "answers": valid_answers(),
            },
            content_type="application/json",
        )
        response = Response.objects.get()
        deleted = admin_client.post(
            f"/admin/feedback/response/{response.pk}/delete/", {"post": "yes"}
        )
        assert deleted.status_code == 302
        assert not Response.objects.exists()


class TestSingleUse:
    def test_a_generated_token_answers_once_through_the_api(self, client: Client, sipas) -> None:
        Round.objects.filter(code="demo").update(allow_open_link=False)
        (invitation,) = generate_invitations(round_code="demo", unit_code="19", count=1)

        def submit() -> Any:
            body = {
                "round": "demo",
                "unit": "19",
                "client_id": str(uuid.uuid4()),
                "token": invitation.token,
                "answers": valid_answers(),
            }
            return client.post("/api/v1/responses/", body, content_type="application/json")

        assert submit().status_code == 201
        again = submit()
        assert again.status_code == 400
        assert "token" in again.json()["fields"]
        assert Response.objects.count() == 1
        (row,) = read_csv(invitations_csv(Invitation.objects.all(), base_url=BASE))
        assert row["used"]
