"""Who sees what: province staff see their own province's surveys only (issue 17).

One place decides, for every app: a user's **scope** is national (superusers, and staff
with no province membership: they see everything their model permissions allow), one
province (``surveys.ProvinceStaff``: that province's questionnaires, local rounds and what
hangs on them), or nothing (a member of the group "Province staff" with no province set,
an account half set up). Admin pages, their form choices, and the API views narrow their
querysets here with ``limit(queryset, user, path)``, where ``path`` leads from the model to
the owner unit (``"owner_unit"`` for a round, ``"round__owner_unit"`` for a response,
``"pk"`` for a unit). A choice outside the scope is not offered, and a forged id in a POST
is refused by the form field like any unknown id.

Local rounds (``Round.owner_unit`` set) never reach the public results (``results``); a
round's units are checked here too, whatever writes them (``guard_round_units``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from surveys import models

GROUP = "Province staff"

# The model permissions of the group: own questionnaires (whole editor), own rounds,
# invitations, paper imports, raw responses, recomputes and their results.
GROUP_PERMISSIONS = [
    "surveys.view_unit",
    "surveys.view_agency",
    *(
        f"surveys.{action}_{model}"
        for model in (
            "questionnaire",
            "questionnaireversion",
            "section",
            "question",
            "choice",
            "indicator",
            "policygroup",
            "round",
            "stratumpopulation",
        )
        for action in ("view", "add", "change", "delete")
    ),
    "feedback.view_response",
    "feedback.manage_invitations",
    "feedback.view_invitation",
    "feedback.import_paper_forms",
    "feedback.view_paperimport",
    "scoring.add_run",
    "scoring.view_run",
    "scoring.view_score",
]

# The path from each model of the frame to its owner unit, for form choices.
OWNER_PATHS: dict[type, str] = {
    models.Unit: "pk",
    models.Agency: "unit",
    models.Round: "owner_unit",
    models.Questionnaire: "owner_unit",
    models.QuestionnaireVersion: "questionnaire__owner_unit",
    models.Section: "version__questionnaire__owner_unit",
    models.Question: "version__questionnaire__owner_unit",
    models.Indicator: "version__questionnaire__owner_unit",
    models.PolicyGroup: "version__questionnaire__owner_unit",
    models.Choice: "question__version__questionnaire__owner_unit",
}


@dataclass(frozen=True)
class Scope:
    """National (``unit_id`` None, ``national`` True), one province, or nothing."""

    national: bool
    unit_id: int | None = None


NATIONAL = Scope(national=True)
NOTHING = Scope(national=False)


def scope_of(user: Any) -> Scope:
    """The user's scope, worked out once per request (kept on the user object)."""
    cached = getattr(user, "_province_scope", None)
    if cached is not None:
        return cached
    if user is None or not user.is_authenticated:
        scope = NATIONAL  # the public: model permissions (none) decide, scoping adds nothing
    elif user.is_superuser:
        scope = NATIONAL
    else:
        unit_id = (
            models.ProvinceStaff.objects.filter(user=user).values_list("unit_id", flat=True).first()
        )
        if unit_id is not None:
            scope = Scope(national=False, unit_id=unit_id)
        elif user.groups.filter(name=GROUP).exists():
            scope = NOTHING
        else:
            scope = NATIONAL
    with contextlib.suppress(AttributeError):  # an object that takes no attributes
        user._province_scope = scope
    return scope


def national_users(prefix: str = "") -> Q:
    """A filter of user rows (``prefix`` leads to the user, e.g. ``"owner__"``) keeping
    national staff: superusers, and users with no province and not in the group."""
    return Q(**{f"{prefix}is_superuser": True}) | (
        Q(**{f"{prefix}province_staff__isnull": True}) & ~Q(**{f"{prefix}groups__name": GROUP})
    )


def province_of(user: Any) -> models.Unit | None:
    """The province a province staff member works for; None for national staff."""
    unit_id = scope_of(user).unit_id
    return models.Unit.objects.filter(pk=unit_id).first() if unit_id is not None else None


def is_national(user: Any) -> bool:
    return scope_of(user).national


def limit(queryset: QuerySet, user: Any, path: str, *, shared: bool = False) -> QuerySet:
    """``queryset`` narrowed to what the user's scope reaches through ``path``.

    ``shared``: national objects (``path`` empty) are reachable too, e.g. the published
    national questionnaire versions a province's round may use.
    """
    scope = scope_of(user)
    if scope.national:
        return queryset
    if scope.unit_id is None:
        return queryset.none()
    condition = Q(**{path: scope.unit_id})
    if shared:
        condition |= Q(**{f"{path}__isnull": True})
    return queryset.filter(condition)


def limit_choices(queryset: QuerySet, user: Any) -> QuerySet:
    """Form choices of a frame model (unit, agency, round, questionnaire…) in the scope."""
    path = OWNER_PATHS.get(queryset.model)
    return queryset if path is None else limit(queryset, user, path)


def units_for(user: Any) -> QuerySet[models.Unit]:
    return limit(models.Unit.objects.all(), user, "pk")


def agencies_for(user: Any) -> QuerySet[models.Agency]:
    return limit(models.Agency.objects.select_related("unit"), user, "unit")


def rounds_for(user: Any) -> QuerySet[models.Round]:
    """Rounds the user works on: all for national staff, a province's own local rounds."""
    return limit(models.Round.objects.all(), user, "owner_unit")


def questionnaires_for(user: Any) -> QuerySet[models.Questionnaire]:
    return limit(models.Questionnaire.objects.all(), user, "owner_unit")


def versions_for(user: Any, *, shared: bool = False) -> QuerySet[models.QuestionnaireVersion]:
    return limit(
        models.QuestionnaireVersion.objects.select_related("questionnaire"),
        user,
        "questionnaire__owner_unit",
        shared=shared,
    )


# --- The units of a local round, whatever writes them ------------------------------------------


def guard_round_units(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """``m2m_changed`` of ``Round.units``: a local round covers its owner province only."""
    if action != "pre_add" or not pk_set:
        return
    if not reverse:
        if instance.owner_unit_id is not None and set(pk_set) - {instance.owner_unit_id}:
            raise ValidationError({"units": [models.local_round_units_message()]})
        return
    # unit.rounds.add(...): the rounds added must be national or owned by this unit.
    if models.Round.objects.filter(pk__in=pk_set, owner_unit__isnull=False).exclude(
        owner_unit_id=instance.pk
    ):
        raise ValidationError({"units": [models.local_round_units_message()]})


# --- The group -----------------------------------------------------------------------------------


def ensure_group() -> Group:
    """The group "Province staff" with its permissions (idempotent; adds, never removes)."""
    group, _created = Group.objects.get_or_create(name=GROUP)
    wanted = Q()
    for name in GROUP_PERMISSIONS:
        app_label, codename = name.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    missing = Permission.objects.filter(wanted).exclude(group=group)
    if missing.exists():
        group.permissions.add(*missing)
    return group


def appoint(*, user: Any, unit: models.Unit) -> models.ProvinceStaff:
    """Make ``user`` staff of ``unit``'s province: membership, the group, admin access."""
    membership, _created = models.ProvinceStaff.objects.update_or_create(
        user=user, defaults={"unit": unit}
    )
    user.groups.add(ensure_group())
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.__dict__.pop("_province_scope", None)
    return membership
