"""App config for ``surveys``."""

from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save
from django.utils.translation import gettext_lazy as _


def ensure_province_staff_group(sender: Any, **kwargs: Any) -> None:
    """After the migrations (and so the permissions) of the apps whose permissions it holds:
    the group "Province staff" (idempotent)."""
    from surveys import scoping

    if sender.label not in {"surveys", "feedback", "scoring"}:
        return
    if kwargs.get("using", DEFAULT_DB_ALIAS) != DEFAULT_DB_ALIAS:
        return

    scoping.ensure_group()


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = _("Surveys and questionnaires")

    def ready(self) -> None:
        from surveys import scoping
        from surveys.mapping import forget_links
        from surveys.models import Round, VersionMapping, VersionMappingRow

        m2m_changed.connect(
            scoping.guard_round_units,
            sender=Round.units.through,
            dispatch_uid="surveys-local-round-units",
        )
        post_migrate.connect(
            ensure_province_staff_group, dispatch_uid="surveys-province-staff-group"
        )
        # The links between versions are cached for the trends: forgotten at any change.
        for model in (VersionMapping, VersionMappingRow):
            post_save.connect(forget_links, sender=model, dispatch_uid=f"forget-links-{model}")
            post_delete.connect(forget_links, sender=model, dispatch_uid=f"forget-del-{model}")
