"""``manage.py deliver_webhooks``: attempt every due webhook delivery in this process.

With a broker, workers and beat do this; the embedded default (no ``REDIS_URL``) makes each
first attempt in the process that stored the event, and its retries when this command runs
(say, from cron every minute).
"""

from typing import Any

from django.core.management.base import BaseCommand

from webhooks import services


class Command(BaseCommand):
    help = "Attempt every due webhook delivery now, in this process."

    def handle(self, *args: Any, **options: Any) -> None:
        count = services.deliver_due_now()
        self.stdout.write(f"{count} deliveries attempted")
