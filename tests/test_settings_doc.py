"""docs/settings.md names every environment variable the service reads, and only those.

The table "Read by config/settings" is checked against what the settings modules read through
django-environ (``env.str(…)``, ``env.list(…)``, …) and their helpers (``env_or``,
``env_int``, ``env_flag``, …); the table "Read elsewhere" against the files it names. No
database: the settings are read as source, not imported.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_DIR = ROOT / "config" / "settings"
PAGE = ROOT / "docs" / "settings.md"
VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]*)`")


def variables_read_by_settings() -> set[str]:
    """Names passed to ``env.<cast>(…)`` or an ``env_…(…)`` helper in config/settings."""
    names: set[str] = set()
    for module in SETTINGS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            reads_env = (isinstance(func, ast.Name) and func.id.startswith("env_")) or (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "env"
            )
            first = node.args[0]
            if reads_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def table_rows(heading: str) -> list[list[str]]:
    """The cells of each body row of the first table under ``## heading`` in docs/settings.md."""
    section = PAGE.read_text(encoding="utf-8").split(f"\n## {heading}\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[1:]]


def names_in(cell: str) -> set[str]:
    return set(VARIABLE.findall(cell))


def test_the_settings_table_names_exactly_the_variables_the_settings_read() -> None:
    documented = set().union(*(names_in(row[0]) for row in table_rows("Read by config/settings")))
    read = variables_read_by_settings()

    assert read, "no env(...) read found in config/settings: has the way settings are read changed?"
    assert read - documented == set(), "read in config/settings but missing from docs/settings.md"
    assert documented - read == set(), "in docs/settings.md but not read by config/settings"


def test_variables_read_elsewhere_are_found_in_the_files_named() -> None:
    read_by_settings = variables_read_by_settings()
    for row in table_rows("Read elsewhere"):
        names = names_in(row[0])
        files = re.findall(r"`([^`]+)`", row[-1])
        texts = {name: (ROOT / name).read_text(encoding="utf-8") for name in files}

        assert names and files, row
        assert not names & read_by_settings, f"{names & read_by_settings} belong to the first table"
        for name in names:
            assert any(name in text for text in texts.values()), (
                f"{name} is read by none of {files}"
            )
        for file, text in texts.items():
            assert any(name in text for name in names), f"{file} reads none of {sorted(names)}"
