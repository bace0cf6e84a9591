"""Staff workflows end to end in a real browser, through the pages staff and citizens use.

1. A new draft of SIPAS gets a conditional single-choice question with its choices in one
   save, is published and used by a new round; citizens answer it on the public form; the
   round's admin page counts their responses per unit against ``MIN_PUBLISH_N``, its button
   recomputes the round, and the ranking appears on the public dashboard.
2. Population margins are uploaded as a CSV file on the admin's upload page.
3. Invitations are generated in the admin and read from the CSV it downloads.
4. A paper-form file is imported in the admin and its report read on the import's page.

Nothing under test is done through a service function; the database is only read, to check
what the pages stored. ``MIN_PUBLISH_N`` is lowered to 2 here (30 by default) so that two
citizens make a unit publishable. Celery tasks run in-process (``config.settings.test``), so
the recompute has published the round by the time its page answers.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from feedback.models import Invitation, PaperImport, Response
from scoring.models import PopulationMargin, Run
from surveys.models import QuestionnaireVersion, Round
from tests.support.admin import fill_round_form
from tests.support.browser import fill_sipas_conditional_question

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


# One citizen's answers on the public form, by question code (the values of the inputs):
# the required part A and screeners, the new conditional question, one policy and one
# service item, so that both halves of the SIPAS index have a value.
CITIZEN = {
    "A01": "nu",
    "A02": "26_34",
    **{f"Q8_{n}": "false" for n in (1, 2, 3, 5, 6, 7)},
    "Q8_4": "true",
    "Q8_4a": "truc_tuyen",
    "P01": "5",
    "S01": "4",
}


def submit(page: Any, button: Any) -> None:
    with page.expect_navigation():
        button.click()


def start_answering(page: Any, url: str, unit: str) -> None:
    """On the round's start page choose the unit, and if a step asks for an agency keep
    "none in particular", until the questionnaire opens."""
    page.goto(url)
    page.select_option("#id_unit", unit)
    for _step in range(3):
        submit(page, page.locator("form.questionnaire button.primary"))
        if "/d/" in page.url:
            return
    raise AssertionError(f"the questionnaire did not open: {page.url}")


def answer_questionnaire(page: Any, answers: dict[str, str]) -> str:
    """Answer every shown question that has an answer, section by section; the receipt."""
    while page.locator("input[name=section]").count():
        for code, value in answers.items():
            box = page.locator(f"#q-{code}")
            if box.count() and box.is_visible():
                box.locator(f"input[value='{value}']").check()
        submit(page, page.locator("button[value=next]"))
    return page.locator("#receipt").inner_text()


def unit_row(page: Any, code: str) -> dict[str, str]:
    """A row of the round page's table "Responses and publication"."""
    row = page.locator(f"#publication-units tr[data-unit='{code}']")
    return {
        "responses": row.locator("td.responses").inner_text(),
        "needed": row.locator("td.needed").inner_text(),
        "missing": row.locator("td.missing").inner_text(),
        "state": row.locator("td.published").get_attribute("data-state"),
        "published": row.locator("td.published").inner_text(),
    }


def test_a_new_draft_is_published_answered_recomputed_from_its_rounds_page_and_ranked(
    admin_page, live_server, sipas, settings
) -> None:
    settings.MIN_PUBLISH_N = 2
    page, admin = admin_page, f"{live_server.url}/admin/surveys"

    # A new draft of SIPAS; in section B3 a single-choice question shown when Q8_4 is yes,
    # with its three choices, in one save; then publish the draft.
    page.goto(f"{admin}/questionnaireversion/{sipas.pk}/change/")
    submit(page, page.locator("button[form=new-draft-form]"))
    draft_url = page.url
    assert re.search(r"/questionnaireversion/\d+/change/$", draft_url)
    page.locator("tr:has(input[value=B3]) a[href*='/surveys/section/']").click()
    page.locator("a.addlink[href*='/question/add/?section=']").click()
    page.wait_for_url(re.compile(r"/question/add/\?section=\d+$"))
    fill_sipas_conditional_question(page)
    submit(page, page.locator("input[name=_save]"))
    expect(page.locator(".errornote")).to_have_count(0)
    page.goto(draft_url)
    submit(page, page.locator("button[form=publish-form]"))
    expect(page.locator("ul.messagelist li.success")).to_have_count(1)
    version = QuestionnaireVersion.objects.get(based_on=sipas)
    assert version.status == QuestionnaireVersion.Status.PUBLISHED
    assert version.questions.get(code="Q8_4a").choices.count() == 3

    # A round with it over Hà Nội, Hà Giang and Thái Nguyên, open since yesterday.
    fill_round_form(
        page,
        admin,
        code="sipas-2026",
        name_vi="Khảo sát SIPAS 2026",
        version_id=version.pk,
        units=["01 Hà Nội", "02 Hà Giang", "19 Thái Nguyên"],
    )
    submit(page, page.locator("input[name=_continue]"))
    survey_round = Round.objects.get(code="sipas-2026")
    assert sorted(survey_round.units.values_list("code", flat=True)) == ["01", "02", "19"]
    round_page = page.url
    assert round_page.endswith(f"/round/{survey_round.pk}/change/")
    expect(page.locator("#publication-units tbody tr")).to_have_count(3)
    assert unit_row(page, "19")["responses"] == "0"
    assert unit_row(page, "19")["needed"] == "2"

    # Two citizens rate Thái Nguyên, one Hà Nội and one Hà Giang, on the public form.
    start = f"{live_server.url}/rounds/sipas-2026/"
    receipts = []
    for unit, s01 in (("19", "4"), ("19", "2"), ("01", "5"), ("02", "3")):
        citizen = page.context.browser.new_context(locale="vi-VN")
        form = citizen.new_page()
        start_answering(form, start, unit)
        receipts.append(answer_questionnaire(form, CITIZEN | {"S01": s01}))
        citizen.close()
    stored = Response.objects.filter(round=survey_round)
    assert sorted(stored.values_list("receipt", flat=True)) == sorted(receipts)
    assert set(stored.values_list("answers__question__code", flat=True)) >= {"Q8_4a", "S01"}

    # The round's page: Thái Nguyên has enough responses, Hà Nội and Hà Giang one too few
    # each (were only one of them short, the national value less Thái Nguyên's would give
    # its values back, and Thái Nguyên would be withheld too); its button recomputes the
    # round, and the page then shows what was published.
    page.goto(round_page)
    thai_nguyen = unit_row(page, "19")
    assert (thai_nguyen["responses"], thai_nguyen["missing"]) == ("2", "0")
    assert (unit_row(page, "01")["responses"], unit_row(page, "01")["missing"]) == ("1", "1")
    earlier_runs = set(Run.objects.filter(round=survey_round).values_list("pk", flat=True))
    submit(page, page.locator("#recompute-round-form button"))
    assert page.url == f"{round_page}#publication"
    expect(page.locator("ul.messagelist li.success")).to_have_count(1)
    run = Run.objects.get(round=survey_round, status=Run.Status.PUBLISHED)
    assert run.pk not in earlier_runs and run.response_count == 4
    assert unit_row(page, "19")["state"] == "published"
    assert "1/1" in unit_row(page, "19")["published"]
    assert unit_row(page, "01")["state"] == "withheld"
    assert unit_row(page, "02")["state"] == "withheld"

    # The public dashboard ranks Thái Nguyên and withholds the values of the two others.
    reader = page.context.browser.new_context(locale="vi-VN")
    results = reader.new_page()
    results.goto(f"{live_server.url}/results/")
    submit(results, results.locator("a[href='/results/sipas-2026/']"))
    results.locator("details.data-table summary").click()
    rows = results.locator("details.data-table tbody tr")
    expect(rows).to_have_count(3)
    first = rows.nth(0).locator("td, th")
    assert first.nth(0).inner_text() == "1/1 (95%: 1–1)"
    assert first.nth(1).inner_text() == "Thái Nguyên"
    # P01 satisfied both times (100), S01 once of twice (50): the index is the mean of
    # its policy and service halves, 75.
    assert first.nth(2).inner_text() == "75,00"
    assert first.nth(4).inner_text() == "2"
    withheld = {rows.nth(i).locator("td, th").nth(1).inner_text() for i in (1, 2)}
    assert withheld == {"Hà Nội", "Hà Giang"}
    for i in (1, 2):
        expect(rows.nth(i).locator(".suppressed")).to_have_count(1)
    reader.close()


MARGINS = """unit,dimension,category,population
19,sex_age,nam|18_25,41200
19,sex_age,nu|18_25,40100
19,area,do_thi,300000
19,area,nong_thon,950000
"""


def test_population_margins_are_uploaded_in_the_admin(admin_page, live_server, sipas) -> None:
    page = admin_page
    demo = Round.objects.get(code="demo")
    page.goto(f"{live_server.url}/admin/scoring/populationmargin/")
    page.locator(".object-tools a[href$='/populationmargin/upload/']").click()

    # A file with a wrong category is refused whole, naming its row and column.
    page.select_option("#id_round", "demo")
    wrong = MARGINS.replace("nong_thon", "ngoai_o")
    page.set_input_files(
        "#id_file", {"name": "margins.csv", "mimeType": "text/csv", "buffer": wrong.encode()}
    )
    submit(page, page.locator("#margins-form input[type=submit]"))
    error = page.locator("#margins-form .errorlist").inner_text()
    assert "5" in error and "category" in error and "ngoai_o" in error
    assert not PopulationMargin.objects.exists()

    # The right file is stored, said so, and listed.
    page.select_option("#id_round", "demo")
    page.set_input_files(
        "#id_file", {"name": "margins.csv", "mimeType": "text/csv", "buffer": MARGINS.encode()}
    )
    submit(page, page.locator("#margins-form input[type=submit]"))
    assert page.url.endswith(f"/admin/scoring/populationmargin/?round__id__exact={demo.pk}")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("4")
    listed = page.locator("#result_list tbody td.field-category")
    expect(listed).to_have_count(4)
    assert sorted(listed.all_inner_texts()) == ["do_thi", "nam|18_25", "nong_thon", "nu|18_25"]
    assert sorted(
        PopulationMargin.objects.filter(round=demo).values_list("category", "population")
    ) == [("do_thi", 300000), ("nam|18_25", 41200), ("nong_thon", 950000), ("nu|18_25", 40100)]


def test_invitations_are_generated_in_the_admin_and_their_links_open(
    admin_page, live_server, sipas, settings
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url  # links point at this test's server
    page = admin_page
    page.goto(f"{live_server.url}/admin/feedback/invitation/")
    page.locator(".object-tools a.addlink").click()
    page.select_option("#id_round", label=str(Round.objects.get(code="demo")))
    page.select_option("#id_unit", label="19 Thái Nguyên")
    page.fill("#id_count", "3")
    page.fill("#id_batch", "thu-12-2026")
    with page.expect_download() as download:
        page.locator("#generate-invitations-form input[type=submit]").click()
    assert download.value.suggested_filename == "invitations-demo-19-thu-12-2026.csv"
    lines = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(lines) == 3
    assert {(line["round"], line["unit"], line["batch"], line["used"]) for line in lines} == {
        ("demo", "19", "thu-12-2026", "")
    }
    assert all(line["link"] == f"{live_server.url}/i/{line['token']}/" for line in lines)
    assert sorted(Invitation.objects.values_list("token", flat=True)) == sorted(
        line["token"] for line in lines
    )

    # The list shows them under their batch, and a link from the file opens the invitation.
    page.goto(f"{live_server.url}/admin/feedback/invitation/?batch=thu-12-2026")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    citizen = page.context.browser.new_context(locale="vi-VN")
    invited = citizen.new_page()
    opened = invited.goto(lines[0]["link"])
    assert opened is not None and opened.status == 200
    expect(invited.locator("form button.primary")).to_have_count(1)
    citizen.close()


PAPER = """row_id,unit,A01,A02,Q8_1,Q8_2,Q8_3,Q8_4,Q8_5,Q8_6,Q8_7,S01
P-1,19,nu,18_25,0,0,0,1,0,0,0,5
P-2,19,nam,26_34,không,không,có,có,không,không,không,4
P-3,19,nam,26_34,0,0,0,1,0,0,0,9
P-4,19,nam,,0,0,0,1,0,0,0,4
"""


def test_a_paper_file_is_imported_in_the_admin_and_its_report_read(
    admin_page, live_server, sipas
) -> None:
    page = admin_page
    page.goto(f"{live_server.url}/admin/feedback/paperimport/")
    page.locator(".object-tools a.addlink").click()
    page.select_option("#id_round", label=str(Round.objects.get(code="demo")))
    page.set_input_files(
        "#id_file", {"name": "phieu-giay.csv", "mimeType": "text/csv", "buffer": PAPER.encode()}
    )
    submit(page, page.locator("input[name=_save]"))

    # The import's own page: done, two rows stored, two refused with the column and reason.
    assert re.search(r"/admin/feedback/paperimport/\d+/change/$", page.url)
    imported = PaperImport.objects.get()
    assert (imported.status, imported.accepted_rows, imported.rejected_rows) == ("done", 2, 2)
    assert page.locator(".field-accepted_rows .readonly").inner_text() == "2"
    assert page.locator(".field-rejected_rows .readonly").inner_text() == "2"
    report = page.locator(".field-report_table tbody tr")
    expect(report).to_have_count(4)
    cells = [[cell.inner_text() for cell in report.nth(i).locator("td").all()] for i in range(4)]
    receipts = set(Response.objects.filter(import_batch=imported).values_list("receipt", flat=True))
    assert [c[:2] for c in cells] == [["2", "P-1"], ["3", "P-2"], ["4", "P-3"], ["5", "P-4"]]
    assert {cells[0][4], cells[1][4]} == receipts
    assert cells[2][3] == "S01" and cells[2][4]
    assert cells[3][3] == "A02" and cells[3][4]
