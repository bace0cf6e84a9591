"""Run by tests/test_read_replica.py in a process of its own, against a primary and its hot
standby: which database each request reads and writes. Prints one JSON document.

Environment: DATABASE_URL (primary), DATABASE_REPLICA_URL (standby), both migrated/replayed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from feedback.models import Response  # noqa: E402
from tests.support.responses import valid_answers  # noqa: E402


def replayed() -> None:
    """Wait until the standby has replayed everything the primary has written."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        (target,) = cursor.fetchone()
    deadline = time.monotonic() + 30
    with connections["replica"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise SystemExit("the standby did not replay within 30 s")


def standby_replay(paused: bool) -> None:
    with connections["replica"].cursor() as cursor:
        cursor.execute(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")


def written(sql: str) -> str:
    """INSERT or UPDATE for a statement that writes (a ``WITH … INSERT`` included), else ''."""
    words = sql.split()
    if words[0] in ("INSERT", "UPDATE"):
        return words[0]
    return "INSERT" if words[0] == "WITH" and "INSERT INTO" in sql else ""


def request(client: Client, method: str, path: str, **kwargs: object) -> dict[str, object]:
    """Status and the number of statements run on each database."""
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        response = getattr(client, method)(path, **kwargs)
        body = b"".join(response.streaming_content) if response.streaming else response.content
    writes = [word for q in primary if (word := written(q["sql"]))]
    return {
        "status": response.status_code,
        "primary": len(primary),
        "replica": len(replica),
        "primary_writes": writes,
        "primary_sql": [q["sql"][:300] for q in primary][:5],
        "body": body.decode("utf-8", "replace"),
    }


def main() -> None:
    out: dict[str, object] = {}
    call_command("bootstrap", verbosity=0)
    call_command("generate_demo_data", round_code="demo", responses=40, seed=7, verbosity=0)
    call_command("recompute_scores", round_code="demo", verbosity=0)
    replayed()
    client = Client()
    out["scores"] = request(client, "get", "/api/v1/scores/?round=demo")
    out["dashboard"] = request(client, "get", "/results/demo/")
    out["runs"] = request(client, "get", "/api/v1/runs/?round=demo")
    out["scores_csv"] = request(client, "get", "/api/v1/rounds/demo/scores.csv")
    body = {
        "round": "demo",
        "unit": "19",
        "client_id": str(uuid.uuid4()),
        "answers": valid_answers(),
    }
    out["submit"] = request(
        client, "post", "/api/v1/responses/", data=body, content_type="application/json"
    )
    out["admin_login_page"] = request(client, "get", "/admin/login/")

    # An analyst's export: the account and session on the primary, the answers on the standby.
    analyst = get_user_model().objects.create_superuser("analyst", "a@example.org", "x")
    client.force_login(analyst)
    replayed()
    out["responses_csv"] = request(client, "get", "/api/v1/rounds/demo/responses.csv")
    out["responses_csv"]["stored"] = Response.objects.filter(round__code="demo").count()
    client.logout()

    # A lagging replica serves the previous publication, whole, until it has replayed.
    standby_replay(paused=True)
    call_command("recompute_scores", round_code="demo", verbosity=0)
    out["lagging_runs"] = request(client, "get", "/api/v1/runs/?round=demo")
    standby_replay(paused=False)
    replayed()
    out["replayed_runs"] = request(client, "get", "/api/v1/runs/?round=demo")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
