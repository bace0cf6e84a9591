"""Builders shared by the petition tests: units, agencies, categories and staff accounts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token

from feedback.models import PetitionCategory, PetitionStaff
from feedback.petitions import services
from surveys.models import Agency, Unit

PASSWORD = "a-long-password-for-tests"


def make_unit(code: str = "T01", name: str = "Tỉnh Thử") -> Unit:
    return Unit.objects.create(code=code, name=name, kind=Unit.Kind.PROVINCE)


def make_agency(unit: Unit, code: str, name: str) -> Agency:
    return Agency.objects.create(unit=unit, code=code, name_vi=name, name_en=f"{name} (en)")


def make_category(code: str = "road", days: int = 10, **extra: Any) -> PetitionCategory:
    return PetitionCategory.objects.create(
        code=code,
        name_vi=extra.pop("name_vi", f"Loại {code}"),
        name_en=extra.pop("name_en", f"Kind {code}"),
        deadline_days=days,
        **extra,
    )


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


def submit(category: str, unit: str, agency: str = "", **fields: Any) -> Any:
    """A petition as a citizen files it (through the service, channel web)."""
    fields.setdefault("description", "Đèn đường hỏng ở ngõ 12.")
    petition, _ = services.submit_petition(
        data=services.PetitionInput(category=category, unit=unit, agency=agency, **fields),
        channel="web",
    )
    return petition
