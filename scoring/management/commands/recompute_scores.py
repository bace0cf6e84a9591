"""``manage.py recompute_scores [--round CODE]``: compute and publish scores now."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoring import selectors, services


class Command(BaseCommand):
    help = (
        "Compute and publish the indicators of a round (default: every open or recently "
        "closed round), synchronously, printing progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--round", dest="round_code", help="round code, e.g. sipas-2022")

    def handle(self, *args: object, round_code: str | None, **options: object) -> None:
        codes = [round_code] if round_code else selectors.rounds_to_recompute()
        if not codes:
            self.stdout.write("no open or recently closed round to recompute")
        for code in codes:
            try:
                run = services.recompute_round(round_code=code, progress=self.stdout.write)
            except services.ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            self.stdout.write(f"{code}: run {run.pk} {run.status}")
