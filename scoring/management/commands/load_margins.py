"""``manage.py load_margins --round CODE file.csv``: replace a round's population margins."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoring import margins


class Command(BaseCommand):
    help = (
        "Replace the population margins of a round (used to rake weights) with those of a CSV "
        "file with columns unit,dimension,category,population; a file with errors stores nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--round", dest="round_code", required=True, help="e.g. sipas-2022")
        parser.add_argument("file", type=Path, help="CSV file (UTF-8)")

    def handle(self, *args: object, round_code: str, file: Path, **options: object) -> None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from exc
        try:
            stored = margins.replace_margins(round_code=round_code, data=data)
        except ValidationError as exc:
            raise CommandError("\n".join(exc.messages)) from exc
        self.stdout.write(f"{round_code}: {stored} population margins stored from {file}")
