"""The admin of the survey frame and questionnaires: every page renders, published versions
refuse changes, drafts are edited and published there, and bad input shows form errors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from surveys import services
from surveys.models import (
    Agency,
    Choice,
    Question,
    QuestionnaireVersion,
    Round,
    Unit,
    VersionMapping,
)
from tests.factories import QuestionFactory, choice_question_without_choices
from tests.support.admin import FormInputs, admin_url, edit_questions, form_data, post_change_form

pytestmark = pytest.mark.django_db

Status = QuestionnaireVersion.Status


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


@pytest.fixture
def agency(units: None) -> Agency:
    return Agency.objects.create(
        unit=Unit.objects.get(code="01"), code="TTPVHCC", name_vi="Trung tâm", name_en="Centre"
    )


@pytest.fixture
def draft(make_draft: Callable[[], QuestionnaireVersion]) -> QuestionnaireVersion:
    return make_draft()


# --- Pages ----------------------------------------------------------------------------------


PAGES: dict[str, Callable[[QuestionnaireVersion, QuestionnaireVersion], Any]] = {
    "unit": lambda sipas, draft: Unit.objects.get(code="01"),
    "agency": lambda sipas, draft: Agency.objects.get(),
    "round": lambda sipas, draft: Round.objects.get(code="sipas-2022"),
    "questionnaire": lambda sipas, draft: sipas.questionnaire,
    "questionnaireversion": lambda sipas, draft: sipas,
    "section": lambda sipas, draft: sipas.sections.get(code="A"),
    "question": lambda sipas, draft: sipas.questions.get(code="S01"),
    "indicator": lambda sipas, draft: sipas.indicators.get(code="S01"),
    "provincestaff": lambda sipas, draft: province_staff_member(),
    "versionmapping": lambda sipas, draft: VersionMapping.objects.get_or_create(
        from_version=sipas, to_version=draft
    )[0],
}


def province_staff_member() -> Any:
    """A staff account of Hà Nội (issue 17: province staff)."""
    from django.contrib.auth import get_user_model

    from surveys import scoping

    user, _created = get_user_model().objects.get_or_create(username="hanoi-staff")
    return scoping.appoint(user=user, unit=Unit.objects.get(code="01"))


class TestPagesRender:
    @pytest.mark.parametrize("model", PAGES)
    @pytest.mark.parametrize("view", ["changelist", "add", "change"])
    def test_admin_page_renders_for_a_superuser(
        self, admin_client: Client, sipas, draft, agency, model: str, view: str
    ) -> None:
        args = [PAGES[model](sipas, draft).pk] if view == "change" else []
        response = admin_client.get(admin_url(model, view, *args))
        assert response.status_code == 200

    @pytest.mark.parametrize("model", ["questionnaireversion", "question", "indicator"])
    def test_change_page_of_draft_content_renders(
        self, admin_client: Client, draft, model: str
    ) -> None:
        obj = {
            "questionnaireversion": draft,
            "question": draft.questions.get(code="SAT"),
            "indicator": draft.indicators.get(code="SAT"),
        }[model]
        response = admin_client.get(admin_url(model, "change", obj.pk))
        assert response.status_code == 200

    def test_draft_change_page_links_its_sections_and_shows_a_publish_button(
        self, admin_client: Client, draft
    ) -> None:
        section = draft.sections.get()
        response = admin_client.get(admin_url("questionnaireversion", "change", draft.pk))
        html = response.content.decode()
        assert 'value="MAIN"' in html
        assert f'href="{admin_url("section", "change", section.pk)}"' in html
        assert 'name="_save"' in html
        assert 'form="publish-form"' in html
        assert 'form="new-draft-form"' not in html

    def test_section_page_shows_its_questions_with_links_to_them(
        self, admin_client: Client, draft
    ) -> None:
        section = draft.sections.get()
        response = admin_client.get(admin_url("section", "change", section.pk))
        html = response.content.decode()
        assert 'value="SAT"' in html and 'value="USED"' in html
        sat = draft.questions.get(code="SAT")
        assert admin_url("question", "change", sat.pk) in html
        assert f"{admin_url('question', 'add')}?section={section.pk}" in html

    def test_published_change_page_offers_a_new_draft_instead_of_save(
        self, admin_client: Client, sipas
    ) -> None:
        response = admin_client.get(admin_url("questionnaireversion", "change", sipas.pk))
        html = response.content.decode()
        assert 'form="new-draft-form"' in html
        assert 'form="publish-form"' not in html
        assert 'name="_save"' not in html

    @pytest.mark.parametrize(
        ("which", "form_id"), [("draft", "publish-form"), ("sipas", "new-draft-form")]
    )
    def test_version_buttons_submit_a_form_outside_the_change_form(
        self, admin_client: Client, sipas, draft, which: str, form_id: str
    ) -> None:
        # Browsers drop a <form> nested in another, and a button whose form= names no
        # form submits nothing: the button's form must come after the change form.
        version = {"draft": draft, "sipas": sipas}[which]
        html = admin_client.get(
            admin_url("questionnaireversion", "change", version.pk)
        ).content.decode()
        change_form_end = html.index("</form>", html.index('id="questionnaireversion_form"'))
        assert html.index(f'<form id="{form_id}"') > change_form_end
        parser = FormInputs("questionnaireversion_form")
        parser.feed(html)
        assert "csrfmiddlewaretoken" in parser.data
        assert len(parser.data["csrfmiddlewaretoken"]) == 1

    def test_unit_autocomplete_of_the_agency_form_finds_units_by_name(
        self, admin_client: Client, units
    ) -> None:
        response = admin_client.get(
            reverse("admin:autocomplete"),
            {
                "app_label": "surveys",
                "model_name": "agency",
                "field_name": "unit",
                "term": "Hà Nội",
            },
        )
        assert response.status_code == 200
        assert {"id": str(Unit.objects.get(code="01").pk), "text": "01 Hà Nội"} in (
            response.json()["results"]
        )

    @pytest.mark.parametrize(
        ("model", "query"),
        [
            ("questionnaireversion", {"status": "published"}),
            ("unit", {"valid_to__isnull": "True"}),
            ("question", {"type": "scale"}),
            ("round", {"opens_at__year": "2022"}),
        ],
    )
    def test_changelist_filters_render(
        self, admin_client: Client, sipas, model: str, query: dict[str, str]
    ) -> None:
        response = admin_client.get(admin_url(model, "changelist"), query)
        assert response.status_code == 200
        assert response.context["cl"].result_count > 0

    @pytest.mark.parametrize(
        ("model", "query", "found"),
        [
            ("question", "S01", "S01"),
            ("unit", "Hà Nội", "01"),
            ("indicator", "S01", "S01"),
            ("round", "sipas-2022", "sipas-2022"),
            ("questionnaireversion", "sipas", "sipas"),
        ],
    )
    def test_changelist_search_finds_objects(
        self, admin_client: Client, sipas, model: str, query: str, found: str
    ) -> None:
        response = admin_client.get(admin_url(model, "changelist"), {"q": query})
        assert response.status_code == 200
        results = response.context["cl"].result_list
        assert results
        assert any(found in str(obj) or getattr(obj, "code", "") == found for obj in results)


# --- Published versions are read-only ---------------------------------------------------------


class TestPublishedVersionIsReadOnly:
    def test_post_to_a_published_version_is_refused_and_changes_nothing(
        self, admin_client: Client, sipas
    ) -> None:
        url = admin_url("questionnaireversion", "change", sipas.pk)
        before = (sipas.label, sipas.questions.count(), sipas.status)

        response = admin_client.post(
            url,
            {
                "questionnaire": sipas.questionnaire_id,
                "number": sipas.number,
                "label": "changed",
                "_save": "Save",
            },
        )

        assert response.status_code == 403
        sipas.refresh_from_db()
        assert (sipas.label, sipas.questions.count(), sipas.status) == before

    def test_question_of_a_published_version_cannot_be_changed_or_deleted(
        self, admin_client: Client, sipas
    ) -> None:
        question = sipas.questions.get(code="S01")
        change = admin_client.post(
            admin_url("question", "change", question.pk), {"label_vi": "changed"}
        )
        delete = admin_client.post(admin_url("question", "delete", question.pk), {"post": "yes"})

        assert change.status_code == delete.status_code == 403
        question.refresh_from_db()
        assert question.label_vi != "changed"

    def test_published_version_cannot_be_deleted(self, admin_client: Client, sipas) -> None:
        response = admin_client.post(
            admin_url("questionnaireversion", "delete", sipas.pk), {"post": "yes"}
        )
        assert response.status_code == 403
        assert QuestionnaireVersion.objects.filter(pk=sipas.pk).exists()

    @pytest.mark.parametrize("model", ["questionnaireversion", "question"])
    def test_bulk_delete_is_refused_for_a_published_version_and_its_questions(
        self, admin_client: Client, draft, model: str
    ) -> None:
        # Without a display condition nothing is PROTECTed: only the permission check stops it.
        draft.questions.update(show_if_question=None, show_if_values=[])
        version = services.publish_version(version_id=draft.pk)
        selected = {
            "questionnaireversion": [version.pk],
            "question": list(version.questions.values_list("pk", flat=True)),
        }[model]

        response = admin_client.post(
            admin_url(model, "changelist"),
            {"action": "delete_selected", "_selected_action": selected, "post": "yes"},
        )

        assert response.status_code == 403
        assert QuestionnaireVersion.objects.filter(pk=version.pk, status=Status.PUBLISHED).exists()
        assert version.questions.count() == 2


# --- Drafts -------------------------------------------------------------------------------------


class TestDraftEditing:
    def test_start_a_new_draft_copies_the_questions_and_opens_the_draft(
        self, admin_client: Client, sipas
    ) -> None:
        response = admin_client.post(admin_url("questionnaireversion", "new_draft", sipas.pk))

        new = QuestionnaireVersion.objects.get(based_on=sipas)
        assert new.status == Status.DRAFT
        assert response.status_code == 302
        assert response.url == admin_url("questionnaireversion", "change", new.pk)
        codes = set(sipas.questions.values_list("code", flat=True))
        assert set(new.questions.values_list("code", flat=True)) == codes
        assert admin_client.get(response.url).status_code == 200

    def test_add_form_creates_an_empty_draft(self, admin_client: Client, sipas) -> None:
        url = admin_url("questionnaireversion", "add")
        data = form_data(admin_client, url, "questionnaireversion_form")
        data.update(questionnaire=[str(sipas.questionnaire_id)], number=["7"], label=["2026"])

        response = admin_client.post(url, data)

        assert response.status_code == 302, _page_errors(response)
        new = QuestionnaireVersion.objects.get(questionnaire=sipas.questionnaire, number=7)
        assert new.status == Status.DRAFT
        assert not new.questions.exists()

    def test_question_admin_adds_a_question_to_a_draft(self, admin_client: Client, draft) -> None:
        url = admin_url("question", "add")
        data = form_data(admin_client, url, "question_form")
        data.update(
            section=[str(draft.sections.get().pk)],
            code=["NOTE"],
            position=["3"],
            type=[Question.Type.TEXT],
            label_vi=["Góp ý khác"],
            excluded_from_indices=["on"],
        )

        response = admin_client.post(url, data)

        assert response.status_code == 302, _page_errors(response)
        assert draft.questions.get(code="NOTE").version_id == draft.pk

    def test_draft_with_a_display_condition_can_be_deleted(
        self, admin_client: Client, draft
    ) -> None:
        response = admin_client.post(
            admin_url("questionnaireversion", "delete", draft.pk), {"post": "yes"}
        )

        assert response.status_code == 302
        assert not QuestionnaireVersion.objects.filter(pk=draft.pk).exists()

    def test_start_a_new_draft_needs_a_post(self, admin_client: Client, sipas) -> None:
        response = admin_client.get(admin_url("questionnaireversion", "new_draft", sipas.pk))
        assert response.status_code == 405
        assert not QuestionnaireVersion.objects.filter(based_on=sipas).exists()

    def test_draft_change_page_saves_an_edited_question_label(
        self, admin_client: Client, draft
    ) -> None:
        published = services.publish_version(version_id=draft.pk)
        admin_client.post(admin_url("questionnaireversion", "new_draft", published.pk))
        new = QuestionnaireVersion.objects.get(based_on=published)

        saved = edit_question(admin_client, new, code="SAT", label_vi="Mức hài lòng")

        assert saved.status_code == 302, _page_errors(saved)
        assert new.questions.get(code="SAT").label_vi == "Mức hài lòng"
        assert published.questions.get(code="SAT").label_vi != "Mức hài lòng"
        assert new.questions.count() == published.questions.count() == 2
        assert Choice.objects.filter(question__version=new).count() == 5

    def test_sipas_draft_change_page_saves_an_edited_question_label(
        self, admin_client: Client, sipas
    ) -> None:
        admin_client.post(admin_url("questionnaireversion", "new_draft", sipas.pk))
        new = QuestionnaireVersion.objects.get(based_on=sipas)

        saved = edit_question(admin_client, new, code="S01", label_vi="Nhãn mới")

        assert saved.status_code == 302, _page_errors(saved)
        assert new.questions.get(code="S01").label_vi == "Nhãn mới"

    def test_question_admin_saves_an_edited_label_of_a_draft_question(
        self, admin_client: Client, draft
    ) -> None:
        question = draft.questions.get(code="SAT")
        response = post_change_form(admin_client, "question", question, label_vi="Mức hài lòng")

        assert response.status_code == 302, _page_errors(response)
        question.refresh_from_db()
        assert question.label_vi == "Mức hài lòng"


def edit_question(
    client: Client, version: QuestionnaireVersion, *, code: str, **changes: str
) -> Any:
    """Post the section page back with fields of one question changed."""
    return edit_questions(client, version, {code: changes})


def _nested_errors(formset: Any) -> list[dict[str, Any]]:
    """Field errors of every form of a formset and of the formsets nested in its forms."""
    found = []
    for form in formset.forms:
        found.append(form.errors)
        for nested in getattr(form, "nested_formsets", []):
            found.extend(_nested_errors(nested))
    return found


def _page_errors(response: Any) -> Any:
    """Form and formset errors of a re-rendered change page, for assertion messages."""
    if response.context is None or "adminform" not in response.context:
        return response.status_code
    return {
        "form": response.context["adminform"].form.errors,
        "inlines": [f.formset.errors for f in response.context["inline_admin_formsets"]],
    }


# --- Publishing ---------------------------------------------------------------------------------


def press_publish(client: Client, version: QuestionnaireVersion) -> Any:
    """The version page's publish button, its redirect followed."""
    return client.post(admin_url("questionnaireversion", "publish", version.pk), follow=True)


def run_action(client: Client, action: str, *versions: QuestionnaireVersion) -> Any:
    return client.post(
        admin_url("questionnaireversion", "changelist"),
        {"action": action, "_selected_action": [v.pk for v in versions]},
        follow=True,
    )


def publish_selected(client: Client, version: QuestionnaireVersion) -> Any:
    """The list's "publish selected" action on the version."""
    return run_action(client, "publish_selected", version)


class TestPublishing:
    def test_publish_button_publishes_a_valid_draft(self, admin_client: Client, draft) -> None:
        response = admin_client.post(admin_url("questionnaireversion", "publish", draft.pk))

        assert response.status_code == 302
        assert response.url == admin_url("questionnaireversion", "change", draft.pk)
        draft.refresh_from_db()
        assert draft.status == Status.PUBLISHED
        assert draft.published_at is not None

    @pytest.mark.parametrize("publish", [press_publish, publish_selected])
    def test_publishing_a_choice_question_without_choices_names_the_question_and_leaves_a_draft(
        self, admin_client: Client, draft, publish: Callable[..., Any]
    ) -> None:
        choice_question_without_choices(draft, "CHANNEL")

        response = publish(admin_client, draft)

        assert response.status_code == 200
        assert any("CHANNEL" in m for m in messages_of(response))
        draft.refresh_from_db()
        assert draft.status == Status.DRAFT

    def test_publishing_a_condition_on_a_later_question_names_the_question(
        self, admin_client: Client, draft
    ) -> None:
        later = QuestionFactory(
            section=draft.sections.get(), code="LATER", position=9, excluded_from_indices=True
        )
        Question.objects.filter(version=draft, code="USED").update(
            show_if_question=later, show_if_values=[True]
        )

        response = press_publish(admin_client, draft)

        assert response.status_code == 200
        problems = [m for m in messages_of(response) if "USED" in m]
        assert problems and "LATER" in problems[0]
        draft.refresh_from_db()
        assert draft.status == Status.DRAFT

    def test_publish_of_a_published_version_is_refused(self, admin_client: Client, sipas) -> None:
        response = admin_client.post(admin_url("questionnaireversion", "publish", sipas.pk))
        assert response.status_code == 403


# --- Invalid input ------------------------------------------------------------------------------


def round_form(version: QuestionnaireVersion, units: list[int], **changes: Any) -> dict[str, Any]:
    """The admin's "add round" form of the round r2026 over ``units`` (ids), open in June 2026,
    its inline of stratum population sizes sent empty as a browser does."""
    return {
        "code": "r2026",
        "name_vi": "Vòng 2026",
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "opens_at_0": "2026-06-01",
        "opens_at_1": "08:00:00",
        "closes_at_0": "2026-07-01",
        "closes_at_1": "08:00:00",
        "version": version.pk,
        "units": units,
        "stratum_populations-TOTAL_FORMS": "0",
        "stratum_populations-INITIAL_FORMS": "0",
    } | changes


class TestInvalidInputShowsFormErrors:
    def test_round_closing_before_it_opens_is_refused_on_the_form(
        self, admin_client: Client, sipas
    ) -> None:
        units = list(Unit.objects.filter(code__in=["01", "79"]).values_list("pk", flat=True))
        data = round_form(sipas, units, name_en="Round 2026", closes_at_0="2026-05-01")
        data["allow_open_link"] = "on"

        response = admin_client.post(admin_url("round", "add"), data)

        assert "closes_at" in form_errors(response)
        assert not Round.objects.filter(code="r2026").exists()

    def test_round_on_a_draft_version_is_refused_on_the_form(
        self, admin_client: Client, sipas, draft
    ) -> None:
        data = round_form(draft, [Unit.objects.get(code="01").pk])

        response = admin_client.post(admin_url("round", "add"), data)

        assert "version" in form_errors(response)
        assert not Round.objects.filter(code="r2026").exists()

    def test_valid_round_is_saved_with_its_units(self, admin_client: Client, sipas) -> None:
        units = list(Unit.objects.filter(code__in=["01", "79"]).values_list("pk", flat=True))
        data = round_form(sipas, units, variance_method="taylor", national_value="pooled")

        response = admin_client.post(admin_url("round", "add"), data)

        assert response.status_code == 302, _page_errors(response)
        saved = Round.objects.get(code="r2026")
        assert set(saved.units.values_list("pk", flat=True)) == set(units)
        assert saved.closes_at > saved.opens_at

    def test_unit_with_a_duplicate_code_is_refused_on_the_form(
        self, admin_client: Client, units
    ) -> None:
        url = admin_url("unit", "add")
        data = form_data(admin_client, url, "unit_form")
        data.update(code=["01"], name=["Hà Nội (bis)"], kind=[Unit.Kind.PROVINCE])

        response = admin_client.post(url, data)

        assert "code" in form_errors(response)
        assert Unit.objects.filter(code="01").count() == 1

    def test_question_with_minimum_above_maximum_is_refused_on_the_form(
        self, admin_client: Client, draft
    ) -> None:
        question = draft.questions.get(code="SAT")
        response = post_change_form(
            admin_client, "question", question, min_value="5", max_value="1"
        )

        assert "max_value" in form_errors(response)
        question.refresh_from_db()
        assert (question.min_value, question.max_value) == (Decimal(1), Decimal(5))

    def test_question_row_turned_into_a_scale_without_bounds_is_refused_on_the_section_page(
        self, admin_client: Client, draft
    ) -> None:
        response = edit_question(admin_client, draft, code="USED", type=Question.Type.SCALE)

        assert response.status_code == 200
        # The row has no bound fields: the problem is shown for the row, not as a server error.
        assert any(
            "__all__" in errors
            for inline in response.context["inline_admin_formsets"]
            for errors in _nested_errors(inline.formset)
        )
        assert draft.questions.get(code="USED").type == Question.Type.YESNO

    def test_deleting_a_question_another_depends_on_is_refused_on_the_section_page(
        self, admin_client: Client, draft
    ) -> None:
        response = edit_question(admin_client, draft, code="USED", DELETE="on")

        assert response.status_code == 200
        assert response.context["errors"]
        assert set(draft.questions.values_list("code", flat=True)) == {"USED", "SAT"}

    def test_indicator_with_negative_weight_is_refused_on_the_form(
        self, admin_client: Client, draft
    ) -> None:
        indicator = draft.indicators.get(code="SAT")
        response = post_change_form(admin_client, "indicator", indicator, weight="-1")

        assert form_errors(response)
        indicator.refresh_from_db()
        assert indicator.weight == 1.0


# --- Actions ------------------------------------------------------------------------------------


class TestVersionActions:
    def test_publish_selected_publishes_valid_drafts(self, admin_client: Client, draft) -> None:
        response = publish_selected(admin_client, draft)

        assert response.status_code == 200
        draft.refresh_from_db()
        assert draft.status == Status.PUBLISHED

    def test_retire_selected_retires_a_published_version(self, admin_client: Client, sipas) -> None:
        response = run_action(admin_client, "retire_selected", sipas)

        assert response.status_code == 200
        sipas.refresh_from_db()
        assert sipas.status == Status.RETIRED
        assert sipas.retired_at is not None

    def test_retire_selected_reports_a_draft_and_leaves_it_alone(
        self, admin_client: Client, draft
    ) -> None:
        response = run_action(admin_client, "retire_selected", draft)

        assert response.status_code == 200
        assert any(m.startswith(str(draft)) for m in messages_of(response))
        draft.refresh_from_db()
        assert draft.status == Status.DRAFT

    def test_start_draft_from_selected_creates_one_draft_per_version(
        self, admin_client: Client, sipas
    ) -> None:
        response = run_action(admin_client, "start_draft_from_selected", sipas)

        assert response.status_code == 200
        new = QuestionnaireVersion.objects.get(based_on=sipas)
        assert new.status == Status.DRAFT
        assert new.number == sipas.number + 1
        assert new.questions.count() == sipas.questions.count()


# --- Access ---------------------------------------------------------------------------------------


class TestAccess:
    def test_non_staff_user_is_sent_to_the_login_page(self, client: Client, sipas) -> None:
        user = get_user_model().objects.create_user("citizen", password="x")
        client.force_login(user)

        for url in [
            admin_url("questionnaireversion", "changelist"),
            reverse("feedback:version_preview", args=[sipas.pk]),
        ]:
            response = client.get(url)
            assert response.status_code == 302
            assert response.url.startswith(reverse("admin:login"))

    def test_staff_user_without_permissions_is_forbidden(self, client: Client, sipas) -> None:
        user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
        client.force_login(user)

        assert client.get(admin_url("questionnaireversion", "changelist")).status_code == 403
        assert client.get(reverse("feedback:version_preview", args=[sipas.pk])).status_code == 403
        response = client.post(admin_url("questionnaireversion", "new_draft", sipas.pk))
        assert response.status_code == 403
        assert not QuestionnaireVersion.objects.filter(based_on=sipas).exists()

    def test_staff_user_without_permissions_cannot_publish(self, client: Client, draft) -> None:
        user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
        client.force_login(user)

        response = client.post(admin_url("questionnaireversion", "publish", draft.pk))

        assert response.status_code == 403
        draft.refresh_from_db()
        assert draft.status == Status.DRAFT


def test_every_surveys_model_page_was_covered() -> None:
    """Keep PAGES in step with the admin: a newly registered model gets its pages checked."""
    from django.contrib import admin

    registered = {
        m._meta.model_name for m in admin.site._registry if m._meta.app_label == "surveys"
    }
    assert set(PAGES) == registered
