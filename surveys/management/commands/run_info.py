"""``manage.py run_info --host H --port P``: what `make run` prints before serving.

The addresses to open, and how to get an admin account only when there is none yet (after
``bootstrap`` created one from the environment, the hint would be wrong).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

CREATE_ADMIN = "uv run python manage.py createsuperuser"


class Command(BaseCommand):
    help = "Print the addresses `make run` serves, and how to create an admin account if none."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, host: str, port: str, **options: Any) -> None:
        base = f"http://{host}:{port}"
        admin = reverse("admin:index")
        lines = [
            ("Service", f"{base}/"),
            ("Results", f"{base}{reverse('dashboard:index')}"),
            ("Admin", f"{base}{admin}"),
            (
                "Questionnaires",
                f"{base}{reverse('admin:surveys_questionnaireversion_changelist')}"
                " (open one, then 'Preview')",
            ),
            ("API", f"{base}/api/v1/"),
            ("Health", f"{base}{reverse('health')}"),
        ]
        self.stdout.write("")
        for label, url in lines:
            self.stdout.write(f"  {label + ':':<16}{url}")
        admins = get_user_model().objects.filter(is_superuser=True, is_active=True)
        names = list(admins.order_by("pk").values_list("username", flat=True)[:3])
        if names:
            self.stdout.write(f"  {'Admin account:':<16}{', '.join(names)} (sign in at {admin})")
        else:
            self.stdout.write(f"  No admin account yet? Run: {CREATE_ADMIN}")
            self.stdout.write(
                "  (or set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD before make run)"
            )
        self.stdout.write("")
