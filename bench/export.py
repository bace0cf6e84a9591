"""Raw exports benchmark: ``responses.csv`` through the API against ``COPY ... TO STDOUT``.

Run from the project root, with PostgreSQL listening on loopback::

    uv run python bench/export.py                          # 1,000,000 responses
    uv run python bench/export.py --responses 100000
    uv run python bench/export.py --format xlsx --responses 100000 --generate 20000

It DROPS and re-creates the database ``bench_export_<N>`` (``--database-url`` to name another;
the name must contain "bench"), migrates it, loads the SIPAS questionnaire (``manage.py
load_sipas``) and ``--generate`` demo responses (default 100,000; ``manage.py
generate_demo_data``, about 59 answers each) of the round ``sipas-2022``. A larger N is made
by copying those responses and their answers in SQL (N / generated copies, each response with
a new id and receipt and no client id; foreign-key triggers off during the copy, the answer
indexes rebuilt after it), because generating a million responses takes about 20 minutes on
a small machine; the copies are as wide as the originals, which is what the export reads.
Then VACUUM ANALYZE. ``--reuse`` keeps a database that already holds N responses.

In the same run it then times, ``--runs`` times each, in turns:

- the baseline: plain psycopg reading ``COPY (SELECT response_id, question_id, value FROM
  feedback_answer JOIN feedback_response ... WHERE round ...) TO STDOUT`` (the same answers,
  one row per answer, personal-data questions left out as the export leaves them out);
- the export: ``GET /api/v1/rounds/sipas-2022/responses.csv`` from gunicorn (production
  settings, one sync worker, a staff user's API token), read to the end by a real HTTP client
  (``http.client``, 1 MiB reads), while the worker's resident memory is sampled from
  ``/proc/<pid>/status`` (VmRSS, every 50 ms; VmHWM, the worker's peak, at the end).

It checks that the CSV has N rows plus the header, prints both times, the bytes, the worker's
RSS before and at peak, and ends with ``ratio: <baseline time / export time>`` (the best run
of each). Run it at 100,000 and 1,000,000 responses to see the worker's memory stay flat.

``--format xlsx`` measures ``responses.xlsx`` (streamed as it is written,
``results.export_files.xlsx_stream``) the same way, against another baseline: plain psycopg
reading the same wide rows (one statement: each response's fields and its answers gathered
by ``jsonb_object_agg``, through a server-side cursor) and writing them with an openpyxl
write-only workbook to a temporary file (what the export did before, without Django). The
download is saved to a temporary file and its responses sheet's rows are counted.

``--format sav|dta|parquet`` measures ``responses.sav`` / ``.dta`` / ``.parquet``
(``results.stat_exports``: written to a temporary file from server-side cursors, ReadStat row by
row for SPSS and Stata, one Parquet row group per 10,000 responses; then sent) the same way,
against the library's plain use: the same wide rows read by psycopg into one whole data frame,
written by ``pyreadstat.write_sav``/``write_dta`` (a pandas frame) or ``pyarrow.parquet.
write_table`` (one table) to a temporary file; the baseline's peak memory (``ru_maxrss`` of
the bench process, which only the baseline grows) is printed beside its time. The download is
saved to a temporary file and its rows counted from the file's header (pyreadstat metadata,
Parquet footer).
"""

from __future__ import annotations

import argparse
import http.client
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import benchdb  # bench/ is on sys.path when run as a script
import psycopg

ROUND = "sipas-2022"

BASELINE_SQL = """
COPY (SELECT a.response_id, a.question_id, a.value
      FROM feedback_answer a JOIN feedback_response r ON r.id = a.response_id
      JOIN surveys_round o ON o.id = r.round_id JOIN surveys_question q ON q.id = a.question_id
      WHERE o.code = %(round)s AND NOT q.personal_data) TO STDOUT
"""

# The wide rows of responses.xlsx: each response's fields and its exported answers by code.
WIDE_SQL = """
SELECT r.id, o.code, u.code, r.submitted_at, r.channel, r.weight, r.stratum, r.psu, s.answers
FROM feedback_response r JOIN surveys_round o ON o.id = r.round_id
JOIN surveys_unit u ON u.id = r.unit_id
LEFT JOIN LATERAL (SELECT jsonb_object_agg(q.code, a.value) AS answers
    FROM feedback_answer a JOIN surveys_question q ON q.id = a.question_id
    WHERE a.response_id = r.id AND NOT q.personal_data) s ON true
WHERE o.code = %(round)s ORDER BY r.id
"""
WIDE_CODES_SQL = """
SELECT q.code FROM surveys_question q JOIN surveys_section c ON c.id = q.section_id
JOIN surveys_round o ON o.version_id = q.version_id
WHERE o.code = %(round)s AND NOT q.personal_data ORDER BY c.position, q.position, q.id
"""

# N / generated copies of the generated responses, ids shifted by k * the largest id.
COPY_RESPONSES_SQL = """
INSERT INTO feedback_response (id, receipt, channel, client_id, request_digest, submitted_at,
    weight, agency_id, import_batch_id, invitation_id, round_id, unit_id, version_id,
    paper_key, psu, stratum)
SELECT r.id + k * %(shift)s, 'C' || lpad(k::text, 3, '0') || lpad(r.id::text, 12, '0'),
    r.channel, NULL, r.request_digest, r.submitted_at, r.weight, r.agency_id, NULL, NULL,
    r.round_id, r.unit_id, r.version_id, '', r.psu, r.stratum
FROM feedback_response r CROSS JOIN generate_series(1, %(copies)s - 1) k
WHERE r.id <= %(shift)s
"""
COPY_ANSWERS_SQL = """
INSERT INTO feedback_answer (response_id, round_id, question_id, value, number, code)
SELECT a.response_id + k * %(shift)s, a.round_id, a.question_id, a.value, a.number, a.code
FROM generate_series(1, %(copies)s - 1) k CROSS JOIN feedback_answer a
WHERE a.response_id <= %(shift)s
ORDER BY k, a.response_id, a.question_id
"""


BASELINES = {
    "csv": "COPY of the answers, psycopg",
    "xlsx": "psycopg rows, openpyxl write-only workbook to a file",
    "sav": "psycopg rows, one pandas frame, pyreadstat.write_sav to a file",
    "dta": "psycopg rows, one pandas frame, pyreadstat.write_dta to a file",
    "parquet": "psycopg rows, one pyarrow table, pyarrow.parquet.write_table to a file",
}
FILE_FORMATS = ("xlsx", "sav", "dta", "parquet")  # downloads saved to a file to count rows
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")  # TIME_ZONE of the settings, as the export writes it


def held_responses(database_url: str) -> int | None:
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM feedback_response").fetchone()[0]
    except psycopg.Error:
        return None


def grow(database_url: str, copies: int) -> None:
    """Copy the generated responses and answers ``copies - 1`` times (see the docstring)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        shift = conn.execute("SELECT max(id) FROM feedback_response").fetchone()[0]
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'feedback_answer' "
            "AND indexname NOT IN ('feedback_answer_pkey', 'answer_one_per_question')"
        ).fetchall()
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no FK triggers
            conn.execute(COPY_RESPONSES_SQL, {"shift": shift, "copies": copies})
            for name, _definition in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            conn.execute(COPY_ANSWERS_SQL, {"shift": shift, "copies": copies})
            for _name, definition in indexes:
                conn.execute(definition)
        for table in ("feedback_response", "feedback_answer"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )


def staff_token(env: dict[str, str]) -> str:
    """A staff user with *Can view response* and an API token (manage.py shell)."""
    code = (
        "from django.contrib.auth.models import Permission, User\n"
        "from rest_framework.authtoken.models import Token\n"
        "user, _ = User.objects.get_or_create(username='bench-export', is_staff=True)\n"
        "user.user_permissions.add(Permission.objects.get(codename='view_response'))\n"
        "print(Token.objects.get_or_create(user=user)[0].key)\n"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=benchdb.ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1]


def time_baseline(database_url: str) -> tuple[float, int]:
    started = time.perf_counter()
    size = 0
    with (
        psycopg.connect(database_url) as conn,
        conn.cursor() as cursor,
        cursor.copy(BASELINE_SQL, {"round": ROUND}) as copy,
    ):
        for block in copy:
            size += len(block)
    return time.perf_counter() - started, size


def xlsx_cell(value: object) -> object:
    """An answer as the export writes it: yes/no as 1/0, several choices joined by ';'."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        return ";".join(map(str, value))
    return value


WIDE_NAMES = ["id", "round", "unit", "submitted_at", "channel", "weight", "stratum", "psu"]


def wide_rows(database_url: str) -> Iterator[list[object]]:
    """The header (``WIDE_NAMES`` and the question codes), then one row per response with
    its cells as the export writes them: plain psycopg, a server-side cursor."""
    with psycopg.connect(database_url) as conn:
        codes = [c for (c,) in conn.execute(WIDE_CODES_SQL, {"round": ROUND})]
        yield [*WIDE_NAMES, *codes]
        with conn.cursor(name="wide") as cursor:
            cursor.itersize = 2000
            cursor.execute(WIDE_SQL, {"round": ROUND})
            for *fields, answers in cursor:
                answers = answers or {}
                fields[3] = fields[3].astimezone(ZONE).replace(tzinfo=None)
                yield [*fields, *(xlsx_cell(answers.get(code)) for code in codes)]


def time_xlsx_baseline(database_url: str) -> tuple[float, int]:
    """Plain psycopg rows written by an openpyxl write-only workbook to a temporary file."""
    from openpyxl import Workbook

    started = time.perf_counter()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("responses")
    for row in wide_rows(database_url):
        sheet.append(row)
    with tempfile.TemporaryFile() as handle:
        workbook.save(handle)
        size = handle.tell()
    return time.perf_counter() - started, size


def time_frame_baseline(database_url: str, file_format: str) -> tuple[float, int]:
    """Plain psycopg rows gathered into one data frame, written by the library to a file."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pyreadstat

    started = time.perf_counter()
    rows = wide_rows(database_url)
    header = next(rows)
    columns: dict[str, list[object]] = {name: [] for name in header}
    cells = [columns[name] for name in header]
    for row in rows:
        for column, value in zip(cells, row, strict=True):
            column.append(value)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"baseline.{file_format}"
        if file_format == "parquet":
            pq.write_table(pa.table(columns), path)
        else:
            frame = pd.DataFrame(columns)
            write = pyreadstat.write_sav if file_format == "sav" else pyreadstat.write_dta
            write(frame, str(path))
        size = path.stat().st_size
    return time.perf_counter() - started, size


def file_rows(path: str, file_format: str) -> int:
    """Rows of a downloaded file, the header row counted as the CSV's is (rows + 1)."""
    if file_format == "xlsx":
        return xlsx_rows(path)
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows + 1
    import pyreadstat

    read = pyreadstat.read_sav if file_format == "sav" else pyreadstat.read_dta
    _frame, meta = read(path, metadataonly=True)
    return meta.number_rows + 1


def xlsx_rows(path: str) -> int:
    """Rows of the responses sheet (the first) of a workbook, counted in its XML."""
    rows = 0
    tail = b""
    with zipfile.ZipFile(path) as book, book.open("xl/worksheets/sheet1.xml") as sheet:
        while block := sheet.read(1 << 20):
            rows += (tail + block).count(b"</row>") - tail.count(b"</row>")
            tail = block[-5:]
    return rows


def worker_pid(server: subprocess.Popen) -> int:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def time_export(url: str, port: int, token: str, pid: int) -> tuple[float, int, int, int]:
    """Seconds, bytes and rows of the download; the worker's largest sampled RSS (KiB)."""
    peak = status_kib(pid, "VmRSS")
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, status_kib(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", url, headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"{url} answered {response.status}: {response.read()[:300]!r}")
    size = rows = 0
    last = b""
    file_format = url.rsplit(".", 1)[-1]
    saved_file = file_format in FILE_FORMATS
    with tempfile.NamedTemporaryFile(suffix=f".{file_format}") as saved:
        while chunk := response.read(1 << 20):
            size += len(chunk)
            if saved_file:
                saved.write(chunk)
            else:
                rows += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
                last = chunk[-1:]
        conn.close()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        if saved_file:
            saved.flush()
            rows = file_rows(saved.name, file_format)
    return seconds, size, rows, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000, metavar="N")
    parser.add_argument("--generate", type=int, default=100_000, metavar="G")
    parser.add_argument("--database-url", help="default: postgres on loopback, bench_export_<N>")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--reuse", action="store_true", help="keep a database holding N")
    parser.add_argument("--format", choices=["csv", *FILE_FORMATS], default="csv")
    args = parser.parse_args()
    generated = min(args.generate, args.responses)
    if args.responses % generated:
        parser.error("N must be a multiple of the generated responses (--generate)")
    database_url = args.database_url or (
        f"postgres://postgres@127.0.0.1:5432/bench_export_{args.responses}"
    )
    env = benchdb.bench_env(database_url)
    name = urlsplit(database_url).path.lstrip("/")
    if args.reuse and held_responses(database_url) == args.responses:
        print(f"database {name}: reused with its {args.responses:,} responses")
        benchdb.manage(env, "migrate", "--noinput", "-v", "0")
    else:
        print(f"database {name}: drop, create, migrate, load_sipas, {generated:,} responses")
        benchdb.recreate_database(database_url)
        benchdb.manage(env, "migrate", "--noinput", "-v", "0")
        benchdb.manage(env, "load_sipas")
        benchdb.manage(env, "generate_demo_data", "--round", ROUND, "--responses", str(generated),
               "--seed", str(args.seed))  # fmt: skip
        if args.responses > generated:
            started = time.perf_counter()
            grow(database_url, args.responses // generated)
            seconds = time.perf_counter() - started
            print(f"copied to {args.responses:,} responses in {seconds:.0f} s")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE feedback_response")
            conn.execute("VACUUM ANALYZE feedback_answer")
    with psycopg.connect(database_url) as conn:
        answers = conn.execute("SELECT count(*) FROM feedback_answer").fetchone()[0]
        db_size = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()[0]
    token = staff_token(env)
    file = f"responses.{args.format}"
    url = f"/api/v1/rounds/{ROUND}/{file}"

    port = benchdb.free_port()
    server = benchdb.start_gunicorn(
        env, port, workers=1, timeout=1800
    )  # a sync worker's whole download
    try:
        pid = worker_pid(server)
        rss_start = status_kib(pid, "VmRSS")
        baselines: list[float] = []
        exports: list[float] = []
        for run in range(1, args.runs + 1):
            if args.format == "xlsx":
                seconds, base_size = time_xlsx_baseline(database_url)
                print(f"run {run}: {BASELINES['xlsx']} {seconds:.2f} s, {base_size:,} bytes")
            elif args.format in BASELINES and args.format != "csv":
                seconds, base_size = time_frame_baseline(database_url, args.format)
                peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"run {run}: {BASELINES[args.format]} {seconds:.2f} s, {base_size:,} bytes, "
                      f"bench process peak RSS {peak_mib:.1f} MiB")  # fmt: skip
            else:
                seconds, base_size = time_baseline(database_url)
                print(f"run {run}: COPY TO STDOUT baseline {seconds:.2f} s, {base_size:,} bytes")
            baselines.append(seconds)
            seconds, size, rows, peak = time_export(url, port, token, pid)
            exports.append(seconds)
            if rows != args.responses + 1:
                raise RuntimeError(f"{file} has {rows - 1:,} rows, not {args.responses:,}")
            print(f"run {run}: {file} {seconds:.2f} s, {size:,} bytes, {rows - 1:,} rows, "
                  f"worker RSS peak {peak / 1024:.1f} MiB (sampled)")  # fmt: skip
        hwm = status_kib(pid, "VmHWM")
    finally:
        benchdb.stop(server)
    baseline, export = min(baselines), min(exports)
    print(f"N={args.responses:,} responses, {answers:,} answers, database {db_size}")
    print(f"baseline ({BASELINES[args.format]}): {baseline:.2f} s; "
          f"{file} through gunicorn: {export:.2f} s "
          f"({args.responses / export:,.0f} responses/s)")  # fmt: skip
    print(f"gunicorn worker memory: RSS {rss_start / 1024:.1f} MiB at start, "
          f"peak {hwm / 1024:.1f} MiB (VmHWM), N={args.responses:,}")  # fmt: skip
    print(f"ratio: {baseline / export:.2f}")


if __name__ == "__main__":
    main()
