"""Data flows one way, surveys → feedback → scoring → results → plans: the import-linter contract
in pyproject.toml holds for the tree, and breaks on an import against the flow.

No database: ``lint-imports`` reads the source (CI also runs it on its own, in ``.ci/run``).
"""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(cwd: Path, *, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(pythonpath or cwd)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_the_one_way_flow() -> None:
    result = lint_imports(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_contract_orders_the_apps_as_the_data_flows() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    layers = [name.strip() for layer in contract["layers"] for name in layer.split("|")]

    assert contract["type"] == "layers"
    flow = ["plans", "results", "scoring", "feedback", "surveys"]
    assert [name for name in layers if name in flow] == flow


def test_an_import_against_the_flow_breaks_the_contract(tmp_path: Path) -> None:
    """The same contract over stand-in packages in which surveys imports results."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for package in config["tool"]["importlinter"]["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "surveys" / "models.py").write_text("from results import selectors\n")
    (tmp_path / "results" / "selectors.py").write_text("")
    (tmp_path / ".importlinter").write_text(ini_of(config["tool"]["importlinter"]))

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "surveys is not allowed to import results" in result.stdout
    assert "surveys.models -> results.selectors" in result.stdout


def ini_of(importlinter: dict) -> str:
    """pyproject's [tool.importlinter] written as an .importlinter file."""
    lines = [
        "[importlinter]",
        "root_packages =",
        *(f"    {p}" for p in importlinter["root_packages"]),
    ]
    for contract in importlinter["contracts"]:
        lines += [f"[importlinter:contract:{contract['id']}]", f"name = {contract['name']}"]
        lines += [f"type = {contract['type']}", "layers ="]
        lines += [f"    {layer}" for layer in contract["layers"]]
    return "\n".join(lines) + "\n"
