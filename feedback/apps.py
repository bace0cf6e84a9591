"""App config for ``feedback``."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = _("Citizen feedback")

    def ready(self) -> None:
        from feedback import signals  # noqa: F401  (connects the round partitions' receivers)
