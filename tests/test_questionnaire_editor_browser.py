"""The questionnaire editor in a real browser: a staff member starts a draft of SIPAS, adds a
conditional single-choice question with its choices in one save, reorders by dragging and
publishes; and a questionnaire built from nothing in the admin is published, used by a round
and answered on the public form. Every step under test goes through the pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from feedback.models import Response
from surveys.models import QuestionnaireVersion, Round
from tests.support.admin import fill_round_form
from tests.support.browser import WAYS, fill_conditional_question, fill_sipas_conditional_question

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_staff_adds_a_conditional_question_with_choices_to_a_new_draft_and_publishes_it(
    admin_page, live_server, sipas
) -> None:
    page = admin_page
    page.goto(f"{live_server.url}/admin/surveys/questionnaireversion/{sipas.pk}/change/")

    # Start a new draft from the published version.
    page.click("button[form=new-draft-form]")
    page.wait_for_url(re.compile(r"/questionnaireversion/\d+/change/$"))
    draft = QuestionnaireVersion.objects.get(based_on=sipas)
    assert page.url.endswith(f"/questionnaireversion/{draft.pk}/change/")

    # Open section B3 (Q8_1 … Q8_7) and its "add a question" page.
    page.locator("tr:has(input[value=B3]) a[href*='/surveys/section/']").click()
    page.wait_for_url(re.compile(r"/section/\d+/change/$"))
    page.locator("a.addlink[href*='/question/add/?section=']").click()
    page.wait_for_url(re.compile(r"/question/add/\?section=\d+$"))

    # One question, its display condition on the earlier Q8_4 and three choices: one save.
    fill_sipas_conditional_question(page)
    page.click("input[name=_save]")

    # Back on the section's page, the question sits right after its condition.
    page.wait_for_url(re.compile(r"/section/\d+/change/$"))
    expect(page.locator(".errornote")).to_have_count(0)
    rows = page.locator("#questions-group tbody tr.form-row:not(.empty-form)")
    codes = [rows.nth(i).locator("td.field-code input").input_value() for i in range(rows.count())]
    assert codes[3:6] == ["Q8_4", "Q8_4a", "Q8_5"]
    positions = [
        rows.nth(i).locator("td.field-position input").input_value() for i in range(rows.count())
    ]
    assert positions == [str(n) for n in range(1, len(codes) + 1)]
    added = draft.questions.get(code="Q8_4a")
    assert added.show_if_question.code == "Q8_4" and added.show_if_values == [True]
    assert list(added.choices.values_list("code", "position")) == [
        ("truc_tiep", 1),
        ("truc_tuyen", 2),
        ("ca_hai", 3),
    ]

    # Drag the last question (Q8_7, no condition) to the top: the numbers follow, then save.
    last = rows.filter(has=page.locator(f"input[value={codes[-1]}]"))
    last.locator(".drag-handle").drag_to(rows.nth(0), target_position={"x": 20, "y": 2})
    assert last.locator("td.field-position input").input_value() == "1"
    assert rows.nth(1).locator("td.field-position input").input_value() == "2"
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(r"/section/\d+/change/$"))
    section = added.section
    stored = list(section.questions.order_by("position").values_list("code", flat=True))
    assert stored[0] == codes[-1] and stored[1:] == codes[:-1]

    # Publish the draft from its page.
    page.goto(f"{live_server.url}/admin/surveys/questionnaireversion/{draft.pk}/change/")
    page.click("button[form=publish-form]")
    page.wait_for_url(re.compile(rf"/questionnaireversion/{draft.pk}/change/$"))
    expect(page.locator("ul.messagelist li.success")).to_have_count(1)
    draft.refresh_from_db()
    assert draft.status == QuestionnaireVersion.Status.PUBLISHED


def test_a_questionnaire_built_in_the_admin_is_published_used_by_a_round_and_answered(
    admin_page, live_server
) -> None:
    page, admin = admin_page, f"{live_server.url}/admin/surveys"

    # A new questionnaire and its first version, with one section, all on the admin's pages.
    page.goto(f"{admin}/questionnaire/add/")
    page.fill("#id_code", "thu-tuc")
    page.fill("#id_title_vi", "Khảo sát thủ tục")
    page.click("input[name=_save]")
    page.goto(f"{admin}/questionnaireversion/add/")
    page.select_option("#id_questionnaire", label="thu-tuc: Khảo sát thủ tục")
    page.fill("#id_number", "1")
    page.locator("#sections-group .add-row a").click()
    page.fill("#id_sections-0-code", "MAIN")
    page.fill("#id_sections-0-title_vi", "Thủ tục")
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(r"/questionnaireversion/\d+/change/$"))
    version = QuestionnaireVersion.objects.get(questionnaire__code="thu-tuc")
    assert list(version.sections.values_list("code", "position")) == [("MAIN", 1)]

    # A yes/no screener, then a single-choice question shown when it is yes, with choices.
    page.locator("tr:has(input[value=MAIN]) a[href*='/surveys/section/']").click()
    page.locator("a.addlink[href*='/question/add/?section=']").click()
    page.fill("#id_code", "USED")
    page.select_option("#id_type", "yesno")
    page.check("#id_required")
    page.fill("#id_label_vi", "Ông/Bà có làm thủ tục không?")
    page.check("#id_excluded_from_indices")
    page.click("input[name=_addanother]")
    page.wait_for_url(re.compile(r"/question/add/\?section=\d+$"))
    fill_conditional_question(
        page, "HOW", "Làm bằng cách nào?", shown_if_yes="USED", choices=WAYS[:2]
    )
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/section/\d+/change/$"))
    assert list(version.questions.order_by("position").values_list("code", "position")) == [
        ("USED", 1),
        ("HOW", 2),
    ]

    page.goto(f"{admin}/questionnaireversion/{version.pk}/change/")
    page.click("button[form=publish-form]")
    expect(page.locator("ul.messagelist li.success")).to_have_count(1)
    version.refresh_from_db()
    assert version.status == QuestionnaireVersion.Status.PUBLISHED

    # A round with it over one province, open from yesterday.
    fill_round_form(
        page,
        admin,
        code="thu-tuc-2026",
        name_vi="Khảo sát thủ tục 2026",
        version_id=version.pk,
        units=["19 Thái Nguyên"],
    )
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/round/$"))
    assert list(Round.objects.get(code="thu-tuc-2026").units.values_list("code", flat=True)) == [
        "19"
    ]

    # A citizen answers it on the public form.
    citizen = page.context.browser.new_context(locale="vi-VN")
    form = citizen.new_page()
    form.goto(f"{live_server.url}/rounds/thu-tuc-2026/")
    form.select_option("#id_unit", "19")
    with form.expect_navigation():
        form.locator("form.questionnaire button.primary").click()
    assert not form.locator("#q-HOW").is_visible()
    form.locator("#q-USED").get_by_label("Có", exact=True).check()
    form.locator("#q-HOW").get_by_label("Trực tuyến", exact=True).check()
    with form.expect_navigation():
        form.locator("button[value=next]").click()
    receipt = form.locator("#receipt").inner_text()
    response = Response.objects.get(receipt=receipt)
    answers = dict(response.answers.values_list("question__code", "value"))
    assert answers == {"USED": True, "HOW": "truc_tuyen"}
    citizen.close()
