"""The diagnosis of a unit (issue 17): figures checked by hand, the API, the page, the PDF.

The fixture: the round ``demo`` over Thái Nguyên (19) and Lạng Sơn (20), of one region, and
Quảng Ninh (22), of another, four respondents each (``MIN_PUBLISH_N`` = 3), answers chosen
so that the key-driver importance and the quadrants can be worked by hand; the earlier
round ``sipas-2022`` over the same units gives the changes.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.template.defaultfilters import floatformat
from django.test import Client
from django.utils import translation
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pypdf import PdfReader

from results import diagnosis as d
from scoring.models import Score
from surveys.models import Round, Unit
from tests.factories import round_like
from tests.support.responses import DIAGNOSIS_UNITS

API = "/api/v1/rounds/{round}/units/{unit}/diagnosis/"
PDF = "/api/v1/rounds/{round}/units/{unit}/diagnosis.pdf"
PAGE = "/results/{round}/units/{unit}/diagnosis/"


# --- Figures worked by hand ------------------------------------------------------------------


def test_the_difference_from_the_nation_counts_the_unit_inside_the_nation() -> None:
    # d = 60 − 70 = −10; SE_d = √(5²·(1 − 2·0.25) + 2²) = √16.5 = 4.0620;
    # z = 2.4618, p = erfc(2.4618/√2) = 0.013824; interval −10 ± 1.96·4.062.
    test = d.difference_test(
        {"value": 60.0, "se": 5.0, "n": 100, "n_eff": 80.0},
        {"value": 70.0, "se": 2.0, "n": 1000, "n_eff": 800.0},
        unit_share=0.25,
    )
    assert test["difference"] == -10.0
    assert test["se"] == pytest.approx(4.062019, abs=1e-6)
    assert test["p"] == pytest.approx(0.013824, abs=1e-6)
    assert test["low"] == pytest.approx(-17.9614, abs=1e-4)
    assert test["high"] == pytest.approx(-2.0386, abs=1e-4)
    # No national value, no test; a suppressed unit (value None) neither.
    assert d.difference_test({"value": None}, {"value": 70.0}, unit_share=0)["p"] is None


def test_the_weighted_correlation_by_hand() -> None:
    # x = 1,0,1; y = 1,½,½; w = 2,1,1: means ¾ and ¾, Σw·dx·dy = ¼, Σw·dx² = ¾,
    # Σw·dy² = ¼, r = ¼ / √(3/16) = 1/√3.
    assert d.weighted_correlation([1, 0, 1], [1, 0.5, 0.5], [2, 1, 1]) == pytest.approx(
        1 / math.sqrt(3)
    )
    assert d.weighted_correlation([1, 1, 1], [1, 0.5, 0.5], [1, 1, 1]) is None


def test_key_driver_importance_correlates_each_item_with_the_rest() -> None:
    # Four respondents, items a, b, c. Rest scores of a: (1+1)/2, (0+1)/2, (1+1)/2, (0+0)/2
    # = 1, ½, 1, 0 against a = 1, 0, 0, 1: means ½ and 5/8, Σdx·dy = (½·⅜ − ½·(−⅛) −
    # ½·⅜ + ½·(−⅝)) = −¼, Σdx² = 1, Σdy² = 9/64+1/64+9/64+25/64 = 44/64: r = −¼/√(11/16).
    respondents = [
        (1.0, {"a": 1, "b": 1, "c": 1}),
        (1.0, {"a": 0, "b": 0, "c": 1}),
        (1.0, {"a": 0, "b": 1, "c": 1}),
        (1.0, {"a": 1, "b": 0, "c": 0}),
        (1.0, {"a": 1}),  # no other item: no rest score, left out
    ]
    found = d.key_driver_importance(respondents, ["a", "b", "c"], min_n=3)
    assert found["a"]["importance"] == pytest.approx(-0.25 / math.sqrt(11 / 16))
    assert found["a"]["respondents"] == 4
    assert d.key_driver_importance(respondents, ["a"], min_n=5)["a"]["importance"] is None


def test_no_item_placed_when_no_importance_can_be_computed() -> None:
    # A unit whose respondents all answered alike: no correlation, so no importance.
    points = [{"code": "S01", "satisfaction": 0.0, "importance": None}]
    matrix = d.priority_matrix(points)
    assert matrix["satisfaction_cut"] is None and matrix["importance_cut"] is None
    assert matrix["items"] == [{"code": "S01", "satisfaction": 0.0, "importance": None,
                                "quadrant": None}]  # fmt: skip


def test_the_page_of_a_unit_without_variation_is_served(diagnosis_rounds: dict[str, Any]) -> None:
    # Lạng Sơn satisfied no service criterion: nothing to correlate, no quadrant.
    client = Client()
    assert client.get(PAGE.format(round="demo", unit="20")).status_code == 200
    doc = client.get(API.format(round="demo", unit="20")).json()
    assert all(item["quadrant"] is None for item in doc["priority"]["items"])


def test_quadrants_split_at_the_medians() -> None:
    points = [
        {"code": "S01", "satisfaction": 60.0, "importance": 0.5},  # important, low: act first
        {"code": "S02", "satisfaction": 90.0, "importance": 0.4},  # important, high
        {"code": "S03", "satisfaction": 70.0, "importance": 0.1},  # less important, low
        {"code": "S04", "satisfaction": 80.0, "importance": 0.2},  # medians 75 and 0.3
        {"code": "S05", "satisfaction": None, "importance": None},  # withheld: not placed
    ]
    matrix = d.priority_matrix(points)
    assert matrix["satisfaction_cut"] == 75.0
    assert matrix["importance_cut"] == pytest.approx(0.3)
    quadrants = {i["code"]: i["quadrant"] for i in matrix["items"]}
    assert quadrants == {
        "S01": d.CONCENTRATE,
        "S02": d.KEEP_UP,
        "S03": d.LOW_PRIORITY,
        "S04": d.POSSIBLE_OVERKILL,
        "S05": None,
    }


# --- The fixture --------------------------------------------------------------------------------


def scores_of(run: Any, unit: str) -> dict[str, Score]:
    return {
        s.indicator.code: s
        for s in Score.objects.filter(run=run, unit__code=unit, scope="unit").select_related(
            "indicator"
        )
    }


def test_the_diagnosis_by_hand_on_the_fixture(
    diagnosis_rounds: dict[str, Any], client: Client
) -> None:
    run = diagnosis_rounds["run"]
    doc = client.get(API.format(round="demo", unit="19")).json()
    assert doc["unit"] == {
        "code": "19",
        "name": "Thái Nguyên",
        "region": "Trung du và miền núi phía Bắc",
    }
    assert doc["run"]["id"] == run.pk and doc["run"]["min_n"] == 3

    # Values, ranks and changes are the published ones.
    stored = scores_of(run, "19")
    national = {
        s.indicator.code: s
        for s in Score.objects.filter(run=run, scope="national").select_related("indicator")
    }
    by_code = {row["code"]: row for row in doc["indicators"]}
    for code in ("SIPAS", "SVC", "S01", "S02", "P01"):
        row = by_code[code]
        assert row["unit"]["value"] == pytest.approx(stored[code].value)
        assert row["unit"]["rank"] == stored[code].rank
        assert row["unit"]["rank_low"] == stored[code].rank_low
        assert row["unit"]["change"] == stored[code].change
        assert row["national"]["value"] == pytest.approx(national[code].value)
        assert row["difference"]["difference"] == pytest.approx(
            stored[code].value - national[code].value
        )
    assert by_code["S01"]["unit"]["value"] == 50.0 and by_code["S02"]["unit"]["value"] == 75.0
    assert doc["headline"]["code"] == "SIPAS" and doc["main_indicator"] == "SIPAS"
    assert doc["previous"]["round"] == "sipas-2022"
    assert doc["previous"]["units"] == [{"code": "19", "name": "Thái Nguyên"}]

    # The unit's share of the national weights enters the SE of the difference (pooled).
    s01 = by_code["S01"]
    share = stored["S01"].weight_sum / national["S01"].weight_sum
    assert share == pytest.approx(1 / 3)
    expected = d.difference_test(s01["unit"], s01["national"], unit_share=share)
    assert s01["difference"]["p"] == pytest.approx(expected["p"])

    # Key-driver importance: S01 = 1, 0, 0, 1 against rest scores 1, 30/31, 1, 1 (B also
    # fails S02 among its 31 other items): r = (ε/2)/√(3ε²/4) = 1/√3; S02 = 1, 0, 1, 1
    # against 1, 30/31, 30/31, 1: r = 1/√3 as well. Every other item is satisfied by all:
    # no variation, no importance.
    items = {i["code"]: i for i in doc["priority"]["items"]}
    assert items["S01"]["importance"] == pytest.approx(1 / math.sqrt(3))
    assert items["S02"]["importance"] == pytest.approx(1 / math.sqrt(3))
    assert items["S01"]["respondents"] == 4
    assert items["S03"]["importance"] is None and items["P01"]["importance"] is None
    # Medians: satisfaction (50 + 75)/2 = 62.5, importance 1/√3 (ties count as high).
    assert doc["priority"]["satisfaction_cut"] == 62.5
    assert items["S01"]["quadrant"] == d.CONCENTRATE
    assert items["S02"]["quadrant"] == d.KEEP_UP
    assert {i["code"] for i in doc["priority"]["items"] if i["quadrant"]} == {"S01", "S02"}

    # Lạng Sơn: every service criterion at 0 against a nation at 50–67: weaknesses, the
    # largest gap first; its region holds Thái Nguyên and Lạng Sơn, not Quảng Ninh.
    lang_son = client.get(API.format(round="demo", unit="20")).json()
    weak = lang_son["weaknesses"]
    assert "SVC" in weak and "S03" in weak and not lang_son["strengths"]
    rows = {row["code"]: row for row in lang_son["indicators"]}
    gaps = [abs(rows[c]["difference"]["difference"]) for c in weak]
    assert gaps == sorted(gaps, reverse=True)
    assert all(rows[c]["significant"] and rows[c]["direction"] == "below" for c in weak)
    assert [u["code"] for u in lang_son["region"]["units"]] == ["19", "20"]
    assert [u["this"] for u in lang_son["region"]["units"]] == [False, True]
    # Benjamini–Hochberg over the unit's tested indicators, by hand from their p-values.
    p_values = sorted(
        (row["difference"]["p"], code)
        for code, row in rows.items()
        if row["difference"]["p"] is not None
    )
    m = len(p_values)
    k = max((i for i, (p, _c) in enumerate(p_values, 1) if p <= i * 0.05 / m), default=0)
    assert {c for _p, c in p_values[:k]} == {c for c, r in rows.items() if r["significant"]}

    # No respondent-level figure leaves: only aggregates and codes.
    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keys(v)}
        if isinstance(node, list):
            return {k for v in node for k in keys(v)}
        return set()

    found = keys(doc) | keys(lang_son)
    assert not found & {"receipt", "answers", "response", "weight", "psu", "stratum", "x", "y"}


def test_who_may_read_the_diagnosis(diagnosis_rounds: dict[str, Any], client: Client) -> None:
    user_model = get_user_model()
    staff = user_model.objects.create_user("staff", password="x-long-pass-1", is_staff=True)
    allowed = user_model.objects.create_user("allowed", password="x-long-pass-1", is_staff=True)
    allowed.user_permissions.add(Permission.objects.get(codename="view_response"))
    admin = user_model.objects.create_superuser("root", "r@example.org", "x-long-pass-1")
    for who in (None, staff, allowed, admin):
        reader = Client()
        if who is not None:
            reader.force_login(who)
        assert reader.get(API.format(round="demo", unit="19")).status_code == 200
        assert reader.get(PAGE.format(round="demo", unit="19")).status_code == 200
        # Not published (no run), unknown, or a unit the round did not cover: 404 for all.
        for round_code, unit in (("sipas-2025-x", "19"), ("demo", "99"), ("demo", "01")):
            assert reader.get(API.format(round=round_code, unit=unit)).status_code == 404
            assert reader.get(PAGE.format(round=round_code, unit=unit)).status_code == 404
        unpublished = Round.objects.exclude(code__in=["demo", "sipas-2022"]).first()
        if unpublished is None:
            demo = diagnosis_rounds["demo"]
            unpublished = round_like(
                demo, code="later", name_vi="Sau", name_en="Later",
                units=Unit.objects.filter(code__in=DIAGNOSIS_UNITS),
            )  # fmt: skip
        assert reader.get(API.format(round=unpublished.code, unit="19")).status_code == 404
        assert reader.get(PAGE.format(round=unpublished.code, unit="19")).status_code == 404
        assert reader.get(PDF.format(round=unpublished.code, unit="19")).status_code == 404
    # The page shows the tables, the charts, the PDF link, both languages.
    page = client.get(PAGE.format(round="demo", unit="19"), HTTP_ACCEPT_LANGUAGE="vi")
    html = page.content.decode()
    assert "Thái Nguyên" in html and 'id="matrix-caption"' in html and "<svg" in html
    assert "diagnosis.pdf?lang=vi" in html
    english = client.get(PAGE.format(round="demo", unit="19"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Priority matrix" in english.content.decode()
    assert "Ma trận ưu tiên" in html


def test_the_pdf_report_shows_the_apis_values(
    diagnosis_rounds: dict[str, Any], client: Client
) -> None:
    doc = client.get(API.format(round="demo", unit="19")).json()
    headline = doc["headline"]["unit"]
    for lang in ("vi", "en"):
        response = client.get(PDF.format(round="demo", unit="19"), {"lang": lang})
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        reader = PdfReader(io.BytesIO(response.content))
        text = "\n".join(page.extract_text() for page in reader.pages)
        assert "Thái Nguyên" in text and "Trung du và miền núi phía Bắc" in text
        with translation.override(lang):
            value = floatformat(headline["value"], 2)  # as every page rounds
            s01 = floatformat(50.0, 2)
        assert value in text and s01 in text
        rank = f"{headline['rank']}/{headline['rank_of']}"
        assert rank in text
        assert f"{doc['run']['id']}" in text
        if lang == "vi":
            assert "Điểm mạnh và điểm yếu" in text and "Phương pháp" in text
        else:
            assert "Strengths and weaknesses" in text and "Method" in text
        # Conditional GET: the same publication answers 304.
        again = client.get(
            PDF.format(round="demo", unit="19"),
            {"lang": lang},
            HTTP_IF_NONE_MATCH=response["ETag"],
        )
        assert again.status_code == 304
        # Another parameter renders nothing new: the same document, the same ETag.
        other = client.get(PDF.format(round="demo", unit="19"), {"lang": lang, "x": "1"})
        assert other["ETag"] == response["ETag"] and other.content == response.content


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lang=st.text(max_size=12))
def test_a_bad_language_is_a_400_naming_it(db: None, client: Client, lang: str) -> None:
    # The language is checked before anything is read: no round needed.
    if lang in ("vi", "en", ""):
        return
    response = client.get(PDF.format(round="demo", unit="19"), {"lang": lang})
    assert response.status_code == 400
    assert "lang" in response.json()["fields"]
