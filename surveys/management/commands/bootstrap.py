"""``manage.py bootstrap``: everything `make run` needs beyond migrations (idempotent).

Loads units, the SIPAS questionnaire and rounds, demo agencies, the group "Province staff"
with its permissions (``surveys.scoping``), and creates the admin account named by
``DJANGO_SUPERUSER_USERNAME``/``DJANGO_SUPERUSER_PASSWORD`` if set.
"""

import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from surveys import scoping
from surveys.loaders import ensure_demo_agencies


class Command(BaseCommand):
    help = "Load reference and demo data and, if configured, the admin account (safe to repeat)."

    def handle(self, *args: object, **options: object) -> None:
        call_command("load_sipas", stdout=self.stdout)
        agencies = ensure_demo_agencies()
        self.stdout.write(
            f"demo agencies: {agencies.created} created, {agencies.unchanged} already there"
        )
        scoping.ensure_group()
        self.stdout.write(f"group {scoping.GROUP!r}: ready")
        self.ensure_superuser()

    def ensure_superuser(self) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if not username or not password:
            return
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            self.stdout.write(f"admin account {username!r}: already there")
            return
        user_model.objects.create_superuser(
            username=username, email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password=password
        )
        self.stdout.write(f"admin account {username!r}: created")
