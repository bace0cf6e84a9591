"""``manage.py load_units``: the 63 provinces of 2022 and the 2025 merger (idempotent)."""

from django.core.management.base import BaseCommand

from surveys.loaders import load_units


class Command(BaseCommand):
    help = "Load the 63 provinces of 2022 and their 2025 merger into 34 (safe to repeat)."

    def handle(self, *args: object, **options: object) -> None:
        report = load_units()
        self.stdout.write(
            f"units: {report.created} created, {report.unchanged} already there; "
            f"{report.links_created} lineage links created"
        )
