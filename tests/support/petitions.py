"""Builders shared by the petition tests: units, agencies, categories and staff accounts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token

from feedback.models import Petition, PetitionCategory, PetitionStaff
from surveys.models import Agency, Unit
from tests.factories import AgencyFactory, PetitionCategoryFactory, PetitionFactory, UnitFactory

PASSWORD = "a-long-password-for-tests"


def make_unit(code: str = "T01", name: str = "Tỉnh Thử") -> Unit:
    return UnitFactory(code=code, name=name)


def make_agency(unit: Unit, code: str, name: str) -> Agency:
    return AgencyFactory(unit=unit, code=code, name_vi=name, name_en=f"{name} (en)")


def make_category(code: str = "road", days: int = 10, **extra: Any) -> PetitionCategory:
    return PetitionCategoryFactory(code=code, deadline_days=days, **extra)


def petition_desk(*agencies: tuple[str, str]) -> tuple[Unit, list[Agency]]:
    """The unit T01 (Tỉnh Thử) with its ``agencies`` (code, name), and the category ``road``
    (10 days) as the only one: the defaults of migration 0003 are deleted."""
    PetitionCategory.objects.all().delete()
    unit = make_unit()
    made = [make_agency(unit, code, name) for code, name in agencies]
    make_category("road")
    return unit, made


def two_agency_desk() -> dict[str, Any]:
    """``petition_desk`` with agencies A (SO-A) and B (SO-B), a handler of each (``staff_a``,
    ``staff_b``) and a coordinator of the unit."""
    unit, (agency_a, agency_b) = petition_desk(("SO-A", "Sở A"), ("SO-B", "Sở B"))
    return {
        "unit": unit,
        "a": agency_a,
        "b": agency_b,
        "staff_a": make_staff("staff-a", unit=unit, agency=agency_a),
        "staff_b": make_staff("staff-b", unit=unit, agency=agency_b),
        "coordinator": make_staff("coordinator", unit=unit, agency=None),
    }


def handlers_group() -> Group:
    group, _ = Group.objects.get_or_create(name="Petition handlers")
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="feedback",
            codename__in=["view_petition", "change_petition"],
        )
    )
    return group


def make_staff(
    username: str, *, unit: Unit, agency: Agency | None, email: str = "", grouped: bool = True
) -> Any:
    user = get_user_model().objects.create_user(
        username, email=email or f"{username}@example.gov.vn", password=PASSWORD, is_staff=True
    )
    if grouped:
        user.groups.add(handlers_group())
    PetitionStaff.objects.create(user=user, unit=unit, agency=agency)
    return user


def api_token(user: Any) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def submit(category: str, unit: str, agency: str = "", **fields: Any) -> Petition:
    """A petition as a citizen files it (through the service, channel web)."""
    return PetitionFactory(category=category, unit=unit, agency=agency, **fields)
