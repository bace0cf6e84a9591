"""``manage.py recompute_scores [--round CODE]``: compute and publish scores now."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoring import selectors, services
from scoring.models import Run


class Command(BaseCommand):
    help = (
        "Compute and publish the indicators of a round (default: every open or recently "
        "closed round), synchronously, printing progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--round", dest="round_code", help="round code, e.g. sipas-2022")
        parser.add_argument(
            "--if-unpublished",
            action="store_true",
            help="only rounds that have no published run yet (used by `make run`)",
        )

    def handle(
        self, *args: object, round_code: str | None, if_unpublished: bool, **options: object
    ) -> None:
        codes = [round_code] if round_code else selectors.rounds_to_recompute()
        if if_unpublished:
            published = set(
                Run.objects.filter(status=Run.Status.PUBLISHED, round__code__in=codes).values_list(
                    "round__code", flat=True
                )
            )
            for code in sorted(published):
                self.stdout.write(f"{code}: already published, not recomputed")
            codes = [c for c in codes if c not in published]
        if not codes:
            self.stdout.write("no open or recently closed round to recompute")
        for code in codes:
            try:
                run = services.recompute_round(round_code=code, progress=self.stdout.write)
            except services.ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            self.stdout.write(f"{code}: run {run.pk} {run.status}")
