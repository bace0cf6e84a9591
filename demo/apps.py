"""App config for ``demo``."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
