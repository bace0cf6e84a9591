"""The audit app: which models are tracked (``TRACKED``), and the actor of every entry."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

# Model → (fields left out, many-to-many fields tracked). Every change made through the
# ORM's save()/delete() and, for the m2m fields, add/remove/clear, is logged by auditlog's
# signals on any database. Writes that bypass the signals log themselves explicitly
# (``audit.services.record_change``): review states, population margins.
TRACKED: dict[str, tuple[list[str], list[str]]] = {
    "surveys.Questionnaire": ([], []),
    "surveys.QuestionnaireVersion": ([], []),
    "surveys.Section": ([], []),
    "surveys.Question": ([], []),
    "surveys.Choice": ([], []),
    "surveys.Indicator": ([], []),
    "surveys.Round": ([], ["units"]),
    "surveys.ProvinceStaff": ([], []),
    "surveys.VersionMapping": ([], []),
    "surveys.VersionMappingRow": ([], []),
    # A citizen's contact details and own words stay out of the trail (personal data is
    # kept in one place, under the petition's own retention); the handling is tracked.
    "feedback.Petition": (
        [
            "contact_name",
            "contact_email",
            "contact_phone",
            "description",
            "address",
            "lat",
            "long",
            "client_id",
            "request_digest",
        ],
        [],
    ),
    "scoring.Run": (["heartbeat_at", "progress", "queued_at", "settings_used", "versions"], []),
    # Action plans: every task change, note and staff assignment (issue 17).
    "plans.Task": ([], []),
    "plans.TaskNote": ([], []),
    "plans.PlanStaff": ([], []),
    "auth.User": (["password", "last_login"], ["groups", "user_permissions"]),
    "auth.Group": ([], ["permissions"]),
}


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = _("audit trail")

    def ready(self) -> None:
        from auditlog.registry import auditlog
        from django.apps import apps

        from audit import context

        for label, (excluded, m2m) in TRACKED.items():
            model = apps.get_model(label)
            m2m = [name for name in m2m if _has_field(model, name)]
            if auditlog.contains(model):
                continue
            auditlog.register(model, exclude_fields=excluded, m2m_fields=m2m)
        context.connect()


def _has_field(model: type, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except Exception:
        return False
    return True
