"""The read API of published results: values, filters, caching, throttling and errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from demo.responses import generate_demo_responses
from scoring.models import SCORE_FIELDS, Run, Score
from scoring.services import compute_run, publish_run, recompute_round, start_run
from surveys.models import Unit
from tests import results_fixtures
from tests.results_fixtures import ROUND, UNCERTAINTY, reveal_nothing_of, token_client

published = results_fixtures.published
consumer_client = results_fixtures.consumer_client

pytestmark = pytest.mark.django_db
HIDDEN = ("value", "se", "ci_low", "ci_high")


def get(client: Client, path: str, **params: Any) -> Any:
    return client.get(path, params)


def all_scores(client: Client, **params: Any) -> list[dict[str, Any]]:
    """Every page of ``scores/``."""
    rows: list[dict[str, Any]] = []
    response = client.get("/api/v1/scores/", {"round": ROUND, "page_size": 500, **params})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        if not body["next"]:
            return rows
        response = client.get(body["next"])


def stored(run: Run, **filters: Any) -> dict[tuple[str | None, str], Score]:
    scores = Score.objects.filter(run=run, scope__in=["unit", "national"], **filters)
    return {
        (s.unit.code if s.unit else None, s.indicator.code): s
        for s in scores.select_related("unit", "indicator")
    }


def assert_same(row: dict[str, Any], score: Score) -> None:
    assert row["n"] == score.n and row["valid"] == score.valid
    assert row["rank"] == score.rank and row["rank_of"] == score.rank_of
    assert row["suppressed"] == score.suppressed and row["run"] == score.run_id
    if score.suppressed:
        assert all(row[f] is None for f in HIDDEN + UNCERTAINTY)
    else:
        for field in HIDDEN + UNCERTAINTY:
            assert row[field] == pytest.approx(getattr(score, field))


class TestScores:
    def test_every_unit_and_national_value_of_the_published_run(
        self, client: Client, published: Run
    ) -> None:
        rows = all_scores(client)
        expected = stored(published)
        assert len(rows) == len(expected) == 68 * 64
        for row in rows:
            assert set(row) == {"unit", "indicator", "run", "children_suppressed", *SCORE_FIELDS}
            assert_same(row, expected[row["unit"], row["indicator"]])

    def test_ranked_units_carry_their_rank_interval(self, client: Client, published: Run) -> None:
        rows = [r for r in all_scores(client, indicator="SIPAS") if r["unit"] is not None]
        assert len(rows) == 63
        for row in rows:
            assert 1 <= row["rank_low"] <= row["rank"] <= row["rank_high"] <= 63
        # 10 respondents a unit: the provinces cannot all be told apart
        assert any(r["rank_high"] - r["rank_low"] >= 2 for r in rows)

    def test_suppressed_values_hide_their_precision_rank_interval_and_change(
        self, client: Client, published: Run
    ) -> None:
        hidden = reveal_nothing_of(published, "P06")
        assert hidden
        rows = {r["unit"]: r for r in all_scores(client, indicator="P06")}
        for score in hidden:
            row = rows[score.unit.code]
            assert row["suppressed"] and all(row[f] is None for f in HIDDEN + UNCERTAINTY)

    def test_suppressed_values_are_null_never_the_number(
        self, client: Client, published: Run
    ) -> None:
        rows = all_scores(client, indicator="P06")
        suppressed = [r for r in rows if r["suppressed"]]
        assert suppressed and len(suppressed) < len(rows)
        hidden = Score.objects.filter(run=published, indicator__code="P06", suppressed=True)
        assert all(s.value is not None for s in hidden)  # stored, but not published
        for row in suppressed:
            assert all(row[f] is None for f in HIDDEN) and row["rank"] is None

    def test_filter_by_indicator_and_unit(self, client: Client, published: Run) -> None:
        sipas = all_scores(client, indicator="SIPAS")
        assert len(sipas) == 64 and {r["indicator"] for r in sipas} == {"SIPAS"}
        assert sum(r["unit"] is None for r in sipas) == 1
        two = all_scores(client, indicator="SIPAS,POL", unit="19,22")
        assert {(r["unit"], r["indicator"]) for r in two} == {
            ("19", "SIPAS"),
            ("19", "POL"),
            ("22", "SIPAS"),
            ("22", "POL"),
        }
        national = all_scores(client, indicator="SIPAS", unit="national")
        assert [r["unit"] for r in national] == [None]
        assert_same(national[0], stored(published)[None, "SIPAS"])

    def test_filter_suppressed(self, client: Client, published: Run) -> None:
        rows = all_scores(client, suppressed="true")
        assert rows and all(r["suppressed"] for r in rows)
        assert (
            len(rows)
            == Score.objects.filter(
                run=published, scope__in=["unit", "national"], suppressed=True
            ).count()
        )

    def test_ordering_by_value_puts_suppressed_values_last(
        self, client: Client, published: Run
    ) -> None:
        rows = all_scores(client, indicator="P06", ordering="-value")
        shown = [r["value"] for r in rows if not r["suppressed"]]
        assert shown == sorted(shown, reverse=True)
        assert [r["suppressed"] for r in rows] == sorted(r["suppressed"] for r in rows)
        suppressed_units = [r["unit"] for r in rows if r["suppressed"]]
        assert suppressed_units == sorted(suppressed_units)  # by code, not by hidden value

    def test_ordering_by_rank(self, client: Client, published: Run) -> None:
        rows = all_scores(client, indicator="SIPAS", ordering="rank")
        ranks = [r["rank"] for r in rows if r["rank"] is not None]
        assert ranks == sorted(ranks) and ranks[0] == 1 and rows[-1]["unit"] is None

    def test_pages(self, client: Client, published: Run) -> None:
        body = get(client, "/api/v1/scores/", round=ROUND, indicator="SIPAS").json()
        assert body["count"] == 64 and len(body["results"]) == 50 and body["next"]
        second = client.get(body["next"]).json()
        assert len(second["results"]) == 14 and second["next"] is None

    def test_only_the_published_run_is_public(self, client: Client, published: Run) -> None:
        generate_demo_responses(round_code=ROUND, responses=63, seed=8)
        computed, _created = start_run(round_code=ROUND)
        compute_run(run_id=computed.pk)  # computed, not published
        rows = all_scores(client, indicator="SIPAS")
        assert {r["run"] for r in rows} == {published.pk}
        publish_run(run_id=computed.pk)
        rows = all_scores(client, indicator="SIPAS")
        assert {r["run"] for r in rows} == {computed.pk}
        for row in rows:
            assert_same(row, stored(Run.objects.get(pk=computed.pk))[row["unit"], "SIPAS"])

    def test_a_round_without_published_results_has_no_scores(
        self, client: Client, published: Run
    ) -> None:
        body = get(client, "/api/v1/scores/", round="demo").json()
        assert body["count"] == 0 and body["results"] == []

    def test_queries_do_not_grow_with_the_rows(self, client: Client, published: Run) -> None:
        def count(**params: Any) -> int:
            with CaptureQueriesContext(connection) as queries:
                response = get(client, "/api/v1/scores/", round=ROUND, **params)
                assert response.status_code == 200
            return len(queries)

        # publication, count, page; the indicator filter checks its codes (one more)
        assert count(page_size=500) == 3
        assert count(page_size=10, indicator="SIPAS") == 4
        # the same request again is served from the cache keyed on the run
        with CaptureQueriesContext(connection) as queries:
            get(client, "/api/v1/scores/", round=ROUND, page_size=10, indicator="SIPAS")
        assert len(queries) == 1


class TestRankings:
    def test_units_ranked_with_the_national_value_beside(
        self, client: Client, published: Run
    ) -> None:
        body = get(client, "/api/v1/rankings/", round=ROUND, indicator="SIPAS").json()
        assert body["round"] == ROUND and body["run"] == published.pk
        rows = body["results"]
        assert len(rows) == 63
        ranks = [r["rank"] for r in rows]
        assert ranks == sorted(ranks) and ranks[0] == 1 and rows[0]["rank_of"] == 63
        values = [r["value"] for r in rows]
        assert values == sorted(values, reverse=True)
        expected = stored(published, indicator__code="SIPAS")
        for row in rows:
            assert_same(row, expected[row["unit"], "SIPAS"])
            assert row["name"] == Unit.objects.get(code=row["unit"]).name
        national = Score.objects.get(run=published, indicator__code="SIPAS", scope="national")
        assert body["national"]["value"] == pytest.approx(national.value)
        assert body["national"]["n"] == national.n == 630
        mean = Score.objects.get(run=published, indicator__code="SIPAS", scope="national_mean")
        assert body["national_mean"] == pytest.approx(mean.value)

    def test_suppressed_units_come_last_without_values(
        self, client: Client, published: Run
    ) -> None:
        rows = get(client, "/api/v1/rankings/", round=ROUND, indicator="P06").json()["results"]
        flags = [r["suppressed"] for r in rows]
        assert any(flags) and not all(flags) and flags == sorted(flags)
        for row in rows:
            if row["suppressed"]:
                assert row["rank"] is None and all(row[f] is None for f in HIDDEN)
                assert row["change"] is None

    def test_the_new_fields_are_given_and_hidden_when_suppressed(
        self, client: Client, published: Run
    ) -> None:
        hidden = {s.unit.code for s in reveal_nothing_of(published, "P06")}
        body = get(client, "/api/v1/rankings/", round=ROUND, indicator="P06").json()
        expected = stored(published, indicator__code="P06")
        for row in body["results"]:
            assert set(UNCERTAINTY) <= set(row)
            assert_same(row, expected[row["unit"], "P06"])
            if row["unit"] in hidden:
                assert all(row[f] is None for f in UNCERTAINTY)
        national = expected[None, "P06"]
        for field in ("deff", "n_eff", "change", "change_p", "change_significant"):
            assert body["national"][field] == getattr(national, field)
        assert "rank_low" not in body["national"]


class TestTrend:
    def test_a_unit_across_rounds(self, client: Client, published: Run, settings: Any) -> None:
        generate_demo_responses(round_code="demo", responses=630, seed=9)
        later = recompute_round(round_code="demo")
        body = get(client, "/api/v1/units/19/trend/", indicator="SIPAS").json()
        assert body["unit"] == "19" and body["indicator"] == "SIPAS"
        assert body["successors"] == ["19-2025"] and body["predecessors"] == []
        points = body["points"]
        assert [p["round"] for p in points] == [ROUND, "demo"]
        assert [p["run"] for p in points] == [published.pk, later.pk]
        for point, run in zip(points, (published, later), strict=True):
            assert set(UNCERTAINTY) <= set(point)
            assert_same(point, stored(run, unit__code="19", indicator__code="SIPAS")["19", "SIPAS"])
        # the later round compares with the first: a change with its p-value and flag
        assert points[1]["change"] is not None and 0 <= points[1]["change_p"] <= 1
        assert points[1]["change_significant"] in (True, False)
        assert points[0]["change"] is None and points[0]["change_p"] is None

    def test_a_suppressed_point_hides_its_new_fields(self, client: Client, published: Run) -> None:
        scores = reveal_nothing_of(published, "P06")
        unit = scores[0].unit.code
        body = get(client, f"/api/v1/units/{unit}/trend/", indicator="P06").json()
        (point,) = body["points"]
        assert point["suppressed"] and all(point[f] is None for f in UNCERTAINTY)

    def test_a_merged_unit_names_its_predecessors(self, client: Client, published: Run) -> None:
        body = get(client, "/api/v1/units/19-2025/trend/", indicator="SIPAS").json()
        assert body["predecessors"] == ["06", "19"] and body["points"] == []

    def test_an_unknown_unit_is_a_404(self, client: Client, published: Run) -> None:
        response = get(client, "/api/v1/units/99/trend/", indicator="SIPAS")
        assert response.status_code == 404 and response.json()["code"] == "not_found"


class TestFrame:
    def test_units_with_lineage_across_the_merger(self, client: Client, units: None) -> None:
        body = get(client, "/api/v1/units/", page_size=500).json()
        by_code = {u["code"]: u for u in body["results"]}
        assert body["count"] == Unit.objects.count() == len(by_code)
        merged = by_code["19-2025"]
        assert [p["code"] for p in merged["predecessors"]] == ["06", "19"]
        assert merged["predecessors"][0]["effective_on"] == "2025-07-01"
        assert merged["valid_from"] == "2025-07-01" and merged["valid_to"] is None
        assert [s["code"] for s in by_code["06"]["successors"]] == ["19-2025"]
        assert by_code["06"]["valid_to"] == "2025-06-30"

    def test_units_filtered_and_ordered(self, client: Client, sipas: Any) -> None:
        after = get(client, "/api/v1/units/", valid_on="2025-07-01", page_size=500).json()
        assert after["count"] == 34
        before = get(client, "/api/v1/units/", valid_on="2024-01-01", page_size=500).json()
        assert before["count"] == 63
        covered = get(client, "/api/v1/units/", round=ROUND, page_size=500).json()
        assert covered["count"] == 63
        cities = get(client, "/api/v1/units/", kind="municipality", ordering="-code").json()
        codes = [u["code"] for u in cities["results"]]
        assert codes == sorted(codes, reverse=True)
        assert set(codes) == set(
            Unit.objects.filter(kind="municipality").values_list("code", flat=True)
        )

    def test_the_indicator_tree_says_what_each_value_is_made_of(
        self, client: Client, sipas: Any
    ) -> None:
        body = get(client, "/api/v1/indicators/", round=ROUND).json()
        assert body["round"] == ROUND and body["version"]["number"] == sipas.number
        nodes = {n["code"]: n for n in body["results"]}
        assert body["results"][0]["code"] == "SIPAS" and nodes["SIPAS"]["parent"] is None
        assert nodes["POL"]["parent"] == "SIPAS" and nodes["SVC.1"]["parent"] == "SVC"
        assert nodes["SVC.1"]["questions"] == ["S01", "S02", "S03", "S04"]
        assert nodes["S01"]["questions"] == ["S01"] and nodes["S01"]["aggregation"] == "share"
        assert nodes["S01"]["satisfied_values"] == [4, 5]
        assert len(nodes["SVC"]["questions"]) == 19
        assert len(nodes["SIPAS"]["questions"]) == 33
        assert set(nodes["SIPAS"]["name"]) == {"vi", "en"} and nodes["SIPAS"]["name"]["en"]

    def test_runs_history_and_status(self, client: Client, published: Run) -> None:
        later = recompute_round(round_code=ROUND)
        body = get(client, "/api/v1/runs/").json()
        statuses = {r["id"]: r["status"] for r in body["results"]}
        assert statuses == {later.pk: "published", published.pk: "superseded"}
        assert body["results"][0]["id"] == later.pk  # newest first
        only = get(client, "/api/v1/runs/", status="published", round=ROUND).json()
        assert [r["id"] for r in only["results"]] == [later.pk]
        assert get(client, "/api/v1/runs/", round="demo").json()["count"] == 0

    def test_rounds_with_published_results(self, client: Client, published: Run) -> None:
        rounds = get(client, "/api/v1/rounds/", state="published").json()["results"]
        assert [r["code"] for r in rounds] == [ROUND]
        assert rounds[0]["published_run"]["id"] == published.pk
        every = get(client, "/api/v1/rounds/", state="all").json()["results"]
        assert {r["code"] for r in every} == {ROUND, "demo"}
        open_now = get(client, "/api/v1/rounds/").json()["results"]
        assert [r["code"] for r in open_now] == ["demo"]
        assert open_now[0]["published_run"] is None


class TestConditionalGet:
    def test_etag_and_last_modified_come_from_the_published_run(
        self, client: Client, published: Run
    ) -> None:
        first = get(client, "/api/v1/scores/", round=ROUND, indicator="SIPAS")
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert etag.startswith('"') and "no-cache" in first.headers["Cache-Control"]
        assert modified == dt.datetime.fromtimestamp(
            int(published.published_at.timestamp()), dt.UTC
        ).strftime("%a, %d %b %Y %H:%M:%S GMT")
        again = client.get(
            "/api/v1/scores/", {"round": ROUND, "indicator": "SIPAS"}, HTTP_IF_NONE_MATCH=etag
        )
        assert again.status_code == 304 and again.headers["ETag"] == etag
        since = client.get(
            "/api/v1/scores/",
            {"round": ROUND, "indicator": "SIPAS"},
            HTTP_IF_MODIFIED_SINCE=modified,
        )
        assert since.status_code == 304

    def test_a_new_publication_changes_them_at_once(self, client: Client, published: Run) -> None:
        params = {"round": ROUND, "indicator": "SIPAS"}
        for path in ("/api/v1/scores/", "/api/v1/rankings/"):
            client.get(path, params)  # cached now
        etags = {p: client.get(p, params).headers["ETag"] for p in ("/api/v1/scores/",)}
        ranking_etag = client.get("/api/v1/rankings/", params).headers["ETag"]
        generate_demo_responses(round_code=ROUND, responses=63, seed=8)
        later = recompute_round(round_code=ROUND)
        fresh = client.get("/api/v1/scores/", params, HTTP_IF_NONE_MATCH=etags["/api/v1/scores/"])
        assert fresh.status_code == 200 and fresh.headers["ETag"] != etags["/api/v1/scores/"]
        assert {r["run"] for r in fresh.json()["results"]} == {later.pk}
        ranking = client.get("/api/v1/rankings/", params, HTTP_IF_NONE_MATCH=ranking_etag)
        assert ranking.status_code == 200 and ranking.json()["run"] == later.pk
        assert ranking.headers["ETag"] != ranking_etag
        assert (
            client.get("/api/v1/scores/", params, HTTP_IF_NONE_MATCH=fresh.headers["ETag"])
        ).status_code == 304

    def test_the_etag_depends_on_the_query_and_the_language(
        self, client: Client, published: Run
    ) -> None:
        def etag(params: dict[str, str], language: str = "vi") -> str:
            response = client.get("/api/v1/scores/", params, HTTP_ACCEPT_LANGUAGE=language)
            return response.headers["ETag"]

        base = {"round": ROUND, "indicator": "SIPAS"}
        assert etag(base) == etag({"indicator": "SIPAS", "round": ROUND})  # order-free
        assert etag(base) != etag(base | {"unit": "19"})
        assert etag(base) != etag(base, "en")

    def test_token_and_anonymous_clients_get_the_same_document(
        self, client: Client, consumer_client: Client, published: Run
    ) -> None:
        # Anonymous reads of a cached document are answered before DRF; tokens go through it.
        params = {"round": ROUND, "indicator": "SIPAS"}
        for path in ("/api/v1/scores/", "/api/v1/rankings/", "/api/v1/units/19/trend/"):
            built = consumer_client.get(path, params)
            cached = client.get(path, params)
            assert built.status_code == cached.status_code == 200
            assert (
                built.content == cached.content and built.headers["ETag"] == cached.headers["ETag"]
            )
            for name in ("Last-Modified", "Cache-Control", "Content-Type", "Vary"):
                assert built.headers[name] == cached.headers[name], name
            again = consumer_client.get(path, params, HTTP_IF_NONE_MATCH=built.headers["ETag"])
            assert again.status_code == 304

    def test_documents_not_from_a_run_have_a_content_etag(
        self, client: Client, published: Run
    ) -> None:
        for path, params in [
            ("/api/v1/units/", {}),
            ("/api/v1/indicators/", {"round": ROUND}),
            ("/api/v1/runs/", {}),
            ("/api/v1/rounds/", {"state": "all"}),
        ]:
            first = client.get(path, params)
            assert first.status_code == 200 and first.headers["ETag"]
            again = client.get(path, params, HTTP_IF_NONE_MATCH=first.headers["ETag"])
            assert again.status_code == 304, path
        runs_etag = client.get("/api/v1/runs/").headers["ETag"]
        recompute_round(round_code=ROUND)
        assert client.get("/api/v1/runs/", HTTP_IF_NONE_MATCH=runs_etag).status_code == 200


class TestThrottling:
    @pytest.fixture
    def rates(self, settings: Any) -> None:
        settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
            "DEFAULT_THROTTLE_RATES": settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
            | {  # hourly windows: a slow run crossing a window's end would reset the counts
                "results-anon": "3/hour",
                "results-user": "5/hour",
                "results-consumer": "8/hour",
            }
        }

    @staticmethod
    def served(client: Client, times: int) -> list[int]:
        return [
            client.get("/api/v1/rankings/", {"round": ROUND, "indicator": "SIPAS"}).status_code
            for _ in range(times)
        ]

    def test_anonymous_clients_get_the_lowest_rate(
        self, client: Client, published: Run, rates: None
    ) -> None:
        assert self.served(client, 4) == [200, 200, 200, 429]
        refused = client.get("/api/v1/units/")
        assert refused.status_code == 429 and refused.json()["code"] == "throttled"
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600

    def test_consumer_tokens_get_a_higher_rate(
        self, client: Client, consumer_client: Client, published: Run, rates: None
    ) -> None:
        assert self.served(client, 4)[-1] == 429  # the anonymous quota is spent…
        assert self.served(consumer_client, 9) == [200] * 8 + [429]  # …not the token's
        user = token_client("researcher")
        assert self.served(user, 6) == [200] * 5 + [429]

    def test_no_client_address_is_kept_in_the_cache(
        self, client: Client, published: Run, rates: None
    ) -> None:
        from django.core.cache import cache

        client.get("/api/v1/units/", REMOTE_ADDR="203.0.113.9")
        if hasattr(cache, "_cache") and hasattr(cache._cache, "get_client"):
            keys = [k.decode() for k in cache._cache.get_client().keys("*")]
        else:
            keys = list(getattr(cache, "_cache", {}))
        assert keys and not any("203.0.113.9" in k for k in keys)


BAD_PARAMETERS = [
    ("/api/v1/scores/", {}, "round"),
    ("/api/v1/scores/", {"round": "nope"}, "round"),
    ("/api/v1/scores/", {"round": "bad code!"}, "round"),
    ("/api/v1/scores/", {"round": ROUND, "indicator": "NOPE"}, "indicator"),
    ("/api/v1/scores/", {"round": ROUND, "unit": "999"}, "unit"),
    ("/api/v1/scores/", {"round": ROUND, "ordering": "-sideways"}, "ordering"),
    ("/api/v1/scores/", {"round": ROUND, "suppressed": "maybe"}, "suppressed"),
    ("/api/v1/scores/", {"round": ROUND, "page": "-1"}, "page"),
    ("/api/v1/scores/", {"round": ROUND, "page_size": "501"}, "page_size"),
    ("/api/v1/rankings/", {"round": ROUND}, "indicator"),
    ("/api/v1/rankings/", {"round": ROUND, "indicator": "NOPE"}, "indicator"),
    ("/api/v1/rankings/", {"round": "nope", "indicator": "SIPAS"}, "round"),
    ("/api/v1/units/19/trend/", {}, "indicator"),
    ("/api/v1/units/19/trend/", {"indicator": "NOPE"}, "indicator"),
    ("/api/v1/indicators/", {}, "round"),
    ("/api/v1/indicators/", {"round": "nope"}, "round"),
    ("/api/v1/units/", {"valid_on": "yesterday"}, "valid_on"),
    ("/api/v1/units/", {"kind": "galaxy"}, "kind"),
    ("/api/v1/units/", {"page": "0"}, "page"),
    ("/api/v1/runs/", {"status": "sleeping"}, "status"),
    ("/api/v1/rounds/", {"state": "someday"}, "state"),
    ("/api/v1/rounds/", {"state": ""}, "state"),
    ("/api/v1/units/", {"valid_on": ""}, "valid_on"),
    ("/api/v1/scores/", {"round": "nul\x00"}, "round"),
    ("/api/v1/units/", {"region": "nul\x00"}, "region"),
]


class TestBadParameters:
    def test_a_bad_parameter_is_a_400_naming_it(self, client: Client, published: Run) -> None:
        wrong = []
        for path, params, name in BAD_PARAMETERS:
            response = client.get(path, params)
            body = response.json()
            if (
                response.status_code != 400
                or body["code"] != "invalid"
                or name not in body.get("fields", {})
            ):
                wrong.append((path, params, response.status_code, body))
        assert wrong == []

    def test_a_page_past_the_last_is_a_404_naming_it(self, client: Client, published: Run) -> None:
        response = client.get("/api/v1/scores/", {"round": ROUND, "page": "999"})
        assert response.status_code == 404
        assert response.json() == {
            "code": "not_found",
            "detail": "Không tìm thấy.",
            "fields": {"page": ["Không có trang này."]},
        }

    def test_a_path_code_with_forbidden_characters_is_a_404(
        self, client: Client, published: Run
    ) -> None:
        for path in ("/api/v1/units/%00/trend/", "/api/v1/rounds/a%20b/scores.csv"):
            assert client.get(path, {"indicator": "SIPAS"}).status_code == 404

    def test_errors_speak_the_clients_language(self, client: Client, published: Run) -> None:
        english = client.get("/api/v1/scores/", HTTP_ACCEPT_LANGUAGE="en").json()
        assert english["fields"]["round"] == ["This field is required."]


def test_the_published_run_is_read_through_djangos_connection(
    published: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from results import selectors

    with CaptureQueriesContext(connection) as queries:
        through_django = selectors.publication(round_code=ROUND)
    assert len(queries) == 1 and "scoring_run" in queries[0]["sql"]  # counted like any read
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    for _ in range(2):
        assert selectors.publication(round_code=ROUND) == through_django
    assert through_django.run_id == published.pk
    assert through_django.published_at == published.published_at
    assert [p.run_id for p in selectors.publications()] == [published.pk]
    assert selectors.publication(round_code="demo") is None


def test_a_process_keeps_its_last_documents_within_a_byte_budget() -> None:
    from results.cache import LocalDocuments

    documents = LocalDocuments(max_bytes=100)
    for key in "abcd":
        documents.put(key, key.encode() * 25)
    assert all(documents.get(key) for key in "bcda")  # 100 bytes fit; a is now the newest
    documents.put("e", b"e" * 25)  # over budget: b, the least recently used, goes
    assert documents.get("b") is None and documents.get("a") and documents.get("e")
    assert documents.size == 100
    documents.put("huge", b"x" * 26)  # more than a quarter of the budget: not kept
    assert documents.get("huge") is None and documents.get("c")
