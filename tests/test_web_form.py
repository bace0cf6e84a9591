"""The public web form: starting, answering section by section, saving, resuming, submitting."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from feedback.models import Answer, Invitation, Response, ResponseDraft
from surveys.models import Question, Round
from tests.support.responses import valid_answers
from tests.support.web_form import form_data, progress_on, section_on

pytestmark = pytest.mark.django_db


def stored_answers(response: Response) -> dict[str, Any]:
    return dict(Answer.objects.filter(response=response).values_list("question__code", "value"))


def expected_answers(answers: dict[str, Any]) -> dict[str, Any]:
    """What ``valid_answers`` becomes once stored: Q2 in the questionnaire's order, Q11 trimmed."""
    return answers | {"Q2": ["loa_xa", "internet"], "Q11": "Tốt"}


def start(client: Client, unit: str = "19") -> str:
    """Start a draft on the demo round; returns the draft's path."""
    response = client.post("/rounds/demo/", {"unit": unit})
    assert response.status_code == 302, response.content.decode()
    return response["Location"]


def post_section(client: Client, path: str, answers: dict[str, Any], **extra: Any) -> Any:
    page = client.get(path)
    assert page.status_code == 200
    section = section_on(page)
    codes = list(Question.objects.filter(section__code=section).values_list("code", flat=True))
    data = {"section": section, "action": "next"} | form_data(answers, codes) | extra
    return client.post(path, data)


def walk(client: Client, path: str, answers: dict[str, Any]) -> tuple[Any, list[str]]:
    """Answer every section shown until the form leaves the draft; returns the last reply."""
    seen = []
    for _step in range(20):
        seen.append(section_on(client.get(path)))
        reply = post_section(client, path, answers)
        assert reply.status_code == 302, reply.content.decode()
        if reply["Location"] != path:
            return reply, seen
    raise AssertionError("the form never ended")


class TestStarting:
    def test_start_page_lists_the_open_demo_round_with_a_link(self, client: Client, sipas) -> None:
        page = client.get("/").content.decode()
        assert 'href="/rounds/demo/"' in page
        assert "/rounds/sipas-2022/" not in page

    def test_the_round_page_offers_the_provinces_of_the_round(self, client: Client, sipas) -> None:
        page = client.get("/rounds/demo/")
        assert page.status_code == 200
        html = page.content.decode()
        assert html.count('<option value="') == 1 + 63  # "choose" and the 63 provinces
        assert '<label for="id_unit">' in html

    def test_choosing_no_province_is_an_error_next_to_the_field(self, client, sipas) -> None:
        page = client.post("/rounds/demo/", {"unit": ""})
        html = page.content.decode()
        assert page.status_code == 200 and 'id="err-unit"' in html
        assert 'aria-invalid="true" aria-describedby="err-unit"' in html
        assert not ResponseDraft.objects.exists()

    def test_starting_creates_a_draft_and_redirects_to_it(self, client: Client, sipas) -> None:
        path = start(client)
        draft = ResponseDraft.objects.get()
        assert path == f"/d/{draft.token}/"
        assert (draft.round.code, draft.unit.code, draft.section, draft.answers) == (
            "demo",
            "19",
            0,
            {},
        )
        assert draft.client_id is not None
        assert draft.expires_at > timezone.now() + dt.timedelta(hours=71)

    def test_the_first_section_shows_progress_and_labelled_groups(self, client, sipas) -> None:
        html = client.get(start(client)).content.decode()
        # B5 counts until Q8_4 (in B4) says whether it is skipped.
        assert '<progress value="1" max="8"' in html and "Phần 1 trong tối đa 8 phần" in html
        assert '<legend><span class="code">A01.</span>' in html
        assert '<label for="id_A01_nu">' in html
        assert '<label for="id_website">' in html
        assert 'autocomplete="off" tabindex="-1"' in html

    def test_a_closed_round_gets_a_friendly_page(self, client: Client, sipas) -> None:
        page = client.get("/rounds/sipas-2022/")
        assert page.status_code == 410
        assert "<h1>" in page.content.decode()
        assert client.post("/rounds/sipas-2022/", {"unit": "19"}).status_code == 410
        assert not ResponseDraft.objects.exists()

    def test_a_round_not_open_yet_gets_a_friendly_page(self, client: Client, sipas) -> None:
        Round.objects.filter(code="demo").update(
            opens_at=timezone.now() + dt.timedelta(days=2),
            closes_at=timezone.now() + dt.timedelta(days=9),
        )
        assert client.get("/rounds/demo/").status_code == 403

    def test_english_switch_shows_english_labels(self, client: Client, sipas) -> None:
        path = start(client)
        a01 = Question.objects.get(version=sipas, code="A01")
        assert a01.label_vi in client.get(path).content.decode()
        client.post("/i18n/setlang/", {"language": "en", "next": path})
        html = client.get(path).content.decode()
        assert a01.label_en in html and a01.label_vi not in html
        assert '<html lang="en">' in html


class TestAnswering:
    def test_a_missing_required_answer_is_shown_next_to_the_field_and_in_the_summary(
        self, client: Client, sipas
    ) -> None:
        path = start(client)
        page = post_section(client, path, {"A01": "nu"})  # A02 is required too
        html = page.content.decode()
        assert page.status_code == 200
        assert 'id="error-summary"' in html and 'href="#id_A02_' in html
        assert 'id="err-A02"' in html and "A02" in re.search(r'id="err-A02">([^<]+)', html)[1]
        assert 'aria-describedby="err-A02"' in html and 'aria-invalid="true"' in html
        assert 'value="nu" checked' in html  # what was given is kept
        assert not Response.objects.exists()
        assert ResponseDraft.objects.get().section == 0

    def test_a_full_walk_submits_a_web_response_with_the_right_answers(
        self, client: Client, sipas
    ) -> None:
        answers = valid_answers()
        done, seen = walk(client, start(client), answers)
        assert seen == ["A", "B1", "B2", "B3", "B4", "B5", "B6", "B7"]
        response = Response.objects.get()
        assert (response.channel, response.round.code, response.unit.code) == ("web", "demo", "19")
        assert stored_answers(response) == expected_answers(answers)
        assert done["Location"] == f"/thanks/{response.receipt}/"
        thanks = client.get(done["Location"]).content.decode()
        assert response.receipt in thanks and "Tốt" not in thanks
        assert not ResponseDraft.objects.exists()

    def test_the_section_of_a_screened_out_service_is_skipped(self, client, sipas) -> None:
        answers = valid_answers(Q8_4=False)
        _done, seen = walk(client, start(client), answers)
        assert "B5" not in seen
        codes = set(stored_answers(Response.objects.get()))
        assert not any(code.startswith("S") for code in codes)

    def test_without_script_an_answer_to_a_question_hidden_by_its_condition_is_discarded(
        self, client: Client, sipas
    ) -> None:
        path = start(client)
        answers = valid_answers()
        for _section in ["A", "B1", "B2", "B3", "B4", "B5"]:
            assert post_section(client, path, answers).status_code == 302
        assert "S01" in ResponseDraft.objects.get().answers
        # Back to B3 and change Q8_4 to no: S01–S19 are answered but now hidden.
        for _section in range(3):
            client.post(path, {"section": section_on(client.get(path)), "action": "back"})
        assert section_on(client.get(path)) == "B3"
        answers["Q8_4"] = False
        walk(client, path, answers)
        codes = set(stored_answers(Response.objects.get()))
        assert "Q8_4" in codes and not any(code.startswith("S") for code in codes)

    def test_unknown_fields_are_ignored(self, client: Client, sipas) -> None:
        path = start(client)
        reply = post_section(client, path, valid_answers(), S01="4", bogus="x")
        assert reply.status_code == 302
        assert set(ResponseDraft.objects.get().answers) == {"A01", "A02"}

    def test_reposting_the_final_submit_stores_one_response(self, client, sipas) -> None:
        path = start(client)
        answers = valid_answers()
        for _section in ["A", "B1", "B2", "B3", "B4", "B5", "B6"]:
            post_section(client, path, answers)
        last = {"section": "B7", "action": "next", "Q11": "  Tốt  "}
        last["client_id"] = str(ResponseDraft.objects.get().client_id)
        first = client.post(path, last)
        again = client.post(path, last)
        assert first.status_code == again.status_code == 302
        assert first["Location"] == again["Location"]
        assert Response.objects.count() == 1

    def test_honeypot_filled_is_refused_and_nothing_is_stored(self, client, sipas) -> None:
        refused = client.post("/rounds/demo/", {"unit": "19", "website": "http://spam"})
        assert refused.status_code == 400
        assert "<h1>" in refused.content.decode()
        assert not ResponseDraft.objects.exists()
        path = start(client)
        answers = valid_answers()
        for _section in ["A", "B1", "B2", "B3", "B4", "B5", "B6"]:
            post_section(client, path, answers)
        refused = post_section(client, path, answers, website="buy now")
        assert refused.status_code == 400
        assert not Response.objects.exists()


class TestProgress:
    @pytest.mark.parametrize(
        ("used_service", "expected"),
        [
            # Q8_4, in B3 (the 4th part), says whether B5 is shown.
            (
                True,
                [
                    *["1 of up to 8", "2 of up to 8", "3 of up to 8", "4 of up to 8"],
                    *["5 of 8", "6 of 8", "7 of 8", "8 of 8"],
                ],
            ),
            (
                False,
                [
                    *["1 of up to 8", "2 of up to 8", "3 of up to 8", "4 of up to 8"],
                    *["5 of 7", "6 of 7", "7 of 7"],
                ],
            ),
        ],
    )
    def test_progress_only_moves_forward_whether_section_b5_is_shown_or_skipped(
        self, client: Client, sipas, used_service: bool, expected: list[str]
    ) -> None:
        client.cookies["django_language"] = "en"
        path = start(client)
        answers = valid_answers(Q8_4=used_service)
        shown = []
        for _step in range(10):
            page = client.get(path)
            shown.append(progress_on(page))
            reply = post_section(client, path, answers)
            assert reply.status_code == 302
            if reply["Location"] != path:
                break
        assert Response.objects.get().receipt in reply["Location"]  # the walk ended with a send

        assert [label.removeprefix("Part ") for _k, _n, label in shown] == expected
        for (k, n, _label), (k2, n2, _label2) in itertools.pairwise(shown):
            assert k2 == k + 1 and n2 <= n and k2 / n2 > k / n
        last, most, _label = shown[-1]
        assert last == most  # the last section reads as the end: "Part 7 of 7", a full bar

    def test_back_and_a_changed_answer_move_progress_back_honestly(self, client, sipas) -> None:
        client.cookies["django_language"] = "en"
        path = start(client)
        answers = valid_answers(Q8_4=False)
        for _section in ["A", "B1", "B2", "B3"]:
            post_section(client, path, answers)
        assert progress_on(client.get(path)) == (5, 7, "Part 5 of 7")  # B4: B5 is skipped
        client.post(path, {"section": "B4", "action": "back"})
        assert section_on(client.get(path)) == "B3"
        # Q8_4 can be changed here again, so B5 counts again.
        assert progress_on(client.get(path)) == (4, 8, "Part 4 of up to 8")
        post_section(client, path, answers | {"Q8_4": True})
        assert section_on(client.get(path)) == "B4"
        assert progress_on(client.get(path)) == (5, 8, "Part 5 of 8")


class TestSaveAndResume:
    def test_the_resume_link_restores_answers_and_section(self, client, sipas, settings) -> None:
        settings.PUBLIC_BASE_URL = "https://khaosat.example.vn"
        path = start(client)
        answers = valid_answers()
        post_section(client, path, answers)  # A
        page = client.get(path)
        data = {"section": section_on(page), "action": "save", "Q1_1": "3"}
        saved = client.post(path, data)
        assert saved.status_code == 302 and saved["Location"] == f"{path}saved/"
        html = client.get(saved["Location"]).content.decode()
        assert f"https://khaosat.example.vn{path}" in html
        draft = ResponseDraft.objects.get()
        assert draft.answers == {"A01": "nu", "A02": "35_49", "Q1_1": 3}

        resumed = Client().get(path)  # another browser, with only the link
        html = resumed.content.decode()
        assert section_on(resumed) == "B1"
        assert 'id="id_Q1_1_3" name="Q1_1" value="3" checked' in html
        assert '<progress value="2" max="8"' in html

    def test_each_save_pushes_the_expiry_back(self, client, sipas, settings) -> None:
        settings.FEEDBACK_DRAFT_TTL_HOURS = 2
        path = start(client)
        ResponseDraft.objects.update(expires_at=timezone.now() + dt.timedelta(minutes=5))
        post_section(client, path, valid_answers())
        assert ResponseDraft.objects.get().expires_at > timezone.now() + dt.timedelta(hours=1)

    def test_an_expired_draft_link_gets_a_friendly_page(self, client: Client, sipas) -> None:
        path = start(client)
        ResponseDraft.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
        assert client.get(path).status_code == 410
        assert client.post(path, {"section": "A", "A01": "nu"}).status_code == 410
        assert client.get("/d/no-such-token/").status_code == 404

    def test_purge_deletes_only_expired_drafts(self, client, sipas, django_assert_num_queries):
        for _n in range(3):
            start(client)
        now = timezone.now()
        old = list(ResponseDraft.objects.values_list("pk", flat=True)[:2])
        ResponseDraft.objects.filter(pk__in=old).update(expires_at=now - dt.timedelta(hours=1))
        with django_assert_num_queries(1):
            call_command("purge_expired_drafts", stdout=(out := io.StringIO()))
        assert out.getvalue().startswith("2 ")
        assert ResponseDraft.objects.count() == 1
        assert not ResponseDraft.objects.filter(pk__in=old).exists()


class TestInvitations:
    def test_an_invitation_link_works_once_then_says_it_was_used(self, client, sipas) -> None:
        survey_round = Round.objects.get(code="demo")
        invitation = Invitation.objects.create(
            round=survey_round, unit=survey_round.units.get(code="19")
        )
        url = f"/i/{invitation.token}/"
        assert client.get(url).status_code == 200
        started = client.post(url)
        assert started.status_code == 302
        assert ResponseDraft.objects.get().invitation == invitation
        walk(client, started["Location"], valid_answers())
        assert Response.objects.get().invitation == invitation
        used = client.get(url)
        assert used.status_code == 410
        assert client.post(url).status_code == 410
        assert Response.objects.count() == 1

    def test_an_unknown_invitation_gets_a_friendly_page(self, client: Client, sipas) -> None:
        assert client.get("/i/nope/").status_code == 404


def test_beat_purges_expired_drafts_every_hour(settings) -> None:
    from config.celery import app

    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-drafts"]
    assert entry["schedule"] <= 3600
    assert entry["task"] in app.tasks
