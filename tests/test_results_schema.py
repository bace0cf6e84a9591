"""The OpenAPI schema: it validates, it describes every endpoint, the docs need no CDN. (The
running service honours it under every schemathesis check: tests/test_api_schema.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from config.api_router import urlpatterns
from tests import results_fixtures

published = results_fixtures.published


def api_paths() -> set[str]:
    """Every /api/v1/ route, written as the schema writes it (``{code}``, ``{id}`` for pk)."""
    paths = {"/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(p.pattern)) for p in urlpatterns}
    return {path.replace("{pk}", "{id}") for path in paths}


@pytest.fixture
def schema_document(client: Client) -> dict[str, Any]:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_validates_without_a_warning(tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert target.read_text().startswith("openapi: 3")


def test_every_endpoint_is_described(schema_document: dict[str, Any]) -> None:
    paths = schema_document["paths"]
    assert set(paths) == api_paths()
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("summary") or operation.get("description"), (path, method)
            assert any(code.startswith("2") for code in operation["responses"]), (path, method)


def test_results_endpoints_carry_examples(schema_document: dict[str, Any]) -> None:
    def examples(path: str, code: str = "200") -> dict[str, Any]:
        content = schema_document["paths"][path]["get"]["responses"][code]["content"]
        return content["application/json"].get("examples", {})

    scores = examples("/api/v1/scores/")
    assert any(e["value"]["results"][0]["suppressed"] for e in scores.values())
    assert examples("/api/v1/units/")
    assert examples("/api/v1/scores/", "400")
    scores_get = schema_document["paths"]["/api/v1/scores/"]["get"]
    parameters = {p["name"] for p in scores_get["parameters"]}
    expected = {"round", "indicator", "unit", "suppressed", "ordering", "page", "page_size"}
    assert expected <= parameters


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_are_served_without_a_cdn(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/schema/" in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    for source in sources:
        if "drf_spectacular_sidecar" in source:
            assert finders.find(source.split("/static/", 1)[1]), source


def test_the_schema_is_served_as_yaml_and_json(client: Client) -> None:
    yaml = client.get("/api/schema/")
    assert yaml.status_code == 200 and yaml.content.startswith(b"openapi: 3")
    assert client.get("/api/schema/", {"format": "json"}).json()["info"]["version"] == "v1"


def test_the_api_root_links_the_schema_and_the_results(client: Client, db: None) -> None:
    links = client.get("/api/v1/").json()
    assert links["schema"] == "http://testserver/api/schema/"
    assert links["docs"] == "http://testserver/api/docs/"
    for name in ("units", "indicators", "scores", "rankings", "runs"):
        assert links[name] == f"http://testserver/api/v1/{name}/"


UNCERTAINTY = ("deff", "n_eff", "rank_low", "rank_high", "change", "change_p", "change_significant")


def test_the_schema_documents_precision_rank_intervals_and_changes(
    schema_document: dict[str, Any],
) -> None:
    components = schema_document["components"]["schemas"]
    national = ("deff", "n_eff", "change", "change_p", "change_significant")
    for name, fields in [
        ("Score", UNCERTAINTY),
        ("RankedScore", UNCERTAINTY),
        ("TrendPoint", UNCERTAINTY),
        ("National", national),
    ]:
        properties = components[name]["properties"]
        for field in fields:
            assert properties[field].get("description"), (name, field)
            assert properties[field].get("nullable") is True, (name, field)
    score = components["Score"]["properties"]
    assert "Benjamini" in score["change_significant"]["description"]
    assert "logit" in score["rank_low"]["description"]
    example = next(
        e["value"]["results"][0]
        for e in schema_document["paths"]["/api/v1/scores/"]["get"]["responses"]["200"]["content"][
            "application/json"
        ]["examples"].values()
        if not e["value"]["results"][0]["suppressed"]
    )
    assert set(UNCERTAINTY) <= set(example)
    assert example["rank_low"] <= example["rank"] <= example["rank_high"]
