"""A survey round's admin page: each unit's responses against ``MIN_PUBLISH_N`` and its
published value, and the button that recomputes the round, all through the admin's pages."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scoring.models import Run
from surveys.models import Round
from tests.factories import RunFactory, round_like
from tests.support.responses import answer
from tests.support.users import staff_client

pytestmark = pytest.mark.django_db


class UnitRows(HTMLParser):
    """The table ``#publication-units``: unit code → the text of each cell, by class."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: dict[str, dict[str, str]] = {}
        self.in_table = False
        self.unit: str | None = None
        self.cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == "publication-units":
            self.in_table = True
        elif self.in_table and tag == "tr" and a.get("data-unit"):
            self.unit = a["data-unit"]
            self.rows[self.unit] = {}
        elif self.unit and tag in ("td", "th"):
            self.cell = a.get("class") or "unit"
            self.rows[self.unit][self.cell] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_table = False
        elif tag in ("td", "th"):
            self.cell = None
        elif tag == "tr":
            self.unit = None

    def handle_data(self, data: str) -> None:
        if self.unit and self.cell:
            self.rows[self.unit][self.cell] += data


def unit_rows(html: str) -> dict[str, dict[str, str]]:
    parser = UnitRows()
    parser.feed(html)
    return parser.rows


@pytest.fixture(autouse=True)
def _english_and_three_respondents(settings) -> None:
    """Pages in English; a unit is published from 3 respondents on (30 by default)."""
    settings.LANGUAGE_CODE = "en"
    settings.MIN_PUBLISH_N = 3


@pytest.fixture
def demo(sipas) -> Round:
    """The demo round: 3 responses from Thái Nguyên (19), 1 from Hà Nội (01), none elsewhere."""
    for s01 in (5, 4, 2):
        answer("19", S01=s01)
    answer("01", S01=1)
    return Round.objects.get(code="demo")


def change_url(survey_round: Round) -> str:
    return reverse("admin:surveys_round_change", args=[survey_round.pk])


def recompute_url(survey_round: Round) -> str:
    return reverse("admin:surveys_round_recompute", args=[survey_round.pk])


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_round_page_shows_each_units_responses_against_min_publish_n(
    admin_client: Client, demo: Round
) -> None:
    page = admin_client.get(change_url(demo))

    assert page.status_code == 200
    html = page.content.decode()
    rows = unit_rows(html)
    assert len(rows) == demo.units.count() == 63
    assert rows["19"] == {
        "unit": "19 Thái Nguyên",
        "responses": "3",
        "needed": "3",
        "missing": "0",
        "published": "not computed yet",
    }
    assert (rows["01"]["responses"], rows["01"]["missing"]) == ("1", "2")
    assert (rows["22"]["responses"], rows["22"]["missing"]) == ("0", "3")
    assert "No results of this round have been published yet." in html
    assert f'action="{recompute_url(demo)}"' in html
    # The round's own form is still whole: the section sits after it.
    assert html.index('id="round_form"') < html.index('id="publication"')


def test_the_button_on_the_round_page_recomputes_it_and_the_page_shows_what_was_published(
    admin_client: Client, demo: Round
) -> None:
    response = admin_client.post(recompute_url(demo))

    assert response.status_code == 302
    assert response["Location"] == f"{change_url(demo)}#publication"
    run = Run.objects.get(round=demo)  # tasks run in-process in tests
    assert run.status == Run.Status.PUBLISHED
    assert texts(response) == [f"Run {run.pk} of round demo started."]

    page = admin_client.get(change_url(demo)).content.decode()
    rows = unit_rows(page)
    # Thái Nguyên has enough respondents (3) but is withheld too: with Hà Nội's single
    # respondent withheld, the national value and Thái Nguyên's would give it back
    # (complementary suppression, scoring.suppression).
    assert rows["19"]["published"] == "withheld: 3 respondents in the published run"
    assert rows["01"]["published"] == "withheld: 1 respondent in the published run"
    assert rows["22"]["published"] == "no value: no respondents in the published run"
    assert f"run {run.pk}</a>" in page and "from 4 responses" in page


def test_a_round_already_running_is_joined_not_started_again(
    admin_client: Client, demo: Round
) -> None:
    running = RunFactory(round=demo)

    response = admin_client.post(recompute_url(demo))

    assert response.status_code == 302
    assert texts(response) == [f"Run {running.pk} of round demo is already running."]
    assert list(Run.objects.values_list("pk", "status")) == [(running.pk, Run.Status.RUNNING)]
    page = admin_client.get(change_url(demo)).content.decode()
    assert f"run {running.pk}</a>, running." in page


def test_the_recompute_address_takes_only_a_post(admin_client: Client, demo: Round) -> None:
    assert admin_client.get(recompute_url(demo)).status_code == 405
    assert not Run.objects.exists()


def test_staff_who_may_not_start_runs_see_the_counts_but_no_button(
    client: Client, demo: Round
) -> None:
    staff_client(client, "view_round")

    page = client.get(change_url(demo))

    assert page.status_code == 200
    assert unit_rows(page.content.decode())["19"]["responses"] == "3"
    assert recompute_url(demo) not in page.content.decode()
    assert client.post(recompute_url(demo)).status_code == 403
    assert not Run.objects.exists()


def test_staff_who_may_start_runs_recompute_from_the_round_page(
    client: Client, demo: Round
) -> None:
    staff_client(client, "view_round", "add_run")

    page = client.get(change_url(demo))
    response = client.post(recompute_url(demo))

    assert recompute_url(demo) in page.content.decode()
    assert response.status_code == 302
    assert Run.objects.get(round=demo).status == Run.Status.PUBLISHED


def test_staff_who_may_start_runs_but_not_see_rounds_get_403(client: Client, demo: Round) -> None:
    staff_client(client, "add_run")

    assert client.post(recompute_url(demo)).status_code == 403
    assert not Run.objects.exists()


def test_the_round_list_and_add_page_still_render(admin_client: Client, demo: Round) -> None:
    assert admin_client.get(reverse("admin:surveys_round_changelist")).status_code == 200
    add = admin_client.get(reverse("admin:surveys_round_add"))
    assert add.status_code == 200
    assert 'id="publication"' not in add.content.decode()


def test_the_section_reads_the_same_number_of_queries_for_two_units_or_63(
    admin_client: Client, demo: Round
) -> None:
    admin_client.post(recompute_url(demo))
    small = round_like(
        demo, code="two-units", name_vi="Hai đơn vị", units=demo.units.filter(code__in=["01", "19"])
    )
    admin_client.post(recompute_url(small))

    admin_client.get(change_url(small))  # shows (and so uses up) the recompute messages
    counts = []
    for survey_round in (demo, small):
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(change_url(survey_round)).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_the_section_reads_in_vietnamese(admin_client: Client, demo: Round, settings) -> None:
    settings.LANGUAGE_CODE = "vi"
    admin_client.post(recompute_url(demo))

    html = admin_client.get(change_url(demo)).content.decode()

    assert "Phiếu trả lời và công bố kết quả" in html
    assert "Tính lại điểm đợt khảo sát này" in html
    rows = unit_rows(html)
    assert rows["19"]["published"] == "không công bố: 3 người trả lời trong lượt đã công bố"
    assert rows["01"]["published"] == "không công bố: 1 người trả lời trong lượt đã công bố"
