"""Paper forms as a clerk types them into a file, for benchmarks and tests (the paper import,
``feedback.paper``, reads them back)."""

from __future__ import annotations


def paper_cell(value: object) -> str:
    """An answer as a clerk types it: yes/no as có/không, the codes of a multiple choice
    joined by ";", anything else as its text."""
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, list):
        return ";".join(value)
    return str(value)
