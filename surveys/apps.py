"""App config for ``surveys``."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = _("Surveys and questionnaires")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from surveys.mapping import forget_links
        from surveys.models import VersionMapping, VersionMappingRow

        # The links between versions are cached for the trends: forgotten at any change.
        for model in (VersionMapping, VersionMappingRow):
            post_save.connect(forget_links, sender=model, dispatch_uid=f"forget-links-{model}")
            post_delete.connect(forget_links, sender=model, dispatch_uid=f"forget-del-{model}")
