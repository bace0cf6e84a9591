"""``manage.py openrosa_password USER``: issue a new ODK password for an account (printed
once; only its Digest HA1 values are stored). See docs/odk.md."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback.openrosa.auth import issue_password, realm


class Command(BaseCommand):
    help = "Issue a new ODK password (HTTP Basic and Digest) for an account; printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"No account {username!r}.") from None
        password = issue_password(user)
        if not user.has_perm("feedback.submit_on_behalf"):
            self.stderr.write(
                f"{username} lacks the permission feedback.submit_on_behalf: ODK Collect "
                "will be refused (403) until it is given."
            )
        self.stdout.write(f"ODK password of {username} (realm {realm()}): {password}")
