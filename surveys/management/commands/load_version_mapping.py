"""``manage.py load_version_mapping --questionnaire CODE --from N --to M FILE.csv``: the rows
of the mapping between two versions from a CSV file (docs/series.md)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from surveys import mapping as series
from surveys.models import QuestionnaireVersion, VersionMapping


class Command(BaseCommand):
    help = (
        "Replace the rows of the mapping between two versions of a questionnaire (created if "
        "needed) with those of a CSV file with columns kind,from_code,to_code,relation; a "
        "file with errors stores nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--questionnaire", required=True, help="e.g. sipas")
        parser.add_argument("--from", dest="from_number", type=int, required=True)
        parser.add_argument("--to", dest="to_number", type=int, required=True)
        parser.add_argument("file", type=Path, help="CSV file (UTF-8)")

    def handle(
        self,
        *args: object,
        questionnaire: str,
        from_number: int,
        to_number: int,
        file: Path,
        **options: object,
    ) -> None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from exc
        versions = {
            v.number: v
            for v in QuestionnaireVersion.objects.filter(
                questionnaire__code=questionnaire, number__in=[from_number, to_number]
            ).select_related("questionnaire")
        }
        for number in (from_number, to_number):
            if number not in versions:
                raise CommandError(f"{questionnaire} has no version {number}")
        try:
            with transaction.atomic():
                found = VersionMapping.objects.filter(
                    from_version=versions[from_number], to_version=versions[to_number]
                ).first()
                if found is None:
                    found = VersionMapping(
                        from_version=versions[from_number], to_version=versions[to_number]
                    )
                    found.full_clean()
                    found.save()
                stored = series.replace_rows(mapping=found, data=data)
        except ValidationError as exc:
            raise CommandError("\n".join(exc.messages)) from exc
        self.stdout.write(f"{found}: {stored} rows stored from {file}")
