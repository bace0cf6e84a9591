"""``manage.py import_xlsform FILE``: an XLSForm (.xlsx) as a new draft questionnaire version."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from surveys.xlsform import MAX_FILE_BYTES, XlsformRefused, import_xlsform


class Command(BaseCommand):
    help = (
        "Import an XLSForm (.xlsx with survey, choices and settings sheets) as a new draft "
        "version of the questionnaire its form_id names (created when new). Every problem "
        "is printed by sheet, row and column, and then nothing is stored (exit status 1). "
        "See docs/xlsform.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the .xlsx file")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CommandError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MB")
            content = path.read_bytes()
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror or error}") from error
        try:
            imported = import_xlsform(content)
        except XlsformRefused as refused:
            for problem in refused.problems:
                self.stderr.write(str(problem))
            raise CommandError(
                f"{path.name}: not imported, {len(refused.problems)} problem(s)"
            ) from None
        version = imported.version
        self.stdout.write(
            f"{version}: imported as draft version {version.number} of "
            f"{version.questionnaire.code}"
            + (" (new questionnaire)" if imported.created_questionnaire else "")
        )
