"""Paper import benchmark: rows/s of a CSV import against the same rows sent to the service.

Run from the project root, with PostgreSQL listening on loopback::

    uv run python bench/paper_import.py                    # 5,000 rows
    uv run python bench/paper_import.py --rows 100000

It DROPS and re-creates the database of ``--database-url`` (whose name must contain
"bench"), migrates it and loads the SIPAS questionnaire with its rounds (``manage.py
load_sipas``). In this process it then times:

- the floor: ``submit_response`` called once per row with the answers already converted,
  as an API client would send them (one transaction per response, nothing read from a file);
- the import: ``create_paper_import`` and ``run_paper_import`` of a CSV file with the same
  number of rows (other ``row_id`` values), which reads and converts each cell, checks that
  the form is not stored already, commits every ``BATCH_ROWS`` rows with the import's
  progress and report, and keeps each form's key;
- the same file imported again: every row a duplicate, nothing stored.

The last line printed is ``ratio: <import rate / floor rate>``.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import time
from pathlib import Path

from benchdb import manage, recreate_database  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_paper_import"
ROUND = "demo"


def answers(rng: random.Random) -> dict[str, object]:
    """A complete SIPAS answer set of a respondent who did an administrative procedure."""
    values: dict[str, object] = {"A01": rng.choice(["nam", "nu"]), "A02": "35_49"}
    values |= {f"Q8_{n}": n in (2, 4) for n in range(1, 8)}
    values |= {f"S{n:02d}": rng.randint(1, 5) for n in range(1, 20)}
    values |= {f"P{n:02d}": rng.randint(1, 5) for n in range(1, 15) if n != 7}
    values |= {"Q2": ["internet", "loa_xa"], "Q4": "khong_co", "Q11": "Tốt"}
    return values


def cell(value: object) -> str:
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, list):
        return ";".join(value)
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    options = parser.parse_args()

    recreate_database(options.database_url)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": options.database_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "load_sipas")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from feedback import paper
    from feedback.models import Response
    from feedback.services import submit_response

    rng = random.Random(11)
    forms = [answers(rng) for _ in range(options.rows)]
    codes = list(forms[0])
    lines = [",".join(["row_id", "unit", *codes])]
    lines += [",".join([f"F-{n}", "19", *(cell(f[c]) for c in codes)]) for n, f in enumerate(forms)]
    content = ("\n".join(lines) + "\n").encode()

    started = time.perf_counter()
    for form in forms:
        submit_response(round_code=ROUND, unit_code="19", answers=form, channel="api")
    floor = options.rows / (time.perf_counter() - started)
    print(f"floor (submit_response per row): {floor:,.0f} rows/s")

    rates = []
    for label in ("import", "same file again"):
        started = time.perf_counter()
        created = paper.create_paper_import(
            round_code=ROUND, file_name="forms.csv", content=content, uploaded_by=None
        )
        done = paper.run_paper_import(import_id=created.pk)
        rate = options.rows / (time.perf_counter() - started)
        rates.append(rate)
        print(
            f"{label}: {rate:,.0f} rows/s ({done.status}: {done.accepted_rows} accepted, "
            f"{done.duplicate_rows} duplicate, {done.rejected_rows} rejected)"
        )
    assert Response.objects.filter(channel="paper").count() == options.rows
    print(f"ratio: {rates[0] / floor:.2f}")


if __name__ == "__main__":
    main()
