"""``manage.py load_sipas``: units, the SIPAS questionnaire and its rounds (idempotent)."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from surveys.loaders import ensure_sipas_rounds, load_questionnaire, load_units


class Command(BaseCommand):
    help = (
        "Load the provinces, the built-in SIPAS 2022 questionnaire, the closed round "
        "'sipas-2022' and the open round 'demo'. Running it again changes nothing."
    )

    def handle(self, *args: object, **options: object) -> None:
        units = load_units()
        self.stdout.write(
            f"units: {units.created} created, {units.unchanged} already there; "
            f"{units.links_created} lineage links created"
        )
        version, created = load_questionnaire()
        self.stdout.write(f"{version}: {'loaded' if created else 'already loaded, unchanged'}")
        rounds = ensure_sipas_rounds(version, today=timezone.localdate())
        self.stdout.write(f"rounds: {rounds.created} created, {rounds.unchanged} already there")
