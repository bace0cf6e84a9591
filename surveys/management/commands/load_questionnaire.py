"""``manage.py load_questionnaire [FILE]``: load a questionnaire YAML file (idempotent)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from surveys.loaders import SIPAS_2022, load_questionnaire


class Command(BaseCommand):
    help = (
        "Load a questionnaire file (YAML) as a new published version. The same file loaded "
        "again changes nothing. Default: the built-in SIPAS 2022 questionnaire."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", type=Path, default=SIPAS_2022)
        parser.add_argument("--draft", action="store_true", help="keep the new version as a draft")

    def handle(self, *args: object, path: Path, draft: bool, **options: object) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            version, created = load_questionnaire(path, publish=not draft)
        except ValidationError as exc:
            raise CommandError(
                f"{path.name}: {exc.message_dict if hasattr(exc, 'error_dict') else exc.messages}"
            ) from exc
        state = "loaded" if created else "already loaded, unchanged"
        self.stdout.write(f"{version}: {state}")
