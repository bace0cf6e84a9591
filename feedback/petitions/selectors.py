"""Reads of petitions: what a staff account may see, and indicators for scoring."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from feedback.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    Petition,
    PetitionEvent,
    PetitionStaff,
)
from surveys.collation import in_vietnamese_order
from surveys.models import Agency, Unit

VIEW = "feedback.view_petition"
CHANGE = "feedback.change_petition"


def _desks(user: AbstractBaseUser) -> QuerySet[PetitionStaff]:
    return PetitionStaff.objects.filter(user=user)


def petitions_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Petition]:
    """Petitions a staff account may see: its agencies' (all of a unit for a coordinator).

    Superusers see every petition. Anyone else needs ``view_petition`` or
    ``change_petition`` and sees only what their ``PetitionStaff`` rows cover.
    """
    if not user.is_authenticated or not user.is_active:
        return Petition.objects.none()
    if user.is_superuser:
        return Petition.objects.all()
    if not (user.has_perm(VIEW) or user.has_perm(CHANGE)):
        return Petition.objects.none()
    desks = _desks(user)
    return Petition.objects.filter(
        Q(agency__in=desks.filter(agency__isnull=False).values("agency"))
        | Q(unit__in=desks.filter(agency__isnull=True).values("unit"))
    )


def can_handle(user: AbstractBaseUser | AnonymousUser, petition: Petition) -> bool:
    """Whether ``user`` may change the status of ``petition``."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.has_perm(CHANGE) and petitions_visible_to(user).filter(pk=petition.pk).exists()


def coordinates_unit(user: AbstractBaseUser, unit_id: int) -> bool:
    """Superusers and the unit's coordinators may route petitions between its agencies."""
    return user.is_superuser or _desks(user).filter(unit_id=unit_id, agency__isnull=True).exists()


def handles_agency(*, user_id: int, unit_id: int, agency_id: int) -> bool:
    """Whether ``user_id`` is staff of the agency or a coordinator of its unit."""
    return PetitionStaff.objects.filter(
        Q(agency_id=agency_id) | Q(agency__isnull=True, unit_id=unit_id),
        user_id=user_id,
        user__is_active=True,
    ).exists()


def current_units() -> QuerySet[Unit]:
    """Provinces and cities that exist today (after the 2025 merger: the 34)."""
    today = timezone.localdate()
    return (
        Unit.objects.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=today))
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=today))
        .order_by("name")
    )


def with_overdue(queryset: QuerySet[Petition], *, today: date | None = None) -> QuerySet[Petition]:
    """Annotate ``overdue``: open past the deadline, or closed after it."""
    today = today or timezone.localdate()
    late = Q(status__in=OPEN_STATUSES, deadline__lt=today) | Q(
        status__in=CLOSED_STATUSES, closed_at__date__gt=F("deadline")
    )
    return queryset.annotate(overdue=ExpressionWrapper(late, output_field=BooleanField()))


def petition_by_code(tracking_code: str) -> Petition | None:
    """The petition with this tracking code (case, spaces and a missing dash forgiven)."""
    code = normalize_code(tracking_code)
    if code is None:
        return None
    return (
        Petition.objects.select_related("category", "unit", "agency")
        .filter(tracking_code=code)
        .first()
    )


def normalize_code(raw: str) -> str | None:
    """``k7q2m 9xh4c`` → ``K7Q2M-9XH4C``; ``None`` when it cannot be a tracking code."""
    code = "".join(ch for ch in raw.upper() if ch.isascii() and ch.isalnum())
    return f"{code[:5]}-{code[5:]}" if len(code) == 10 else None


def petition_history(*, petition_id: int) -> QuerySet[PetitionEvent]:
    """The status changes of one petition, oldest first, with who and which agency."""
    return (
        PetitionEvent.objects.filter(petition_id=petition_id)
        .select_related("actor", "agency__unit")
        .order_by("at", "id")
    )


def agencies_of_unit(unit_id: int) -> QuerySet[Agency]:
    """The agencies a petition of ``unit_id`` can be assigned to, by name (Vietnamese order)."""
    return in_vietnamese_order(
        Agency.objects.filter(unit_id=unit_id).select_related("unit"), "name_vi", "code"
    )


def petition_handlers(*, unit_id: int) -> QuerySet[Any]:
    """Active accounts that handle petitions of ``unit_id`` (an agency's or the unit's)."""
    desks = PetitionStaff.objects.filter(unit_id=unit_id).values("user")
    return get_user_model().objects.filter(pk__in=desks, is_active=True).order_by("username")
