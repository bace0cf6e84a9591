"""Staff preview of a questionnaire version through the public form, storing nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from feedback.drafts.services import start_draft as start_citizen_draft
from feedback.models import Response
from surveys.models import Choice, Question, QuestionnaireVersion
from surveys.services import start_draft
from tests.factories import QuestionFactory, SectionFactory, VersionFactory
from tests.support.responses import valid_answers
from tests.support.web_form import form_data, progress_on, questionnaire_inputs, section_on

pytestmark = pytest.mark.django_db


def preview_url(version: QuestionnaireVersion) -> str:
    return reverse("feedback:version_preview", args=[version.pk])


def stored_rows() -> dict[str, int]:
    """How many rows each model of the feedback app holds (responses, drafts, answers…)."""
    return {m.__name__: m.objects.count() for m in apps.get_app_config("feedback").get_models()}


def post_preview(
    client: Client, version: QuestionnaireVersion, answers: dict[str, Any], **extra: Any
) -> Any:
    """Answer the section the preview shows, as a browser without script posts it."""
    url = preview_url(version)
    section = section_on(client.get(url))
    codes = version.questions.filter(section__code=section).values_list("code", flat=True)
    data = {"section": section, "action": "next"} | form_data(answers, list(codes)) | extra
    return client.post(url, data)


def walk_preview(
    client: Client, version: QuestionnaireVersion, answers: dict[str, Any]
) -> tuple[Any, list[str]]:
    """Answer every section the preview shows until it ends; returns the last page."""
    seen = []
    for _step in range(20):
        seen.append(section_on(client.get(preview_url(version))))
        reply = post_preview(client, version, answers)
        if reply.status_code == 200:
            return reply, seen
        assert reply.status_code == 302, reply.content.decode()
    raise AssertionError("the preview never ended")


@pytest.fixture
def sipas_draft(sipas) -> QuestionnaireVersion:
    """A draft copy of SIPAS: never published, used by no round."""
    return start_draft(version_id=sipas.pk)


@pytest.fixture
def staff_client(client: Client) -> Client:
    user = get_user_model().objects.create_user("editor", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_questionnaireversion"))
    client.force_login(user)
    return client


class TestAccess:
    def test_anonymous_and_non_staff_users_are_sent_to_the_admin_login(
        self, client: Client, sipas_draft
    ) -> None:
        url = preview_url(sipas_draft)
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302
            assert response.url.startswith(reverse("admin:login"))
        client.force_login(get_user_model().objects.create_user("citizen", password="x"))
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))

    def test_staff_without_a_permission_on_versions_is_forbidden(
        self, client: Client, sipas_draft
    ) -> None:
        before = stored_rows()
        client.force_login(
            get_user_model().objects.create_user("clerk", password="x", is_staff=True)
        )
        assert client.get(preview_url(sipas_draft)).status_code == 403
        assert client.post(preview_url(sipas_draft), {"section": "A"}).status_code == 403
        assert stored_rows() == before

    def test_an_unknown_version_is_404(self, staff_client: Client, db) -> None:
        assert staff_client.get(reverse("feedback:version_preview", args=[999])).status_code == 404


class TestPreview:
    def test_a_draft_is_shown_with_the_citizen_form_and_a_banner(
        self, staff_client: Client, sipas_draft
    ) -> None:
        draft = start_citizen_draft(round_code="demo", unit_code="19")
        citizen = Client().get(reverse("feedback:draft", args=[draft.token]))
        preview = staff_client.get(preview_url(sipas_draft))

        assert preview.status_code == 200
        assert "feedback/section.html" in [t.name for t in preview.templates]
        html = preview.content.decode()
        assert "Xem trước — câu trả lời không được lưu" in html
        assert f'action="{preview_url(sipas_draft)}"' in html
        # The same fields, ids, buttons and progress as the citizen's first page.
        assert ("input", "A01", "id_A01_nu", "radio") in questionnaire_inputs(citizen)
        assert questionnaire_inputs(preview) == questionnaire_inputs(citizen)
        assert progress_on(preview) == progress_on(citizen)

    def test_walking_the_whole_preview_stores_nothing(
        self, staff_client: Client, sipas_draft
    ) -> None:
        before = stored_rows()
        done, seen = walk_preview(staff_client, sipas_draft, valid_answers())

        assert seen == ["A", "B1", "B2", "B3", "B4", "B5", "B6", "B7"]
        html = done.content.decode()
        assert "feedback/preview_done.html" in [t.name for t in done.templates]
        assert "Tốt" in html  # Q11, the last answer, as it would have been sent
        assert stored_rows() == before
        assert not Response.objects.exists()
        assert section_on(staff_client.get(preview_url(sipas_draft))) == "A"  # starts afresh

    def test_display_conditions_skip_a_section_and_progress_only_moves_forward(
        self, staff_client: Client, sipas_draft
    ) -> None:
        url = preview_url(sipas_draft)
        answers = valid_answers(Q8_4=False)
        shown = []
        for _step in range(10):
            page = staff_client.get(url)
            shown.append((section_on(page), *progress_on(page)[:2]))
            if post_preview(staff_client, sipas_draft, answers).status_code == 200:
                break
        assert [s for s, _k, _n in shown] == ["A", "B1", "B2", "B3", "B4", "B6", "B7"]
        parts = [(k, n) for _s, k, n in shown]
        assert parts == [(1, 8), (2, 8), (3, 8), (4, 8), (5, 7), (6, 7), (7, 7)]

    def test_a_missing_required_answer_is_refused_as_on_the_form(
        self, staff_client: Client, sipas_draft
    ) -> None:
        url = preview_url(sipas_draft)
        page = post_preview(staff_client, sipas_draft, {"A01": "nu"})  # A02 is required too
        html = page.content.decode()
        assert page.status_code == 200 and 'id="err-A02"' in html and 'href="#id_A02_' in html
        assert section_on(staff_client.get(url)) == "A"

    def test_back_and_save_work_without_storing(self, staff_client: Client, sipas_draft) -> None:
        url = preview_url(sipas_draft)
        before = stored_rows()
        post_preview(staff_client, sipas_draft, valid_answers())
        assert section_on(staff_client.get(url)) == "B1"
        saved = post_preview(staff_client, sipas_draft, {"Q1_1": 3}, action="save")
        assert saved.status_code == 200 and 'role="status"' in saved.content.decode()
        staff_client.post(url, {"section": "B1", "action": "back"})
        page = staff_client.get(url)
        assert section_on(page) == "A" and 'value="nu" checked' in page.content.decode()
        staff_client.post(url, {"action": "restart"})
        assert 'value="nu" checked' not in staff_client.get(url).content.decode()
        assert stored_rows() == before

    def test_a_nul_in_an_answer_is_shown_beside_the_question_and_nothing_is_kept(
        self, staff_client: Client, sipas_draft
    ) -> None:
        url = preview_url(sipas_draft)
        posted = {"section": "A", "action": "next", "A01": "nu", "A02": "35_49", "A08": "\x00"}
        refused = staff_client.post(url, posted)
        assert refused.status_code == 400
        page = refused.content.decode()
        assert 'class="question has-error" id="q-A08"' in page and "NUL" in page
        assert section_on(staff_client.get(url)) == "A"
        assert 'value="nu" checked' not in staff_client.get(url).content.decode()

    def test_a_version_without_questions_says_there_is_nothing_to_preview(
        self, staff_client: Client, db
    ) -> None:
        empty = VersionFactory(label="empty")
        page = staff_client.get(preview_url(empty))
        assert page.status_code == 200 and "Không có gì để xem trước" in page.content.decode()

    def test_a_section_link_opens_that_section(self, staff_client: Client, sipas_draft) -> None:
        page = staff_client.get(preview_url(sipas_draft), {"section": "B3"})
        assert section_on(page) == "B3"
        assert "Q8_4" in page.content.decode()

    def test_english_shows_english_labels(self, staff_client: Client, sipas_draft) -> None:
        a01 = sipas_draft.questions.get(code="A01")
        url = preview_url(sipas_draft)
        vietnamese = staff_client.get(url).content.decode()
        staff_client.post(reverse("set_language"), {"language": "en", "next": url})
        english = staff_client.get(url).content.decode()
        assert a01.label_vi in vietnamese and a01.label_en not in vietnamese
        assert a01.label_en in english and "Preview — answers are not saved" in english

    def test_a_chain_of_conditions_across_sections_walks_forward(
        self, staff_client: Client, make_draft
    ) -> None:
        # MAIN: USED (yes/no), SAT (1–5 if USED); WHY: REASON if SAT is 1 or 2; END: NOTE.
        version = make_draft()
        sat = version.questions.get(code="SAT")
        why = SectionFactory(version=version, code="WHY", position=2)
        QuestionFactory(
            section=why,
            code="REASON",
            position=1,
            type=Question.Type.TEXT,
            show_if_question=sat,
            show_if_values=[1, 2],
        )
        end = SectionFactory(version=version, code="END", position=3)
        QuestionFactory(section=end, code="NOTE", position=1, type=Question.Type.TEXT)
        assert Choice.objects.filter(question=sat).count() == 5
        url = preview_url(version)

        for answers, expected in [
            ({"USED": True, "SAT": 1, "REASON": "slow"}, [("MAIN", 1, 3), ("WHY", 2, 3)]),
            ({"USED": True, "SAT": 5}, [("MAIN", 1, 3), ("END", 2, 2)]),
            ({"USED": False}, [("MAIN", 1, 3), ("END", 2, 2)]),
        ]:
            staff_client.post(url, {"action": "restart"})
            page = staff_client.get(url)
            seen = [(section_on(page), *progress_on(page)[:2])]
            post_preview(staff_client, version, answers)
            page = staff_client.get(url)
            seen.append((section_on(page), *progress_on(page)[:2]))
            assert seen == expected


def test_the_admin_links_to_the_preview_of_a_version_its_sections_and_questions(
    admin_client: Client, sipas_draft
) -> None:
    b3 = sipas_draft.sections.get(code="B3")
    q8_4 = sipas_draft.questions.get(code="Q8_4")
    pages = {
        "questionnaireversion": (sipas_draft.pk, f'href="{preview_url(sipas_draft)}"'),
        "section": (b3.pk, f'href="{preview_url(sipas_draft)}?section=B3"'),
        "question": (q8_4.pk, f'href="{preview_url(sipas_draft)}?section=B3#q-Q8_4"'),
    }
    for model, (pk, link) in pages.items():
        html = admin_client.get(reverse(f"admin:surveys_{model}_change", args=[pk])).content
        assert link in html.decode(), model
    changelist = admin_client.get(reverse("admin:surveys_questionnaireversion_changelist"))
    assert re.search(rf'href="{preview_url(sipas_draft)}"', changelist.content.decode())
