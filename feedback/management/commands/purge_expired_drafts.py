"""``manage.py purge_expired_drafts``: delete web drafts past their expiry."""

from typing import Any

from django.core.management.base import BaseCommand

from feedback.drafts.services import purge_expired


class Command(BaseCommand):
    help = "Delete saved web drafts whose resume link has expired."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = purge_expired()
        self.stdout.write(f"{deleted} expired draft(s) deleted.")
