"""Action plans: tasks that agencies carry out to lift a unit's weak indicators, followed up
against the results of later rounds."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PlansConfig(AppConfig):
    name = "plans"
    verbose_name = _("action plans")
