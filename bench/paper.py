"""Paper import benchmark: a file of paper forms through the import against plain psycopg COPY.

Run from the project root, with PostgreSQL listening on loopback::

    uv run python bench/paper.py                   # 100,000 rows
    uv run python bench/paper.py --rows 10000 --database-url \\
        postgres://postgres@127.0.0.1:5432/bench_paper

It DROPS and re-creates the database of ``--database-url`` (whose name must contain
"bench"), migrates it and loads the SIPAS questionnaire with its rounds (``manage.py
load_sipas``); it needs nothing beyond the project's locked dependencies. It builds a CSV
file of ``--rows`` complete SIPAS forms (44 answers each, one row_id per form) and, in this
process, times:

- the baseline: the same forms inserted with plain psycopg, already converted (nothing read
  from a file, nothing checked): one ``COPY`` of the responses and one ``COPY`` of their
  answers into the service's own tables, in one transaction. COPY is the fastest way
  psycopg has to insert rows (``executemany`` is several times slower), so this is the
  strict floor;
- the import: ``create_paper_import`` then ``run_paper_import`` of the CSV file (the tables
  emptied first, as for the baseline): counting the rows, reading and converting every
  cell, checking the answers against the questionnaire, the forms stored already, and
  storing the good rows with their receipts, keys, report and progress;
- with ``--again``, the same file imported again: every row a duplicate, nothing stored
  (not in the ratio).

While the import runs, a second connection reads its progress (``processed_rows``) every
0.2 s, as the admin page and the API show it, and the number of distinct values seen is
printed. The last line printed is ``ratio: <import rows/s / baseline rows/s>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import threading
import time
from collections.abc import Iterator

import psycopg
from benchdb import (
    manage,
    recreate_database,
    setup_django,
)  # bench/ is on sys.path when run as a script

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_paper"
ROUND = "demo"
UNIT = "19"


def answers(rng: random.Random) -> dict[str, object]:
    """A complete SIPAS answer set of a respondent who did an administrative procedure."""
    values: dict[str, object] = {"A01": rng.choice(["nam", "nu"]), "A02": "35_49"}
    values |= {f"Q8_{n}": n in (2, 4) for n in range(1, 8)}
    values |= {f"S{n:02d}": rng.randint(1, 5) for n in range(1, 20)}
    values |= {f"P{n:02d}": rng.randint(1, 5) for n in range(1, 15) if n != 7}
    values |= {"Q2": ["internet", "loa_xa"], "Q4": "khong_co", "Q11": f"Ý kiến {rng.random()}"}
    return values


def typed_columns(value: object, kind: str) -> tuple[float | None, str]:
    """The ``number`` and ``code`` columns of an answer, as the service stores them."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), ""
    if isinstance(value, int):
        return float(value), ""
    return None, value if kind == "single" and isinstance(value, str) else ""


def baseline(
    url: str, forms: list[dict[str, object]], ids: dict[str, tuple[int, str]], fixed: dict
) -> float:
    """Seconds to insert the forms, already converted, with two COPY in one transaction."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('feedback_response', 'id')) "
            "FROM generate_series(1, %s)",
            [len(forms)],
        )
        response_ids = [row[0] for row in cursor.fetchall()]
        with cursor.copy(
            "COPY feedback_response (id, receipt, round_id, version_id, unit_id, channel, "
            "request_digest, submitted_at, weight, import_batch_id, paper_key) FROM STDIN"
        ) as copy:
            for n, response_id in enumerate(response_ids):
                copy.write_row(
                    (
                        response_id,
                        f"B{n:09d}",
                        fixed["round_id"],
                        fixed["version_id"],
                        fixed["unit_id"],
                        "paper",
                        "",
                        fixed["now"],
                        1.0,
                        None,
                        f"row:F-{n}",
                    )
                )
        with cursor.copy(
            "COPY feedback_answer (response_id, round_id, question_id, value, number, code) "
            "FROM STDIN"
        ) as copy:
            for response_id, form in zip(response_ids, forms, strict=True):
                for code, value in form.items():
                    question_id, kind = ids[code]
                    number, choice = typed_columns(value, kind)
                    copy.write_row(
                        (
                            response_id,
                            fixed["round_id"],
                            question_id,
                            json.dumps(value, ensure_ascii=False),
                            number,
                            choice,
                        )
                    )
    return time.perf_counter() - started


def empty_tables(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # No VACUUM or ANALYZE: statistics of an empty table make the planner scan it.
        conn.execute("TRUNCATE feedback_answer, feedback_response CASCADE")


def watch_progress(url: str, stop: threading.Event, seen: set[int]) -> None:
    """Read the running import's progress as the API does, every 0.2 s, until ``stop``."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(
                "SELECT processed_rows FROM feedback_paperimport WHERE status = 'running'"
            ).fetchone()
            if row is not None:
                seen.add(row[0])
            stop.wait(0.2)


def lines(forms: list[dict[str, object]], codes: list[str]) -> Iterator[str]:
    from demo.paper_forms import paper_cell  # the project is importable once set up

    yield ",".join(["row_id", "unit", *codes])
    for n, form in enumerate(forms):
        yield ",".join([f"F-{n}", UNIT, *(paper_cell(form[c]) for c in codes)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--again", action="store_true", help="import the file a second time")
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
    setup_django(env)
    from django.utils import timezone

    from feedback.models import Answer, Response
    from feedback.paper import services as paper
    from surveys.models import Round

    rng = random.Random(11)
    forms = [answers(rng) for _ in range(options.rows)]
    codes = list(forms[0])
    content = ("\n".join(lines(forms, codes)) + "\n").encode()
    survey_round = Round.objects.get(code=ROUND)
    ids = {q.code: (q.pk, q.type) for q in survey_round.version.questions.filter(code__in=codes)}
    fixed = {
        "round_id": survey_round.pk,
        "version_id": survey_round.version_id,
        "unit_id": survey_round.units.get(code=UNIT).pk,
        "now": timezone.now(),
    }
    print(f"{options.rows:,} rows, {len(codes)} answers each, file of {len(content):,} bytes")

    floor_seconds = baseline(options.database_url, forms, ids, fixed)
    floor = options.rows / floor_seconds
    stored_answers = Answer.objects.count()
    print(
        f"baseline (plain psycopg, COPY of responses and answers): {floor_seconds:.1f} s, "
        f"{floor:,.0f} rows/s ({stored_answers:,} answers)"
    )
    empty_tables(options.database_url)

    rates = []
    for label in ("import", "same file again")[: 2 if options.again else 1]:
        stop, seen = threading.Event(), set()
        watcher = threading.Thread(
            target=watch_progress, args=(options.database_url, stop, seen), daemon=True
        )
        watcher.start()
        started = time.perf_counter()
        created = paper.create_paper_import(
            round_code=ROUND, file_name="forms.csv", content=content, uploaded_by=None
        )
        done = paper.run_paper_import(import_id=created.pk)
        seconds = time.perf_counter() - started
        stop.set()
        watcher.join()
        rates.append(options.rows / seconds)
        print(
            f"{label}: {seconds:.1f} s, {rates[-1]:,.0f} rows/s ({done.status}: "
            f"{done.accepted_rows:,} accepted, {done.duplicate_rows:,} duplicate, "
            f"{done.rejected_rows:,} rejected; batches of "
            f"{paper.batch_rows(done.total_rows):,} rows; progress seen at "
            f"{len(seen - {0})} values while running)"
        )
    assert Response.objects.filter(channel="paper").count() == options.rows
    assert Answer.objects.count() == stored_answers, "the import stored other answers"
    print(f"ratio: {rates[0] / floor:.2f}")


if __name__ == "__main__":
    main()
