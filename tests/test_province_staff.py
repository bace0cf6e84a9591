"""Province staff run their own surveys (issue 17, item 3): every role against every door.

Roles: staff of province A, staff of province B, national staff (the same model permissions,
no province), a superuser, staff without the role (no permissions), a member of the group
with no province set, and the public. Doors: admin list, change and add pages with their
querysets, form choices and forged POST ids; the raw responses export, paper imports,
recompute and run APIs; the public results (local rounds never there).

One world is built per module inside a transaction rolled back at the end; each test runs
in a savepoint of it, so the whole module stays quick.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from feedback.models import Invitation, PaperImport, Response
from results import selectors as results_selectors
from scoring.models import Run, Score
from scoring.services import recompute_round
from surveys import scoping
from surveys.models import Agency, Questionnaire, QuestionnaireVersion, Round, Unit
from surveys.services import publish_version
from tests.factories import RoundFactory, small_draft, submitted_response
from tests.support import provinces
from tests.support.browser import PASSWORD
from tests.support.hostile_input import ANY_CHARACTER, FEWER_EXAMPLES
from tests.support.provinces import login, province_roles, two_provinces

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def answer(round_code: str, unit: str, sat: int) -> Response:
    return submitted_response(round_code, unit, {"USED": True, "SAT": sat})


def published_draft(code: str, owner: Unit | None = None) -> QuestionnaireVersion:
    version = small_draft()
    questionnaire = version.questionnaire
    questionnaire.code, questionnaire.owner_unit = code, owner
    questionnaire.save()
    return publish_version(version_id=version.pk)


def build_world() -> SimpleNamespace:
    w = SimpleNamespace()
    two_provinces(w)
    w.national_version = published_draft("sipas")
    w.version_b = published_draft("rieng-b", owner=w.b)
    # The next number of its questionnaire, whatever the factory's sequence has reached.
    w.draft_b = QuestionnaireVersion.objects.create(
        questionnaire=w.version_b.questionnaire, number=w.version_b.number + 1
    )
    w.nat = RoundFactory(code="nat", version=w.national_version, units=[w.a, w.b])
    w.loc_a = RoundFactory(code="loc-a", version=w.national_version, units=[w.a], owner_unit=w.a)
    w.loc_b = RoundFactory(code="loc-b", version=w.version_b, units=[w.b], owner_unit=w.b)
    for code, unit in (("nat", "PA"), ("nat", "PB"), ("loc-a", "PA"), ("loc-b", "PB")):
        for sat in (5, 4, 2):
            answer(code, unit, sat)
    w.response_b = Response.objects.filter(round=w.loc_b).first()
    w.response_a = Response.objects.filter(round=w.loc_a).first()
    w.invitation_a = Invitation.objects.create(round=w.loc_a, unit=w.a, batch="lo-a")
    w.invitation_b = Invitation.objects.create(round=w.loc_b, unit=w.b, batch="lo-b")
    w.import_a = PaperImport.objects.create(round=w.loc_a, file_name="a.csv", content=b"")
    w.import_b = PaperImport.objects.create(round=w.loc_b, file_name="b.csv", content=b"")
    w.run_nat = recompute_round(round_code="nat")
    w.run_a = recompute_round(round_code="loc-a")
    w.run_b = recompute_round(round_code="loc-b")

    province_roles(w)
    users = get_user_model().objects
    w.orphan = users.create_user("orphan", password=PASSWORD, is_staff=True)
    w.orphan.groups.add(scoping.ensure_group())
    return w


world = provinces.world


# --- The scope ---------------------------------------------------------------------------


def test_each_role_has_its_scope(world: SimpleNamespace) -> None:
    assert scoping.scope_of(world.staff_a).unit_id == world.a.pk
    assert scoping.scope_of(world.staff_b).unit_id == world.b.pk
    for user in (world.national, world.superuser, world.plain):
        assert scoping.is_national(get_user_model().objects.get(pk=user.pk))
    orphan = get_user_model().objects.get(pk=world.orphan.pk)
    assert scoping.scope_of(orphan) == scoping.NOTHING
    assert not scoping.rounds_for(orphan).exists()
    assert list(scoping.rounds_for(world.staff_a)) == [world.loc_a]
    assert set(scoping.rounds_for(world.national)) == {world.nat, world.loc_a, world.loc_b}


def test_the_group_is_made_once_with_its_permissions(world: SimpleNamespace) -> None:
    group = scoping.ensure_group()
    assert scoping.ensure_group().pk == group.pk
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
    # The surveys' own list, and what the action plans add (a province coordinates its plans).
    from plans.apps import PROVINCE_STAFF_PERMISSIONS

    plans = {f"plans.{codename}" for codename in PROVINCE_STAFF_PERMISSIONS}
    assert granted == set(scoping.GROUP_PERMISSIONS) | plans
    staff_a = get_user_model().objects.get(pk=world.staff_a.pk)
    assert staff_a.is_staff and staff_a.has_perm("feedback.import_paper_forms")
    assert not staff_a.has_perm("feedback.review_response")


# --- Admin lists and change pages ----------------------------------------------------------

LISTS = {
    # admin list → attribute names of the world's objects of province A and of province B
    "surveys_round": (["loc_a"], ["loc_b", "nat"]),
    "surveys_questionnaire": ([], ["questionnaire_b", "questionnaire_nat"]),
    "surveys_questionnaireversion": ([], ["version_b", "draft_b", "national_version"]),
    "feedback_response": (["response_a"], ["response_b"]),
    "feedback_invitation": (["invitation_a"], ["invitation_b"]),
    "feedback_paperimport": (["import_a"], ["import_b"]),
    "scoring_run": (["run_a"], ["run_b", "run_nat"]),
    "surveys_unit": (["a"], ["b"]),
    "surveys_agency": (["a_build"], ["b_build"]),
}


def world_object(world: SimpleNamespace, name: str) -> Any:
    if name == "questionnaire_b":
        return world.version_b.questionnaire
    if name == "questionnaire_nat":
        return world.national_version.questionnaire
    return getattr(world, name)


@pytest.mark.parametrize("admin_list", sorted(LISTS))
def test_province_staff_list_only_their_province(world: SimpleNamespace, admin_list: str) -> None:
    own, others = LISTS[admin_list]
    url = reverse(f"admin:{admin_list}_changelist")
    page = login(world.staff_a).get(url)
    assert page.status_code == 200
    listed = set(page.context["cl"].queryset)
    assert {world_object(world, n) for n in own} <= listed
    assert not {world_object(world, n) for n in others} & listed
    for name in others:  # nor its change page
        obj = world_object(world, name)
        change = login(world.staff_a).get(reverse(f"admin:{admin_list}_change", args=[obj.pk]))
        assert change.status_code == 302 and change.url == reverse("admin:index")
    national = login(world.national).get(url)
    assert {world_object(world, n) for n in own + others} <= set(national.context["cl"].queryset)


def test_scores_of_a_local_round_only_for_its_province_and_national_staff(
    world: SimpleNamespace,
) -> None:
    url = reverse("admin:scoring_score_changelist")
    runs = {
        user.username: set(
            login(user).get(url).context["cl"].queryset.values_list("run_id", flat=True)
        )
        for user in (world.staff_a, world.staff_b, world.national)
    }
    assert runs["staff-a"] == {world.run_a.pk}
    assert runs["staff-b"] == {world.run_b.pk}
    assert runs["national"] == {world.run_nat.pk, world.run_a.pk, world.run_b.pk}


def test_list_filters_name_no_other_province(world: SimpleNamespace) -> None:
    for admin_list in ("feedback_response", "feedback_invitation", "scoring_run"):
        html = login(world.staff_a).get(reverse(f"admin:{admin_list}_changelist")).content
        # Round codes and unit names (not "PB": a random receipt may hold those letters).
        assert b"loc-b" not in html and "Tỉnh B".encode() not in html, admin_list
        assert b"loc-a" in html


@pytest.mark.parametrize("role", ["plain", None])
def test_staff_without_the_role_and_the_public_reach_no_admin_list(
    world: SimpleNamespace, role: str | None
) -> None:
    client = login(getattr(world, role) if role else None)
    for admin_list in LISTS:
        page = client.get(reverse(f"admin:{admin_list}_changelist"))
        assert page.status_code in (302, 403), admin_list


def test_the_orphan_member_of_the_group_sees_nothing(world: SimpleNamespace) -> None:
    page = login(world.orphan).get(reverse("admin:surveys_round_changelist"))
    assert page.status_code == 200 and not page.context["cl"].queryset.exists()


def test_attachments_of_another_province_are_not_served(world: SimpleNamespace) -> None:
    url = reverse(
        "admin:feedback_response_attachment",
        kwargs={"object_id": world.response_b.pk, "attachment_id": 1},
    )
    assert login(world.staff_a).get(url).status_code == 404


# --- Rounds: choices, forged ids, the model's own checks --------------------------------------


def round_post(world: SimpleNamespace, **changes: Any) -> dict[str, Any]:
    now = timezone.localtime()
    data = {
        "code": "loc-a-2",
        "name_vi": "Vòng riêng A",
        "name_en": "",
        "period_start": "2026-01-01",
        "period_end": "2026-06-30",
        "opens_at_0": (now - dt.timedelta(days=1)).strftime("%Y-%m-%d"),
        "opens_at_1": "00:00:00",
        "closes_at_0": (now + dt.timedelta(days=30)).strftime("%Y-%m-%d"),
        "closes_at_1": "00:00:00",
        "version": world.national_version.pk,
        "units": [world.a.pk],
        "allow_open_link": "on",
        "variance_method": "taylor",
        "national_value": "pooled",
        "stratum_populations-TOTAL_FORMS": "0",
        "stratum_populations-INITIAL_FORMS": "0",
        "stratum_populations-MIN_NUM_FORMS": "0",
        "stratum_populations-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_round_form_offers_only_the_province(world: SimpleNamespace) -> None:
    page = login(world.staff_a).get(reverse("admin:surveys_round_add"))
    form = page.context["adminform"].form
    assert list(form.fields["units"].queryset) == [world.a]
    assert set(form.fields["version"].queryset) == {world.national_version}  # not B's own
    assert "owner_unit" not in form.fields


@pytest.mark.parametrize(
    ("field", "forged"),
    [("units", "b"), ("version", "version_b"), ("units", "a_and_b")],
)
def test_a_forged_round_post_is_refused(world: SimpleNamespace, field: str, forged: str) -> None:
    value = [world.a.pk, world.b.pk] if forged == "a_and_b" else [getattr(world, forged).pk]
    data = round_post(world, **{field: value if field == "units" else value[0]})
    page = login(world.staff_a).post(reverse("admin:surveys_round_add"), data)
    assert page.status_code == 200
    assert field in page.context["adminform"].form.errors
    assert not Round.objects.filter(code="loc-a-2").exists()


def test_province_staff_create_a_local_round_of_their_own(world: SimpleNamespace) -> None:
    data = round_post(world, owner_unit=world.b.pk)  # a forged owner is ignored
    page = login(world.staff_a).post(reverse("admin:surveys_round_add"), data)
    assert page.status_code == 302, page.context["adminform"].form.errors
    created = Round.objects.get(code="loc-a-2")
    assert created.owner_unit == world.a and list(created.units.all()) == [world.a]
    assert (
        not login(world.staff_b)
        .get(reverse("admin:surveys_round_change", args=[created.pk]))
        .context
    )


def test_national_staff_cannot_mix_provinces_in_a_local_round(world: SimpleNamespace) -> None:
    data = round_post(world, owner_unit=world.a.pk, units=[world.a.pk, world.b.pk])
    page = login(world.national).post(reverse("admin:surveys_round_add"), data)
    assert "units" in page.context["adminform"].form.errors


def test_the_model_keeps_a_local_round_to_its_province_whatever_writes(
    world: SimpleNamespace,
) -> None:
    with pytest.raises(ValidationError) as refused, transaction.atomic():
        world.loc_a.units.add(world.b)
    assert "units" in refused.value.message_dict
    with pytest.raises(ValidationError), transaction.atomic():
        world.b.rounds.add(world.loc_a)
    world.loc_a.version = world.version_b
    with pytest.raises(ValidationError) as wrong_version:
        world.loc_a.full_clean()
    assert "version" in wrong_version.value.message_dict
    world.loc_a.refresh_from_db()


def test_recompute_button_of_another_province_round_is_refused(world: SimpleNamespace) -> None:
    url = reverse("admin:surveys_round_recompute", args=[world.loc_b.pk])
    before = Run.objects.filter(round=world.loc_b).count()
    assert login(world.staff_a).post(url).status_code == 302
    assert Run.objects.filter(round=world.loc_b).count() == before


def test_recompute_form_offers_own_rounds_and_refuses_a_forged_one(
    world: SimpleNamespace,
) -> None:
    client = login(world.staff_a)
    url = reverse("admin:scoring_run_recompute")
    form = client.get(url).context["form"]
    assert list(form.fields["round"].queryset) == [world.loc_a]
    page = client.post(url, {"round": "loc-b"})
    assert "round" in page.context["form"].errors


# --- Invitations and paper imports ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "forged"), [("round", "loc-b"), ("unit", "b"), ("agency", "b_build")]
)
def test_invitations_for_another_province_are_refused(
    world: SimpleNamespace, field: str, forged: str
) -> None:
    data = {"round": world.loc_a.pk, "unit": world.a.pk, "agency": "", "count": 2}
    data[field] = world.loc_b.pk if forged == "loc-b" else getattr(world, forged).pk
    before = Invitation.objects.count()
    page = login(world.staff_a).post(reverse("admin:feedback_invitation_generate"), data)
    assert page.status_code == 200 and field in page.context["form"].errors
    assert Invitation.objects.count() == before


def test_invitations_for_the_own_local_round(world: SimpleNamespace) -> None:
    client = login(world.staff_a)
    url = reverse("admin:feedback_invitation_generate")
    form = client.get(url).context["form"]
    assert list(form.fields["round"].queryset) == [world.loc_a]
    assert list(form.fields["agency"].queryset) == [world.a_build]
    data = {"round": world.loc_a.pk, "unit": world.a.pk, "agency": world.a_build.pk, "count": 2}
    answer_ = client.post(url, data)
    assert answer_.status_code == 200 and answer_["Content-Type"].startswith("text/csv")
    assert Invitation.objects.filter(round=world.loc_a, agency=world.a_build).count() == 2


def paper_file(unit: str = "PA") -> SimpleUploadedFile:
    return SimpleUploadedFile("forms.csv", f"unit,USED,SAT\n{unit},1,5\n".encode())


def test_paper_import_admin_refuses_a_forged_round(world: SimpleNamespace) -> None:
    url = reverse("admin:feedback_paperimport_add")
    client = login(world.staff_a)
    form = client.get(url).context["adminform"].form
    assert list(form.fields["round"].queryset) == [world.loc_a]
    page = client.post(url, {"round": world.loc_b.pk, "file": paper_file("PB")})
    assert "round" in page.context["adminform"].form.errors


def test_paper_import_api_by_role(world: SimpleNamespace) -> None:
    url = reverse("v1:paper-imports")
    forged = login(world.staff_a).post(url, {"round": "loc-b", "file": paper_file("PB")})
    assert forged.status_code == 400 and "round" in forged.json()["fields"]
    national = login(world.national).post(url, {"round": "nat", "file": paper_file("PB")})
    assert national.status_code == 201
    own = login(world.staff_a).post(url, {"round": "loc-a", "file": paper_file("PA")})
    assert own.status_code == 201 and own.json()["accepted_rows"] == 1
    other_unit = login(world.staff_a).post(url, {"round": "loc-a", "file": paper_file("PB")})
    assert other_unit.json()["rejected_rows"] == 1  # a unit outside the round: a row error
    assert login(world.plain).post(url, {"round": "loc-a", "file": paper_file()}).status_code == 403
    assert Client().post(url, {"round": "loc-a", "file": paper_file()}).status_code in (401, 403)


@pytest.mark.parametrize(
    ("role", "own", "other"),
    [("staff_a", 200, 404), ("staff_b", 404, 200), ("national", 200, 200), ("plain", 403, 403)],
)
def test_paper_import_detail_by_role(
    world: SimpleNamespace, role: str, own: int, other: int
) -> None:
    client = login(getattr(world, role))
    assert client.get(reverse("v1:paper-import", args=[world.import_a.pk])).status_code == own
    assert client.get(reverse("v1:paper-import", args=[world.import_b.pk])).status_code == other


# --- Raw responses, recompute and runs through the API -----------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("staff_a", {"loc-a": 200, "loc-b": 404, "nat": 404}),
        ("staff_b", {"loc-a": 404, "loc-b": 200, "nat": 404}),
        ("national", {"loc-a": 200, "loc-b": 200, "nat": 200}),
        ("superuser", {"loc-a": 200, "loc-b": 200, "nat": 200}),
        ("plain", {"loc-a": 403, "loc-b": 403, "nat": 403}),
        ("orphan", {"loc-a": 404, "loc-b": 404, "nat": 404}),
        (None, {"loc-a": 401, "loc-b": 401, "nat": 401}),
    ],
)
def test_raw_responses_export_by_role(
    world: SimpleNamespace, role: str | None, expected: dict[str, int]
) -> None:
    client = login(getattr(world, role) if role else None)
    for code, status in expected.items():
        answer_ = client.get(reverse("v1:responses-csv", args=[code]))
        assert answer_.status_code == status, (role, code)
        if status == 200:
            content = b"".join(answer_.streaming_content)
            assert content.count(b"\n") == 1 + Response.objects.filter(round__code=code).count()
        codebook = client.get(reverse("v1:codebook-csv", args=[code]))
        assert codebook.status_code == (200 if status == 200 or code == "nat" else 404)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("staff_a", {"loc-a": 202, "loc-b": 404, "nat": 404}),
        ("national", {"loc-a": 202, "loc-b": 202, "nat": 202}),
        ("plain", {"loc-a": 403, "loc-b": 403, "nat": 403}),
        (None, {"loc-a": 401, "loc-b": 401, "nat": 401}),
    ],
)
def test_recompute_api_by_role(
    world: SimpleNamespace, role: str | None, expected: dict[str, int]
) -> None:
    client = login(getattr(world, role) if role else None)
    for code, status in expected.items():
        before = Run.objects.filter(round__code=code).count()
        answer_ = client.post(reverse("v1:round-recompute", args=[code]))
        assert answer_.status_code in {status, 403 if status == 401 else status}, (role, code)
        grown = Run.objects.filter(round__code=code).count() - before
        assert grown == (1 if status == 202 else 0)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("staff_a", {"run_a": 200, "run_b": 404, "run_nat": 200}),
        ("national", {"run_a": 200, "run_b": 200, "run_nat": 200}),
        ("plain", {"run_a": 404, "run_b": 404, "run_nat": 200}),
        (None, {"run_a": 404, "run_b": 404, "run_nat": 200}),
    ],
)
def test_run_detail_of_a_local_round_by_role(
    world: SimpleNamespace, role: str | None, expected: dict[str, int]
) -> None:
    client = login(getattr(world, role) if role else None)
    for name, status in expected.items():
        run = getattr(world, name)
        assert client.get(reverse("v1:run", args=[run.pk])).status_code == status, (role, name)


# --- Questionnaires ------------------------------------------------------------------------------


def test_province_staff_copy_sipas_into_their_own_draft(world: SimpleNamespace) -> None:
    client = login(world.staff_a)
    url = reverse("admin:surveys_questionnaire_copy")
    form = client.get(url).context["form"]
    assert set(form.fields["source"].queryset) == {world.national_version}
    assert form.fields["source"].initial == world.national_version.pk
    assert "owner_unit" not in form.fields
    data = {
        "source": world.national_version.pk,
        "code": "rieng-a",
        "title_vi": "Phiếu riêng tỉnh A",
        "owner_unit": world.b.pk,  # forged: ignored
    }
    page = client.post(url, data)
    assert page.status_code == 302
    copied = Questionnaire.objects.get(code="rieng-a")
    assert copied.owner_unit == world.a
    draft = copied.versions.get()
    assert draft.status == QuestionnaireVersion.Status.DRAFT
    assert draft.based_on == world.national_version
    assert set(draft.questions.values_list("code", flat=True)) == {"USED", "SAT"}
    assert not scoping.questionnaires_for(world.staff_b).filter(pk=copied.pk).exists()


def test_copy_refuses_another_province_version_as_source(world: SimpleNamespace) -> None:
    url = reverse("admin:surveys_questionnaire_copy")
    data = {"source": world.version_b.pk, "code": "rieng-a", "title_vi": "A"}
    page = login(world.staff_a).post(url, data)
    assert "source" in page.context["form"].errors
    assert not Questionnaire.objects.filter(code="rieng-a").exists()


def test_questionnaire_views_of_another_province_are_404(world: SimpleNamespace) -> None:
    client = login(world.staff_a)
    for name in ("new_draft", "publish"):
        url = reverse(f"admin:surveys_questionnaireversion_{name}", args=[world.draft_b.pk])
        assert client.post(url).status_code == 404, name
    preview = reverse("feedback:version_preview", args=[world.draft_b.pk])
    assert client.get(preview).status_code == 404
    assert client.get(reverse("feedback:version_preview", args=[world.national_version.pk]))
    xlsform = reverse("v1:version-xlsform", args=["rieng-b", world.draft_b.number])
    assert client.get(xlsform).status_code == 404
    assert login(world.staff_b).get(xlsform).status_code == 200


def test_province_staff_cannot_import_a_national_xlsform(world: SimpleNamespace) -> None:
    upload = SimpleUploadedFile("form.xlsx", b"not really")
    answer_ = login(world.staff_a).post(reverse("v1:xlsform-import"), {"file": upload})
    assert answer_.status_code == 403


def test_questions_of_another_province_draft_are_not_offered(world: SimpleNamespace) -> None:
    section = world.version_b.sections.first()
    page = login(world.staff_a).get(reverse("admin:surveys_section_add"))
    assert (
        not page.context["adminform"]
        .form.fields["version"]
        .queryset.filter(questionnaire__owner_unit=world.b)
    )
    assert section is not None
    change = login(world.staff_a).get(reverse("admin:surveys_section_change", args=[section.pk]))
    assert change.status_code == 302


# --- Local rounds stay out of the public results ------------------------------------------------


def test_local_rounds_never_reach_the_public_results(world: SimpleNamespace) -> None:
    published = {p.round_id for p in results_selectors.publications()}
    assert world.nat.pk in published
    assert not {world.loc_a.pk, world.loc_b.pk} & published
    assert results_selectors.publication(round_code="loc-a") is None
    public = Client()
    assert public.get(reverse("v1:scores"), {"round": "loc-a"}).status_code == 400
    assert public.get(reverse("v1:rankings"), {"round": "loc-a", "indicator": "SAT"}).status_code
    listed = public.get(reverse("v1:rounds"), {"state": "published"}).json()["results"]
    assert {r["code"] for r in listed} == {"nat"}
    every = public.get(reverse("v1:rounds"), {"state": "all"}).json()["results"]
    assert {r["code"] for r in every} == {"nat"}
    # Open local rounds are listed for answering, without any run of theirs.
    open_ = {r["code"]: r for r in public.get(reverse("v1:rounds")).json()["results"]}
    assert {"nat", "loc-a", "loc-b"} <= set(open_)
    assert open_["nat"]["published_run"] is not None
    assert open_["loc-a"]["published_run"] is None
    runs = public.get(reverse("v1:runs")).json()["results"]
    assert {run["round"] for run in runs} == {"nat"}
    units = public.get(reverse("v1:units"), {"round": "loc-a"}).json()["results"]
    assert units == []
    index = public.get(reverse("dashboard:index")).content.decode()
    assert "loc-a" not in index and "loc-b" not in index
    assert public.get(reverse("dashboard:round", args=["loc-a"])).status_code == 404
    assert public.get(reverse("v1:scores-csv", args=["loc-a"])).status_code == 404
    # The national round's ranking holds national scores only.
    assert not Score.objects.filter(run=world.run_nat, unit__isnull=False).exclude(
        run__round__owner_unit__isnull=True
    )


def test_province_staff_cannot_subscribe_to_webhooks(world: SimpleNamespace) -> None:
    answer_ = login(world.staff_a).post(
        reverse("v1:webhooks"),
        {"url": "https://example.org/hook", "events": ["run.published"]},
        content_type="application/json",
    )
    assert answer_.status_code == 400 and "events" in answer_.json()["fields"]


# --- Hostile input in the copy form ------------------------------------------------------------


@FEWER_EXAMPLES
@given(
    field=st.sampled_from(["code", "title_vi", "title_en", "source"]),
    value=st.text(ANY_CHARACTER, max_size=30) | st.sampled_from(["1e400", "a\x00b", "9" * 40]),
)
def test_copy_form_answers_bad_input_with_a_named_4xx(
    world: SimpleNamespace, field: str, value: str
) -> None:
    from urllib.parse import quote_plus

    data = {
        "source": str(world.national_version.pk),
        "code": "ok-code",
        "title_vi": "Tiêu đề",
        "title_en": "",
        field: value,
    }
    body = "&".join(
        f"{quote_plus(k)}={quote_plus(str(v).encode('utf-8', 'surrogatepass'))}"
        for k, v in data.items()
    )
    before = Questionnaire.objects.count()
    with transaction.atomic():
        answer_ = login(world.staff_a).post(
            reverse("admin:surveys_questionnaire_copy"),
            body,
            content_type="application/x-www-form-urlencoded",
        )
        assert answer_.status_code in (200, 302, 400), answer_.status_code
        if answer_.status_code == 302:
            assert Questionnaire.objects.count() == before + 1
        else:
            assert Questionnaire.objects.count() == before
        if answer_.status_code == 200:  # the form again, the field's error beside it
            assert field in answer_.context["form"].errors
        transaction.set_rollback(True)


def test_webhook_events_skip_subscriptions_of_province_staff(world: SimpleNamespace) -> None:
    from webhooks.models import Subscription
    from webhooks.services import _subscribers

    mine = Subscription.objects.create(
        owner=world.staff_a, url="https://example.org/a", events=["run.published"]
    )
    national = Subscription.objects.create(
        owner=world.national, url="https://example.org/n", events=["run.published"]
    )
    orphan = Subscription.objects.create(
        owner=world.orphan, url="https://example.org/o", events=["run.published"]
    )
    root = Subscription.objects.create(
        owner=world.superuser, url="https://example.org/r", events=["run.published"]
    )
    found = set(_subscribers("run.published"))
    assert national in found and root in found
    assert mine not in found and orphan not in found


def test_province_staff_add_questionnaires_of_their_own(world: SimpleNamespace) -> None:
    client = login(world.staff_a)
    data = {"code": "moi-a", "title_vi": "Phiếu mới", "owner_unit": world.b.pk}
    assert client.post(reverse("admin:surveys_questionnaire_add"), data).status_code == 302
    assert Questionnaire.objects.get(code="moi-a").owner_unit == world.a
    # A version under another province's questionnaire: refused as an unknown choice.
    forged = {"questionnaire": world.version_b.questionnaire_id, "number": 7, "label": ""}
    for prefix in ("sections", "policy_groups"):
        forged.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    page = client.post(reverse("admin:surveys_questionnaireversion_add"), forged)
    assert "questionnaire" in page.context["adminform"].form.errors
    assert not QuestionnaireVersion.objects.filter(
        questionnaire_id=world.version_b.questionnaire_id, number=7
    ).exists()


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("staff_a", {"loc-a": 200, "nat": 400, "loc-a,nat": 400}),
        ("staff_b", {"loc-a": 404, "nat": 404}),  # no round of this questionnaire: unknown
        ("national", {"loc-a": 200, "nat": 200, "loc-a,nat": 200}),
        ("plain", {"loc-a": 403, "nat": 403}),
        (None, {"loc-a": 401, "nat": 401}),
    ],
)
def test_cross_round_export_by_role(
    world: SimpleNamespace, role: str | None, expected: dict[str, int]
) -> None:
    client = login(getattr(world, role) if role else None)
    for rounds, status in expected.items():
        answer_ = client.get(reverse("v1:series-responses-csv", args=["sipas"]), {"rounds": rounds})
        assert answer_.status_code == status, (role, rounds)
        if status == 400:
            assert "rounds" in answer_.json()["fields"]
        if role == "staff_a":  # B's own questionnaire is unknown to A, as a code that is not
            other = client.get(
                reverse("v1:series-responses-csv", args=["rieng-b"]), {"rounds": "loc-b"}
            )
            assert other.status_code == 404
        if status == 200:
            lines = b"".join(answer_.streaming_content).decode().splitlines()
            codes = set(rounds.split(","))
            assert len(lines) == 1 + Response.objects.filter(round__code__in=codes).count()


@pytest.mark.parametrize("role", ["staff_a", "staff_b", "national", None])
def test_no_diagnosis_of_a_local_round_is_served(world: SimpleNamespace, role: str | None) -> None:
    client = login(getattr(world, role) if role else None)
    for url in (
        "/api/v1/rounds/loc-a/units/PA/diagnosis/",
        "/api/v1/rounds/loc-a/units/PA/diagnosis.pdf",
        "/results/loc-a/units/PA/diagnosis/",
    ):
        assert client.get(url).status_code == 404, (role, url)
    assert client.get("/api/v1/rounds/nat/units/PA/diagnosis/").status_code == 200


def test_province_staff_plan_for_their_province_only(world: SimpleNamespace) -> None:
    from plans.models import Task

    def task_of(agency: Agency) -> Task:
        return Task.objects.create(
            round=world.nat, unit=agency.unit, agency=agency, indicator_code="SAT",
            title="Rút ngắn thời gian", target_kind="above_national", working_days=10,
            deadline=dt.date(2027, 1, 29), created_by=world.superuser,
        )  # fmt: skip

    task_a, task_b = task_of(world.a_build), task_of(world.b_build)
    a, b = login(world.staff_a), login(world.staff_b)
    listing = a.get("/plans/").content.decode()
    assert "/plans/nat/PA/" in listing and "/plans/nat/PB/" not in listing
    assert a.get(f"/plans/tasks/{task_a.pk}/").status_code == 200
    assert a.get(f"/plans/tasks/{task_b.pk}/").status_code == 404
    assert b.get(f"/plans/tasks/{task_a.pk}/").status_code == 404
    assert a.get("/plans/nat/PB/").status_code == 404
    assert a.get("/plans/nat/PB/plan.xlsx").status_code == 404
    # The form offers A's rounds only; a forged unit of B is refused, A's own is stored.
    form = a.get("/plans/tasks/new/").content.decode()
    assert 'value="loc-a"' in form and 'value="loc-b"' not in form
    post = {"round": "nat", "unit": "PB", "agency": "PB-SXD", "indicator": "SAT",
            "title": "x", "target_kind": "above_national", "working_days": "5"}  # fmt: skip
    assert a.post("/plans/tasks/new/", post).status_code == 403
    mine = {**post, "unit": "PA", "agency": "PA-SXD"}
    assert a.post("/plans/tasks/new/", mine).status_code == 302
    assert Task.objects.filter(unit=world.a, created_by=world.staff_a).count() == 1
    assert login(world.plain).get("/plans/tasks/new/").status_code == 403


def test_a_change_compares_national_with_national_and_local_with_its_own(
    world: SimpleNamespace,
) -> None:
    from scoring.services import previous_run

    later = world.loc_a.closes_at + dt.timedelta(days=1)

    def next_round(code: str, units: list[Unit], owner: Unit | None) -> Round:
        survey_round = RoundFactory(
            code=code, version=world.national_version, units=units, owner_unit=owner
        )
        survey_round.opens_at, survey_round.closes_at = later, later + dt.timedelta(days=30)
        survey_round.save(update_fields=["opens_at", "closes_at"])
        return survey_round

    # loc-a (A's local round of the national questionnaire) closed as late as nat: before,
    # the next national round's change was taken against it, telling A's local values.
    assert previous_run(next_round("nat-2", [world.a, world.b], None)).round == world.nat
    assert previous_run(next_round("loc-a2", [world.a], world.a)).round == world.loc_a
    assert previous_run(next_round("loc-b2", [world.b], world.b)) is None  # loc-b: other form


def test_the_task_form_shows_nothing_of_another_province_round(world: SimpleNamespace) -> None:
    a = login(world.staff_a)
    assert 'value="SAT"' in a.get("/plans/tasks/new/", {"round": "loc-a"}).content.decode()
    assert 'value="SAT"' not in a.get("/plans/tasks/new/", {"round": "loc-b"}).content.decode()


@pytest.mark.parametrize(("field", "value"), [("working_days", "²"), ("owner", "¹")])
def test_non_ascii_digits_are_a_400_naming_the_field(
    world: SimpleNamespace, field: str, value: str
) -> None:
    post = {"round": "nat", "unit": "PA", "agency": "PA-SXD", "indicator": "SAT", "title": "x",
            "target_kind": "above_national", "working_days": "5", field: value}  # fmt: skip
    answer_ = login(world.staff_a).post("/plans/tasks/new/", post)
    assert answer_.status_code == 400 and field in answer_.context["errors"]
