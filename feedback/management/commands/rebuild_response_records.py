"""Rebuild or check the compact response records (``feedback.records``) from the answers.

    manage.py rebuild_response_records                  # every round
    manage.py rebuild_response_records --round sipas-2022
    manage.py rebuild_response_records --check          # report differences, exit 1 if any

The answers are the source of truth: a rebuild recomputes the records set-based (one DELETE
and one INSERT … SELECT for the round or all); ``--check`` compares the stored records with
that recomputation in one statement and names the first responses that differ.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from feedback import records
from surveys.models import Round


class Command(BaseCommand):
    help = "Rebuild (or --check) the compact response records from the answers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--round", help="a round code (default: every round)")
        parser.add_argument(
            "--check", action="store_true", help="report mismatches and exit 1 if any"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        round_id = None
        if options["round"]:
            found = Round.objects.filter(code=options["round"]).values_list("pk", flat=True)
            if not found:
                raise CommandError(f"no round {options['round']!r}")
            round_id = found[0]
        scope = options["round"] or "every round"
        started = time.perf_counter()
        if options["check"]:
            count, first = records.mismatches(round_id=round_id)
            if count:
                shown = ", ".join(map(str, first))
                raise CommandError(
                    f"{count} response record(s) differ from the answers ({scope}); first: "
                    f"{shown}. Run rebuild_response_records to repair."
                )
            self.stdout.write(f"records match the answers ({scope})")
            return
        with transaction.atomic():
            written = records.rebuild(round_id=round_id)
        self.stdout.write(
            f"{written} response records rebuilt ({scope}) in {time.perf_counter() - started:.1f} s"
        )
