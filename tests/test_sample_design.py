"""The sample design is data: a response's stratum and PSU through the API, paper import,
invitations and the staff export, and the defaults scoring reads (feedback/design.py)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client

from feedback import design
from feedback.drafts import services as drafts
from feedback.invitations.services import generate_invitations, invitations_csv
from feedback.models import DESIGN_CODE_MAX_LENGTH, Invitation, Response
from feedback.services import submit_response
from surveys.models import Round, StratumPopulation, Unit
from tests import results_fixtures, test_invitations
from tests.results_fixtures import ROUND
from tests.support.downloads import csv_rows, streamed, xlsx_sheets
from tests.support.paper import HEADER, csv_bytes, errors_by_row, imported, row, xlsx_bytes
from tests.support.responses import payload, post

GENERATE_URL = "/admin/feedback/invitation/generate/"
pytestmark = pytest.mark.django_db
staff_client = results_fixtures.staff_client
published = results_fixtures.published
manager_client = test_invitations.manager_client

TOO_LONG = "x" * (DESIGN_CODE_MAX_LENGTH + 1)


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Any:
    cache.clear()
    yield
    cache.clear()


def stored(response: Any) -> Response:
    assert response.status_code == 201, response.json()
    return Response.objects.get(receipt=response.json()["receipt"])


class TestDefaults:
    def test_empty_stratum_is_the_unit_and_empty_psu_the_response_itself(self, sipas) -> None:
        plain = stored(post(Client(), payload()))
        designed = stored(post(Client(), payload(stratum="north", psu="19-TanCuong")))
        assert (plain.stratum, plain.psu) == ("", "")  # kept empty in storage
        assert design.design_of(plain) == design.Design(
            stratum="unit:19", psu=f"response:{plain.pk}"
        )
        assert design.design_of(designed) == design.Design(
            stratum="stratum:north", psu="psu:19-TanCuong"
        )

    def test_the_queryset_annotation_gives_the_same_codes_as_design_of(self, sipas) -> None:
        responses = [
            stored(post(Client(), payload(**fields)))
            for fields in ({}, {"psu": "v1"}, {"stratum": "s"}, {"psu": "v1", "stratum": "s"})
        ]
        annotated = {
            r.pk: design.Design(r.design_stratum, r.design_psu)
            for r in design.with_design(Response.objects.all())
        }
        assert annotated == {r.pk: design.design_of(r) for r in responses}
        assert len({d.psu for d in annotated.values()}) == 3  # the two "v1" share one PSU

    def test_a_given_code_never_equals_a_default_one(self, sipas) -> None:
        unit_code = stored(post(Client(), payload(stratum="19")))
        assert design.design_of(unit_code).stratum != "unit:19"


class TestStratumPopulations:
    def test_sizes_are_keyed_like_the_strata_of_design_of(self, sipas) -> None:
        survey_round = Round.objects.get(code="demo")
        StratumPopulation.objects.create(round=survey_round, stratum="north", population=1200)
        StratumPopulation.objects.create(
            round=survey_round, unit=Unit.objects.get(code="19"), population=90_000
        )
        plain = stored(post(Client(), payload()))
        designed = stored(post(Client(), payload(stratum="north")))
        sizes = design.stratum_populations(survey_round)
        assert sizes == {"stratum:north": 1200, "unit:19": 90_000}
        assert sizes[design.design_of(plain).stratum] == 90_000
        assert sizes[design.design_of(designed).stratum] == 1200
        other = Round.objects.exclude(pk=survey_round.pk).first()
        assert design.stratum_populations(other) == {}

    @pytest.mark.parametrize(
        "fields",
        [
            {"stratum": "north", "unit_code": "19"},  # both
            {},  # neither
            {"stratum": "north", "population": 0},  # not a population
        ],
    )
    def test_the_database_refuses_an_ambiguous_or_empty_size(self, sipas, fields) -> None:
        unit = Unit.objects.get(code=fields.pop("unit_code")) if "unit_code" in fields else None
        values = {"population": 10} | fields
        with pytest.raises(IntegrityError), transaction.atomic():
            StratumPopulation.objects.create(
                round=Round.objects.get(code="demo"), unit=unit, **values
            )

    def test_a_stratum_has_one_size_per_round(self, sipas) -> None:
        survey_round = Round.objects.get(code="demo")
        StratumPopulation.objects.create(round=survey_round, stratum="north", population=10)
        with pytest.raises(IntegrityError), transaction.atomic():
            StratumPopulation.objects.create(round=survey_round, stratum="north", population=20)

    def test_the_round_admin_edits_the_sizes(self, admin_client: Client, sipas) -> None:
        survey_round = Round.objects.get(code="demo")
        page = admin_client.get(f"/admin/surveys/round/{survey_round.pk}/change/")
        assert page.status_code == 200
        assert b"stratum_populations-TOTAL_FORMS" in page.content


class TestApi:
    def test_psu_and_stratum_are_stored_as_sent(self, client: Client, sipas) -> None:
        response = stored(post(client, payload(psu=" Xã Tân Cương ", stratum="miền núi")))
        # Surrounding spaces are removed, as in paper import: " v1" and "v1" are one PSU.
        assert (response.psu, response.stratum) == ("Xã Tân Cương", "miền núi")

    @pytest.mark.parametrize("field", ["psu", "stratum"])
    def test_a_code_too_long_is_a_400_naming_the_field(
        self, client: Client, sipas, field: str
    ) -> None:
        response = post(client, payload(**{field: TOO_LONG}))
        assert response.status_code == 400
        assert set(response.json()["fields"]) == {field}
        assert not Response.objects.exists()
        assert post(client, payload(**{field: "x" * DESIGN_CODE_MAX_LENGTH})).status_code == 201

    @pytest.mark.parametrize("text", ["v\x00illage", "v\ud800"])
    def test_text_that_cannot_be_stored_is_a_400_naming_psu(
        self, client: Client, sipas, text: str
    ) -> None:
        response = post(client, payload(psu=text))
        assert response.status_code == 400
        assert "psu" in response.json()["fields"]
        assert not Response.objects.exists()

    def test_the_service_refuses_a_code_too_long_too(self, sipas) -> None:
        with pytest.raises(ValidationError) as refused:
            submit_response(
                round_code="demo",
                unit_code="19",
                answers=payload()["answers"],
                channel=Response.Channel.API,
                stratum=TOO_LONG,
            )
        assert set(refused.value.message_dict) == {"stratum"}

    def test_a_repeat_with_another_psu_is_a_conflict(self, client: Client, sipas) -> None:
        body = payload(psu="v1")
        assert post(client, body).status_code == 201
        assert post(client, body).status_code == 201  # the same: a replay
        assert post(client, {**body, "psu": "v2"}).status_code == 409
        assert Response.objects.get().psu == "v1"

    def test_the_schema_documents_the_fields(self, client: Client) -> None:
        schema = client.get("/api/schema/", {"format": "json"}).json()
        properties = schema["components"]["schemas"]["ResponseSubmissionRequest"]["properties"]
        for field in ("psu", "stratum"):
            assert properties[field]["maxLength"] == DESIGN_CODE_MAX_LENGTH
            assert properties[field]["description"]


class TestInvitations:
    def invite(self, **design_fields: str) -> Invitation:
        (invitation,) = generate_invitations(
            round_code="demo", unit_code="19", count=1, **design_fields
        )
        return invitation

    def test_every_invitation_of_a_batch_carries_its_psu_and_stratum(self, sipas) -> None:
        generate_invitations(
            round_code="demo", unit_code="19", count=3, batch="b", psu="v7", stratum="s1"
        )
        assert set(Invitation.objects.values_list("psu", "stratum")) == {("v7", "s1")}
        rows = list(
            csv.DictReader(
                io.StringIO("".join(invitations_csv(Invitation.objects.all(), base_url="/")))
            )
        )
        assert {(r["psu"], r["stratum"]) for r in rows} == {("v7", "s1")}

    @pytest.mark.parametrize(
        ("fields", "named"),
        [({"psu": TOO_LONG}, "psu"), ({"stratum": TOO_LONG}, "stratum"), ({"psu": "=1+1"}, "psu")],
    )
    def test_a_bad_code_is_refused_naming_the_field(self, sipas, fields, named) -> None:
        with pytest.raises(ValidationError) as refused:
            generate_invitations(round_code="demo", unit_code="19", count=1, **fields)
        assert set(refused.value.message_dict) == {named}
        assert not Invitation.objects.exists()

    def test_a_response_takes_the_invitations_psu_and_stratum(self, client: Client, sipas) -> None:
        invitation = self.invite(psu="v7", stratum="s1")
        response = stored(post(client, payload(token=invitation.token)))
        assert (response.psu, response.stratum) == ("v7", "s1")

    def test_sending_the_same_psu_as_the_invitation_is_accepted(
        self, client: Client, sipas
    ) -> None:
        invitation = self.invite(psu="v7")
        response = stored(post(client, payload(token=invitation.token, psu=" v7", stratum="s2")))
        assert (response.psu, response.stratum) == ("v7", "s2")

    @pytest.mark.parametrize("field", ["psu", "stratum"])
    def test_another_code_than_the_invitations_is_a_400_and_the_token_stays_unused(
        self, client: Client, sipas, field: str
    ) -> None:
        invitation = self.invite(psu="v7", stratum="s1")
        response = post(client, payload(token=invitation.token, **{field: "other"}))
        assert response.status_code == 400
        assert set(response.json()["fields"]) == {field}
        assert not Response.objects.exists()
        invitation.refresh_from_db()
        assert invitation.used_at is None
        assert post(client, payload(token=invitation.token)).status_code == 201

    def test_a_web_response_from_an_invitation_link_takes_its_design(self, sipas) -> None:
        invitation = self.invite(psu="v7", stratum="s1")
        draft = drafts.start_draft(invitation_token=invitation.token)
        submission = drafts.submit_draft(draft=draft, answers=payload()["answers"])
        response = submission.response
        assert (response.channel, response.psu, response.stratum) == ("web", "v7", "s1")

    def test_an_invitation_without_a_design_keeps_what_the_client_sends(
        self, client: Client, sipas
    ) -> None:
        invitation = self.invite()
        response = stored(post(client, payload(token=invitation.token, psu="v9")))
        assert response.psu == "v9"

    def test_the_admin_generates_a_batch_with_a_psu(self, manager_client: Client, sipas) -> None:
        data = {
            "round": Round.objects.get(code="demo").pk,
            "unit": Unit.objects.get(code="19").pk,
            "count": 4,
            "batch": "Đợt 1",
            "psu": "Thôn Đông",
            "stratum": "nông thôn",
        }
        response = manager_client.post(GENERATE_URL, data)
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(streamed(response))))
        assert {(r["psu"], r["stratum"]) for r in rows} == {("Thôn Đông", "nông thôn")}
        assert Invitation.objects.filter(psu="Thôn Đông", stratum="nông thôn").count() == 4

    def test_the_admin_shows_a_code_too_long_as_a_form_error(
        self, manager_client: Client, sipas
    ) -> None:
        data = {
            "round": Round.objects.get(code="demo").pk,
            "unit": Unit.objects.get(code="19").pk,
            "count": 4,
            "psu": TOO_LONG,
        }
        response = manager_client.post(GENERATE_URL, data)
        assert response.status_code == 200
        assert "psu" in response.context["form"].errors
        assert not Invitation.objects.exists()


class TestPaperImport:
    DESIGN_HEADER = [*HEADER, "psu", "stratum"]

    @pytest.mark.parametrize("kind", ["csv", "xlsx"])
    def test_psu_and_stratum_columns_are_stored(self, sipas, kind: str) -> None:
        rows = [[*row("F-1"), "V-01", "S-A"], [*row("F-2"), "", ""], [*row("F-3"), 17, ""]]
        if kind == "csv":
            done = imported(csv_bytes(rows, header=self.DESIGN_HEADER))
        else:
            done = imported(xlsx_bytes(rows, header=self.DESIGN_HEADER), file_name="f.xlsx")
        assert done.accepted_rows == 3, done.report
        assert sorted(Response.objects.values_list("psu", "stratum")) == [
            ("", ""),
            ("17", ""),
            ("V-01", "S-A"),
        ]

    @pytest.mark.parametrize("column", ["psu", "stratum"])
    def test_a_code_too_long_is_a_row_error_naming_the_column(self, sipas, column: str) -> None:
        cells = {"psu": "", "stratum": "", column: TOO_LONG}
        rows = [[*row("F-1"), cells["psu"], cells["stratum"]], [*row("F-2"), "v", "s"]]
        done = imported(csv_bytes(rows, header=self.DESIGN_HEADER))
        assert (done.accepted_rows, done.rejected_rows) == (1, 1)
        errors = errors_by_row(done)
        assert set(errors[2]) == {column}
        assert TOO_LONG not in errors[2][column]  # the report never repeats a cell's value
        assert Response.objects.get().psu == "v"

    def test_a_form_without_row_id_is_the_same_form_only_with_the_same_psu(self, sipas) -> None:
        first = imported(csv_bytes([[*row(""), "v1", ""]], header=self.DESIGN_HEADER))
        again = imported(csv_bytes([[*row(""), "v1", ""]], header=self.DESIGN_HEADER))
        other = imported(csv_bytes([[*row(""), "v2", ""]], header=self.DESIGN_HEADER))
        assert first.accepted_rows == 1 and again.accepted_rows == 0
        assert other.accepted_rows == 1
        assert sorted(Response.objects.values_list("psu", flat=True)) == ["v1", "v2"]


class TestExports:
    def test_the_staff_export_has_stratum_and_psu(self, staff_client: Client, sipas) -> None:
        stored(post(Client(), payload(psu="=v1", stratum="s1")))
        stored(post(Client(), payload()))
        header, *rows = csv_rows(staff_client.get("/api/v1/rounds/demo/responses.csv"))
        column = {name: i for i, name in enumerate(header)}
        assert [(r[column["stratum"]], r[column["psu"]]) for r in rows] == [
            ("s1", "'=v1"),  # a code is never a formula
            ("", ""),
        ]
        sheet = xlsx_sheets(staff_client.get("/api/v1/rounds/demo/responses.xlsx"))["responses"]
        assert [(r[column["stratum"]], r[column["psu"]]) for r in sheet[1:]] == [
            ("s1", "=v1"),
            (None, None),
        ]

    def test_the_response_admin_shows_the_design(self, admin_client: Client, sipas) -> None:
        response = stored(post(Client(), payload(psu="Thôn Đông", stratum="nông thôn")))
        page = admin_client.get(f"/admin/feedback/response/{response.pk}/change/")
        assert page.status_code == 200
        assert "Thôn Đông" in page.text and "nông thôn" in page.text

    def test_public_exports_do_not_gain_the_design(self, client: Client, published) -> None:
        Response.objects.update(psu="village", stratum="stratum")
        scores = csv_rows(client.get(f"/api/v1/rounds/{ROUND}/scores.csv"))
        codebook = csv_rows(client.get(f"/api/v1/rounds/{ROUND}/codebook.csv"))
        for table in (scores, codebook):
            cells = {cell for line in table for cell in line}
            assert not cells & {"psu", "stratum", "village"}
