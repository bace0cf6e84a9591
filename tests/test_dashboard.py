"""The public dashboard: SVG charts, pages in both languages, suppression, 404s, query counts."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext

from demo.responses import generate_demo_responses
from feedback.models import Response
from feedback.services import submit_response
from results.dashboard import charts
from results.selectors import with_children_suppressed
from scoring.models import Run, Score
from scoring.services import compute_run, recompute_round, start_run
from surveys.models import Round, Unit
from tests.support.dashboard import (  # noqa: F401 (published is a fixture)
    SECRET_COMMENT,
    published,
    rank_shown,
)
from tests.support.responses import valid_answers

SVG = "{http://www.w3.org/2000/svg}"


def fraction(share: float) -> float:
    """The x of a point ``share`` of the way along the plot."""
    return charts.PLOT_LEFT + share * (charts.PLOT_RIGHT - charts.PLOT_LEFT)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))


def rows(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if "row" in g.get("class", "").split()]


# --- charts ---------------------------------------------------------------------------------


class TestCharts:
    def test_scale_maps_the_domain_onto_the_plot_and_clamps_outside_values(self) -> None:
        domain = (70.0, 100.0)
        assert charts.scale(70, domain) == charts.PLOT_LEFT
        assert charts.scale(100, domain) == charts.PLOT_RIGHT
        assert charts.scale(85, domain) == pytest.approx(fraction(0.5))
        assert charts.scale(40, domain) == charts.PLOT_LEFT
        assert charts.scale(120, domain) == charts.PLOT_RIGHT

    def test_a_bar_runs_from_the_domain_start_to_its_value_with_the_whisker_on_its_interval(
        self,
    ) -> None:
        bar = charts.Bar("Quảng Ninh", 85.0, "85,00", low=80.0, high=90.0, reference=76.0)
        shape = charts.bar_geometry(bar, (70.0, 100.0))
        assert shape.bar_x == charts.PLOT_LEFT
        assert shape.bar_width == pytest.approx(fraction(0.5) - charts.PLOT_LEFT)
        assert shape.whisker == pytest.approx((fraction(1 / 3), fraction(2 / 3)))
        assert shape.reference_x == pytest.approx(fraction(0.2))

    def test_the_svg_draws_the_computed_bar_width_and_whisker_positions(self) -> None:
        bars = [
            charts.Bar("A", 90.0, "90,00", low=88.0, high=92.0),
            charts.Bar("B", 75.0, "75,00", low=70.0, high=80.0),
        ]
        svg = parse(charts.bar_chart(bars, domain=(60.0, 100.0), labelled_by="cap"))
        drawn = rows(svg)
        assert len(drawn) == 2
        widths = [float(g.find(f"{SVG}rect").get("width")) for g in drawn]
        expected = [fraction(0.75) - charts.PLOT_LEFT, fraction(0.375) - charts.PLOT_LEFT]
        assert widths == pytest.approx(expected)
        whisker = drawn[1].find(f"{SVG}g[@class='whisker']/{SVG}line")
        assert float(whisker.get("x1")) == pytest.approx(fraction(0.25), abs=0.05)
        assert float(whisker.get("x2")) == pytest.approx(fraction(0.5), abs=0.05)
        assert [g.find(f"{SVG}text[@class='value']").text for g in drawn] == ["90,00", "75,00"]

    def test_a_row_without_a_value_draws_no_bar_and_no_whisker_only_its_text(self) -> None:
        bars = [
            charts.Bar("Hà Nội", None, "suppressed", low=None, high=None),
            charts.Bar("Huế", 81.0, "81,00", low=79.0, high=83.0),
        ]
        svg = parse(charts.bar_chart(bars, domain=(70.0, 100.0), labelled_by="cap"))
        hidden, shown = rows(svg)
        assert hidden.find(f"{SVG}rect") is None and hidden.find(f"{SVG}g") is None
        assert hidden.find(f"{SVG}text[@class='value']").text == "suppressed"
        assert "no-value" in hidden.get("class")
        assert shown.find(f"{SVG}rect") is not None
        assert len(svg.findall(f".//{SVG}rect")) == 1

    def test_the_reference_line_crosses_all_rows_at_the_national_value(self) -> None:
        bars = [charts.Bar(str(i), 80.0 + i, "x") for i in range(3)]
        svg = parse(
            charts.bar_chart(
                bars,
                domain=(70.0, 90.0),
                labelled_by="cap",
                reference=75.0,
                reference_label="national 75,00",
            )
        )
        line = svg.find(f"{SVG}line[@class='reference']")
        assert float(line.get("x1")) == pytest.approx(fraction(0.25), abs=0.05)
        assert float(line.get("y2")) == charts.TOP + 3 * charts.ROW_HEIGHT
        assert svg.find(f"{SVG}text[@class='reference-label']").text == "national 75,00"

    def test_the_svg_is_an_image_named_by_the_page_and_sized_to_its_rows(self) -> None:
        svg = parse(
            charts.bar_chart(
                [charts.Bar("A", 1.0, "1")] * 5,
                domain=(0, 10),
                labelled_by="cap",
                described_by="sum",
            )
        )
        assert svg.get("role") == "img"
        assert svg.get("aria-labelledby") == "cap" and svg.get("aria-describedby") == "sum"
        height = charts.TOP + 5 * charts.ROW_HEIGHT + charts.AXIS_HEIGHT
        assert svg.get("viewBox") == f"0 0 {charts.WIDTH} {height}"

    def test_labels_are_escaped_and_long_ones_shortened(self) -> None:
        label = "<script>alert(1)</script>" + "x" * 100
        markup = charts.bar_chart([charts.Bar(label, 1.0, "1")], domain=(0, 10), labelled_by="c")
        assert "<script>" not in markup
        text = parse(markup).find(f".//{SVG}text[@class='label']").text
        assert text.startswith("<script>") and text.endswith("…")
        assert len(text) == charts.LABEL_CHARS

    @pytest.mark.parametrize(
        ("values", "domain"),
        [
            ([72.54, 87.59, 91.2], (70, 100)),
            ([None, 80.0, 80.0], (80, 90)),
            ([100.0], (90, 100)),
            ([0.0, 3.0], (0, 10)),
            ([], (0, 100)),
            ([-5.0, 130.0], (0, 100)),
        ],
    )
    def test_the_domain_is_whole_tens_around_the_values(self, values, domain) -> None:
        assert charts.nice_domain(values) == domain

    def test_ticks_are_labelled_with_the_given_text(self) -> None:
        assert charts.ticks((70, 100)) == [70, 80, 90, 100]
        svg = parse(
            charts.bar_chart(
                [charts.Bar("A", 75.0, "75")],
                domain=(70, 90),
                labelled_by="c",
                tick_text={70: "70%", 80: "80%", 90: "90%"},
            )
        )
        assert [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick"] == [
            "70%",
            "80%",
            "90%",
        ]


def test_units_that_may_be_first_are_named_by_their_ranks() -> None:
    from results.dashboard.values import RankedUnit, Ranking, Value
    from results.selectors import Choice

    def unit(rank: int, low: int, high: int) -> RankedUnit:
        value = Value(value=90.0 - rank, n=50, rank=rank, rank_of=4, rank_low=low, rank_high=high)
        return RankedUnit(f"{rank:02d}", f"Unit {rank}", value)

    choice = Choice("SIPAS", 1, "SIPAS", "index", "SIPAS", "SIPAS")
    # ranks 1–3 have intervals starting at 1; rank 4's does not: units 1–3 may be first
    rows = [unit(1, 1, 2), unit(2, 1, 3), unit(3, 1, 4), unit(4, 2, 4)]
    assert Ranking(choice, rows, None, None).indistinct_from_first == 3
    assert [row.value.rank_uncertain for row in rows] == [True, True, True, True]
    # a sure leader: nobody else may be first
    rows = [unit(1, 1, 1), unit(2, 2, 3), unit(3, 2, 3)]
    ranking = Ranking(choice, rows, None, None)
    assert ranking.indistinct_from_first is None and ranking.ranks_with_intervals
    assert not rows[0].value.rank_uncertain
    # a suppressed unit with a stored interval would not count (its figures are hidden)
    hidden = RankedUnit("99", "Hidden", Value(value=None, suppressed=True, rank_low=1))
    assert Ranking(choice, [*rows, hidden], None, None).indistinct_from_first is None


def test_units_without_a_rank_follow_vietnamese_alphabetical_order() -> None:
    from results.dashboard.values import name_key

    expected = ["Bà Rịa - Vũng Tàu", "Bạc Liêu", "Bắc Giang", "Bắc Kạn", "Bình Định", "Cà Mau"]
    expected += ["Cần Thơ", "Dak Nông", "Đà Nẵng", "Hà Tĩnh", "Hải Dương", "Hậu Giang", "Hưng Yên"]
    assert sorted(reversed(expected), key=name_key) == expected


# --- pages ----------------------------------------------------------------------------------


class Page(HTMLParser):
    """Text of table rows and the attributes of the page's elements, for assertions."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.ids: dict[str, dict[str, str | None]] = {}
        self.svgs: list[dict[str, str | None]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids[attributes["id"]] = {"tag": tag, **attributes}
        if tag == "svg":
            self.svgs.append(attributes)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def row(self, first: str) -> list[str]:
        return next(r for r in self.rows if r and r[0 if r[0] == first else 1] == first)


def get(client: Client, url: str, language: str = "vi") -> tuple[str, Page]:
    client.cookies["django_language"] = language
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    return html, Page(html)


def scores(round_code: str, indicator: str = "SIPAS") -> dict[str, Score]:
    return {
        s.unit.code: s
        for s in Score.objects.filter(
            run__round__code=round_code,
            run__status=Run.Status.PUBLISHED,
            indicator__code=indicator,
            scope=Score.Scope.UNIT,
        ).select_related("unit")
    }


def main(response) -> str:
    """The page's main landmark (the header carries a fresh CSRF token each time)."""
    html = response.content.decode()
    return html[html.index("<main") :]


RANK_CELL = re.compile(r"\d+/\d+ \(95%: .*\)")


def shown(score: Score, language: str) -> str:
    """What a page must show for a stored score (* if published over a withheld child)."""
    if score.suppressed:
        with translation.override(language):
            return gettext("suppressed")
    return two(score.value, language) + mark(score)


def mark(score: Score) -> str:
    """``*`` when the published score rests on a suppressed child (complementary suppression)."""
    flag = with_children_suppressed(Score.objects.filter(pk=score.pk))
    return "*" if flag.values_list("children_suppressed", flat=True).get() else ""


def two(x: float, language: str) -> str:
    """``x`` to 2 decimals as the page's ``floatformat`` writes it (half up: 84.125 → 84.13)."""
    text = str(Decimal(str(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return text.replace(".", ",") if language == "vi" else text


@pytest.mark.django_db
@pytest.mark.usefixtures("published")
class TestPages:
    def test_the_index_lists_rounds_with_published_results_only(self, client) -> None:
        html, _ = get(client, "/results/", "en")
        for code in ("sipas-2022", "demo", "r2025"):
            assert f'href="/results/{code}/"' in html
        assert "/results/empty/" not in html
        assert "Demo survey (illustrative data)" in html
        html, _ = get(client, "/results/", "vi")
        assert "Khảo sát thử (dữ liệu minh họa)" in html and '<html lang="vi">' in html

    @pytest.mark.parametrize("language", ["vi", "en"])
    def test_the_round_page_ranks_units_with_rank_of_and_the_national_value(
        self, client, language
    ) -> None:
        html, page = get(client, "/results/sipas-2022/", language)
        assert f'<html lang="{language}">' in html
        stored = scores("sipas-2022")
        ranked = sorted(stored.values(), key=lambda s: s.rank)
        table = [r for r in page.rows if r and RANK_CELL.fullmatch(r[0])]
        assert [r[1] for r in table] == [s.unit.name for s in ranked]
        assert [r[0] for r in table] == [rank_shown(s, language) for s in ranked]
        assert [r[2] for r in table] == [two(s.value, language) + mark(s) for s in ranked]
        # no interval where the design gives no SE (a unit whose respondents are all in one
        # village): the cell stays empty
        assert [r[3] for r in table] == [
            f"{two(s.ci_low, language)}–{two(s.ci_high, language)}" if s.ci_low is not None else ""
            for s in ranked
        ]
        national = Score.objects.get(
            run__round__code="sipas-2022",
            run__status=Run.Status.PUBLISHED,
            indicator__code="SIPAS",
            scope=Score.Scope.NATIONAL,
        )
        assert two(national.value, language) in html

    @pytest.mark.parametrize("language", ["vi", "en"])
    def test_the_round_page_says_which_units_cannot_be_told_apart(self, client, language) -> None:
        html, _ = get(client, "/results/sipas-2022/", language)
        stored = scores("sipas-2022")
        # 5 respondents a unit: wide rank intervals. k = the worst rank among units whose
        # interval includes 1 — computed here from the stored intervals.
        k = max(s.rank for s in stored.values() if s.rank_low == 1)
        assert k > 1  # so the sentence must appear
        expected = {
            "en": [
                "A rank is followed by its 95% interval, e.g. “2/63 (95%: 1–5)”",
                f"The units ranked 1–{k} cannot be told apart at 95%: each of them may be first.",
            ],
            "vi": [
                "Sau mỗi thứ hạng là khoảng tin cậy 95% của thứ hạng",
                f"Các đơn vị xếp hạng từ 1 đến {k} không thể phân biệt được với nhau",
            ],
        }[language]
        for sentence in expected:
            assert sentence in html

    @pytest.mark.parametrize("language", ["vi", "en"])
    def test_the_unit_page_gives_the_rank_interval_in_words(self, client, language) -> None:
        overall = scores("sipas-2022")["19"]
        html, _ = get(client, "/results/sipas-2022/units/19/", language)
        assert rank_shown(overall, language) in html
        words = {
            "en": f"Its rank lies between {overall.rank_low} and {overall.rank_high} at 95%",
            "vi": f"thứ hạng của đơn vị này nằm trong khoảng từ {overall.rank_low} đến "
            f"{overall.rank_high}",
        }[language]
        assert (words in html) == (overall.rank_high > overall.rank_low)

    def test_the_chart_is_an_image_named_by_its_caption_and_described_by_its_summary(
        self, client
    ) -> None:
        html, page = get(client, "/results/sipas-2022/", "en")
        (svg,) = page.svgs
        assert svg["role"] == "img"
        assert page.ids[svg["aria-labelledby"]]["tag"] == "figcaption"
        assert page.ids[svg["aria-describedby"]]["tag"] == "p"
        assert "Satisfaction Index of Public Administrative Services (SIPAS) by unit" in html
        assert html.count('class="bar"') == 3  # one per unit of the round

    @pytest.mark.parametrize(
        ("key", "indicator"), [("SVC.3", "SVC.3"), ("POL.C", "POL.C"), ("G2", "P06")]
    )
    def test_units_are_ranked_on_elements_contents_and_policy_groups(
        self, client, key, indicator
    ) -> None:
        _, page = get(client, f"/results/sipas-2022/?indicator={key}", "en")
        stored = sorted(
            (s for s in scores("sipas-2022", indicator).values() if not s.suppressed),
            key=lambda s: s.rank,
        )
        table = [r for r in page.rows if r and RANK_CELL.fullmatch(r[0])]
        assert [(r[0], r[2]) for r in table] == [
            (rank_shown(s, "en"), two(s.value, "en") + mark(s)) for s in stored
        ]

    @pytest.mark.parametrize("language", ["vi", "en"])
    def test_a_suppressed_value_shows_as_such_never_as_a_number_and_draws_no_bar(
        self, client, language
    ) -> None:
        hanoi = scores("demo")["01"]
        assert hanoi.suppressed and hanoi.value is not None  # stored, not published
        html, page = get(client, "/results/demo/", language)
        with translation.override(language):
            word = gettext("suppressed")
        row = page.row("Hà Nội")
        assert row[2] == word and row[0] == "" and row[3] == ""
        assert two(hanoi.value, language) not in html
        assert html.count('class="bar"') == 3  # Hà Nội and Hà Giang (1 response each): no bar
        assert html.count('class="row no-value"') == 2

        html, page = get(client, "/results/demo/units/01/", language)
        assert re.search(rf'<dd class="big"><span class="suppressed">{word}</span></dd>', html)
        with translation.override(language):
            header = gettext("Indicator")
        breakdown = [r for r in page.rows if len(r) == 5 and r[0] != header]
        assert len(breakdown) == 12 + 8  # index, fields and elements; policy groups
        assert breakdown and all(r[1] == word and r[2] == "" and r[3] == "" for r in breakdown)
        assert 'class="bar"' not in html  # every value of Hà Nội is suppressed

    def test_the_unit_page_breaks_down_elements_and_policy_groups_against_the_nation(
        self, client
    ) -> None:
        html, page = get(client, "/results/demo/units/19/", "en")
        overall = scores("demo")["19"]
        assert rank_shown(overall, "en") in html
        run = Run.objects.get(round__code="demo", status=Run.Status.PUBLISHED)
        national = {
            s.indicator.code: s
            for s in Score.objects.filter(run=run, scope=Score.Scope.NATIONAL).select_related(
                "indicator"
            )
        }
        unit = {
            s.indicator.code: s
            for s in Score.objects.filter(run=run, unit__code="19").select_related(
                "indicator__policy_group"
            )
        }
        for code in ("SVC.1", "SVC.5", "POL.A", "POL.D", "P05", "P12"):
            name = unit[code].indicator.name_en
            if unit[code].indicator.policy_group_id is not None:
                name = unit[code].indicator.policy_group.name_en
            row = page.row(name)
            assert (row[1], row[4]) == (shown(unit[code], "en"), shown(national[code], "en"))
        assert any(s.suppressed for s in national.values())  # so both cases are checked
        assert any(not s.suppressed for s in unit.values())
        assert len(page.svgs) == 3  # elements, policy groups, trend
        for svg in page.svgs:
            assert page.ids[svg["aria-labelledby"]]["tag"] == "figcaption"

    def test_the_trend_shows_the_unit_in_each_published_round_oldest_first(self, client) -> None:
        _, page = get(client, "/results/r2025/units/22/", "en")
        names = ["SIPAS 2022", "Demo survey (illustrative data)", "Round r2025"]
        trend = [r for r in page.rows if r and r[0] in names]
        assert [r[0] for r in trend] == names
        values = [scores(code)["22"] for code in ("sipas-2022", "demo", "r2025")]
        assert [r[1] for r in trend] == [two(s.value, "en") for s in values]

    def test_a_merged_province_says_it_has_no_earlier_rounds_and_names_its_predecessors(
        self, client
    ) -> None:
        html, page = get(client, "/results/r2025/units/19-2025/", "en")
        trend = [r for r in page.rows if r and r[0].startswith(("Round r", "SIPAS", "Demo"))]
        assert [r[0] for r in trend] == ["Round r2025"]
        assert "Earlier rounds rated those provinces separately" in html
        assert 'href="/results/units/06/"' in html and 'href="/results/units/19/"' in html

    def test_a_predecessor_links_to_its_successor_and_its_latest_results(self, client) -> None:
        html, _ = get(client, "/results/demo/units/19/", "en")
        assert "became part of" in html and 'href="/results/units/19-2025/"' in html
        response = client.get("/results/units/19/")
        assert response.status_code == 302 and response["Location"] == "/results/demo/units/19/"
        response = client.get("/results/units/06/")  # Bắc Kạn: in no round of these tests
        assert response.status_code == 404 and b"/results/" in response.content

    def test_a_round_without_a_published_run_says_so(self, client) -> None:
        client.cookies["django_language"] = "en"
        for url in ("/results/empty/", "/results/empty/units/19/"):
            response = client.get(url)
            assert response.status_code == 200
            assert b"No results of this round have been published yet." in response.content
            assert b"<svg" not in response.content

    @pytest.mark.parametrize(
        "url",
        [
            "/results/nope/",
            "/results/nope/units/19/",
            "/results/demo/units/XX/",
            "/results/sipas-2022/units/01/",  # Hà Nội is not in that round
            "/results/demo/?indicator=NOPE",
            "/results/demo/units/19/?indicator=NOPE",
            "/results/units/XX/",
        ],
    )
    def test_unknown_things_are_a_friendly_404(self, client, url) -> None:
        client.cookies["django_language"] = "en"
        response = client.get(url)
        assert response.status_code == 404
        html = response.content.decode()
        assert "<h1>Not found</h1>" in html and 'href="/results/"' in html
        assert '<html lang="en">' in html

    def test_only_the_published_run_is_shown(self, client) -> None:
        before = scores("demo")["19"]
        for _ in range(5):
            submit_response(
                round_code="demo",
                unit_code="19",
                answers=valid_answers(**{f"S{n:02d}": 1 for n in range(1, 20)}),
                channel=Response.Channel.API,
                client_id=uuid.uuid4(),
            )
        run, _ = start_run(round_code="demo")
        computed = compute_run(run_id=run.pk)
        assert computed.status == Run.Status.COMPUTED
        newer = Score.objects.get(run=computed, unit__code="19", indicator__code="SIPAS")
        assert round(newer.value, 2) != round(before.value, 2)
        html, page = get(client, "/results/demo/", "en")
        assert page.row("Thái Nguyên")[2] == two(before.value, "en")
        html, _ = get(client, "/results/demo/units/19/", "en")
        assert two(before.value, "en") in html and two(newer.value, "en") not in html

    def test_no_personal_data_reaches_the_pages(self, client) -> None:
        receipts = list(Response.objects.values_list("receipt", flat=True))
        for url in (
            "/results/",
            "/results/demo/",
            "/results/demo/units/01/",
            "/results/demo/units/19/",
        ):
            html, _ = get(client, url, "en")
            assert "4711" not in html and SECRET_COMMENT not in html
            assert not any(receipt in html for receipt in receipts)

    def test_the_language_switch_returns_to_the_same_results_page(self, client) -> None:
        html, _ = get(client, "/results/demo/units/19/?indicator=SVC.2", "vi")
        assert 'name="next" type="hidden" value="/results/demo/units/19/?indicator=SVC.2"' in html
        response = client.post(
            "/i18n/setlang/",
            {"language": "en", "next": "/results/demo/units/19/?indicator=SVC.2"},
        )
        assert response.status_code == 302
        html = client.get(response["Location"]).content.decode()
        assert '<html lang="en">' in html and "Administrative procedures over rounds" in html

    def test_the_site_header_links_to_the_results(self, client) -> None:
        html, _ = get(client, "/", "en")
        assert 'href="/results/"' in html


@pytest.mark.django_db
@pytest.mark.usefixtures("published")
class TestQueryCounts:
    @pytest.mark.parametrize(
        ("url", "most"),
        [
            ("/results/", 1),
            ("/results/sipas-2022/", 3),
            ("/results/demo/?indicator=G8", 3),
            ("/results/demo/units/19/", 6),
            ("/results/r2025/units/19-2025/?indicator=SVC.1", 6),
        ],
    )
    def test_a_page_makes_a_small_fixed_number_of_queries(
        self, client, django_assert_max_num_queries, url, most
    ) -> None:
        with django_assert_max_num_queries(most):
            assert client.get(url).status_code == 200

    def test_more_units_do_not_mean_more_queries(self, client, django_assert_num_queries) -> None:
        with django_assert_num_queries(3):
            client.get("/results/demo/")
        demo = Round.objects.get(code="demo")
        demo.units.add(*Unit.objects.filter(code__in=["02", "04", "06"]))
        generate_demo_responses(round_code="demo", responses=21, seed=9)
        recompute_round(round_code="demo")
        cache.clear()  # the indicators of the version were cached by the first view
        with django_assert_num_queries(3):
            html = client.get("/results/demo/").content.decode()
        assert "Bắc Kạn" in html


@pytest.mark.django_db
@pytest.mark.usefixtures("published")
class TestCache:
    def test_a_second_view_reads_what_the_run_determines_from_the_cache(
        self, client, django_assert_num_queries
    ) -> None:
        first = main(client.get("/results/demo/?indicator=SVC.1"))
        with django_assert_num_queries(1):  # the published run, nothing else
            assert main(client.get("/results/demo/?indicator=SVC.1")) == first
        first = main(client.get("/results/demo/units/19/"))
        with django_assert_num_queries(4):  # run, unit, trend, lineage
            assert main(client.get("/results/demo/units/19/")) == first

    def test_a_new_published_run_is_shown_at_once(self, client) -> None:
        html, page = get(client, "/results/demo/", "en")
        before = scores("demo")["19"]
        assert page.row("Thái Nguyên")[2] == two(before.value, "en")
        for _ in range(5):
            submit_response(
                round_code="demo",
                unit_code="19",
                answers=valid_answers(**{f"P{n:02d}": 1 for n in range(1, 15) if n != 7}),
                channel=Response.Channel.API,
                client_id=uuid.uuid4(),
            )
        recompute_round(round_code="demo")
        after = scores("demo")["19"]
        assert round(after.value, 2) != round(before.value, 2)
        _, page = get(client, "/results/demo/", "en")
        assert page.row("Thái Nguyên")[2] == two(after.value, "en")
        html, _ = get(client, "/results/demo/units/19/", "en")
        assert f'<dd class="big">{two(after.value, "en")}</dd>' in html


def test_the_unit_page_of_a_questionnaire_without_an_index_is_served(db, settings) -> None:
    """Items only, no index above them: the page shows the values and no trend (was a 500)."""
    import datetime as dt

    from django.utils import timezone

    from surveys.services import publish_version
    from tests.factories import small_draft

    settings.MIN_PUBLISH_N = 1
    version = publish_version(version_id=small_draft().pk)
    unit = Unit.objects.create(code="U1", name="Tỉnh Một", kind=Unit.Kind.PROVINCE)
    now = timezone.now()
    items_only = Round.objects.create(
        code="items-only", name_vi="Chỉ có mục", version=version,
        period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 6, 30),
        opens_at=now - dt.timedelta(days=1), closes_at=now + dt.timedelta(days=9),
    )  # fmt: skip
    items_only.units.set([unit])
    for sat in (5, 2):
        submit_response(
            round_code="items-only", unit_code="U1", answers={"USED": True, "SAT": sat},
            channel=Response.Channel.API, client_id=uuid.uuid4(),
        )  # fmt: skip
    recompute_round(round_code="items-only")
    client = Client()
    assert client.get("/results/items-only/units/U1/").status_code == 200
    assert client.get("/results/items-only/units/U1/?indicator=NOPE").status_code == 404
