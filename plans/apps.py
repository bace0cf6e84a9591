"""Action plans: tasks that agencies carry out to lift a unit's weak indicators, followed up
against the results of later rounds."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

# What the group "Province staff" (surveys.scoping) may do with the plans of its province.
PROVINCE_STAFF_PERMISSIONS = (
    "view_task",
    "add_task",
    "change_task",
    "view_tasknote",
    "add_tasknote",
)


def give_province_staff_plans(sender: Any, **kwargs: Any) -> None:
    """After plans' migrations: the province staff group coordinates its province's plans
    (idempotent, adds only)."""
    from django.contrib.auth.models import Permission

    from surveys import scoping

    if kwargs.get("using", DEFAULT_DB_ALIAS) != DEFAULT_DB_ALIAS:
        return
    wanted = Permission.objects.filter(
        content_type__app_label="plans", codename__in=PROVINCE_STAFF_PERMISSIONS
    )
    scoping.ensure_group().permissions.add(*wanted)


class PlansConfig(AppConfig):
    name = "plans"
    verbose_name = _("action plans")

    def ready(self) -> None:
        post_migrate.connect(give_province_staff_plans, sender=self, dispatch_uid="plans-group")
