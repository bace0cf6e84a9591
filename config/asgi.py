"""ASGI entry point (``config.asgi:application``)."""

import os

from django.core.asgi import get_asgi_application

from scoring.scheduler import start_in_process_scheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_asgi_application()

# Without a broker, this serving process scores open rounds itself (scoring.scheduler).
start_in_process_scheduler()
