"""``manage.py generate_demo_data``: synthetic SIPAS responses for demos and benchmarks."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.responses import DEFAULT_ICC, generate_demo_responses

# The options, named as ``generate_demo_responses`` takes them.
OPTIONS = ("round_code", "responses", "seed", "replace", "if_empty", "icc")


class Command(BaseCommand):
    help = (
        "Add N synthetic SIPAS responses (paper channel) to a round, spread evenly over its "
        "units, with provincial levels like the published 2022 results. Response i of a seed "
        "is always the same. Without --replace a run ADDS responses: a second run with the "
        "same seed continues that seed's sequence (two runs of N = one run of 2N), so nothing "
        "is duplicated; --replace first deletes the round's demo responses of every seed; "
        "--if-empty does nothing when the round has any response. Real responses are never "
        "touched. Respondents are sampled by village (31 per village, recorded as the PSU), "
        "with the intra-village correlation --icc."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--round", dest="round_code", required=True, help="e.g. sipas-2022")
        parser.add_argument("--responses", type=int, required=True, metavar="N")
        parser.add_argument("--seed", type=int, default=2022, metavar="S", help="0..2**32-1")
        parser.add_argument(
            "--replace", action="store_true", help="delete the round's demo responses first"
        )
        parser.add_argument(
            "--icc",
            type=float,
            default=DEFAULT_ICC,
            metavar="R",
            help=f"intra-village correlation of satisfied answers, 0 ≤ R < 1 "
            f"(default {DEFAULT_ICC}; 0: no village effect)",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="only when the round has no response yet"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = generate_demo_responses(
                **{name: options[name] for name in OPTIONS}, progress=self.stdout.write
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if report.skipped:
            return
        rate = report.created / report.seconds if report.seconds else 0.0
        self.stdout.write(
            f"{report.created:,} demo responses ({report.answers:,} answers) added to "
            f"{options['round_code']} in {report.seconds:.1f} s ({rate:,.0f} responses/s)"
        )
