"""A small frame for action-plan tests: four rounds of one small questionnaire, three of them
published with hand-set scores of ``SAT``, a merger, two agencies of the planned unit, and an
account of each role.

The unit ``19`` (Thái Nguyên) is planned in ``r2022``; ``r2023`` covers it again; ``r2025``
covers only its successor ``19-2025`` (merged with ``06``); ``r2026`` has no published run.
Values of ``SAT`` (value, SE): 19 → 60 (3), 68 (4); 19-2025 → 72 (4); the nation → 70, 69,
71. By hand: the change to 2023 is +8, z = 8/√(3²+4²) = 1.6, p = 2(1 − Φ(1.6)) = 0.10960
(not significant); to 2025 +12, z = 2.4, p = 0.016395 (significant at 5%).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from plans.models import PlanStaff
from scoring.models import Run, Score
from surveys.models import Agency, Indicator, Unit, UnitLineage
from surveys.services import publish_version
from tests.factories import RunFactory, round_opening_on, small_draft

PASSWORD = "a-long-password-for-tests"
SCORES = {  # round → {unit code or None (the nation): (value, se)}
    "r2022": {"19": (60.0, 3.0), "06": (75.0, 3.0), "01": (80.0, 3.0), None: (70.0, 1.0)},
    "r2023": {"19": (68.0, 4.0), "06": (74.0, 3.0), "01": (81.0, 3.0), None: (69.0, 1.0)},
    "r2025": {"19-2025": (72.0, 4.0), "01": (79.0, 3.0), None: (71.0, 1.0)},
}


def _user(username: str, *perms: str, superuser: bool = False, **extra: Any) -> Any:
    model = get_user_model()
    if superuser:
        return model.objects.create_superuser(username, f"{username}@example.gov.vn", PASSWORD)
    user = model.objects.create_user(
        username, email=f"{username}@example.gov.vn", password=PASSWORD, is_staff=True, **extra
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def build_frame() -> dict[str, Any]:
    version = publish_version(version_id=small_draft().pk)
    sat = Indicator.objects.get(version=version, code="SAT")
    units = {
        code: Unit.objects.create(code=code, name=name, kind=Unit.Kind.PROVINCE)
        for code, name in [
            ("19", "Thái Nguyên"),
            ("06", "Bắc Kạn"),
            ("01", "Hà Nội"),
            ("19-2025", "Thái Nguyên (2025)"),
        ]
    }
    for old in ("19", "06"):
        UnitLineage.objects.create(
            predecessor=units[old], successor=units["19-2025"], effective_on=dt.date(2025, 7, 1)
        )
    rounds = {}
    for year, covered in [
        (2022, ["19", "06", "01"]),
        (2023, ["19", "06", "01"]),
        (2025, ["19-2025", "01"]),
        (2026, ["19-2025", "01"]),
    ]:
        survey_round = round_opening_on(
            dt.date(year, 9, 1), code=f"r{year}", version=version, units=[units[c] for c in covered]
        )
        rounds[survey_round.code] = survey_round
    for code, values in SCORES.items():
        run = RunFactory(
            round=rounds[code], status=Run.Status.PUBLISHED, published_at=timezone.now()
        )
        Score.objects.bulk_create(
            Score(
                run=run,
                scope=Score.Scope.UNIT if unit else Score.Scope.NATIONAL,
                unit=units[unit] if unit else None,
                indicator=sat,
                value=value,
                se=se,
                n=200,
                n_eff=200.0,
                ci_low=value - 1.96 * se,
                ci_high=value + 1.96 * se,
            )
            for unit, (value, se) in values.items()
        )
    agency_x = Agency.objects.create(unit=units["19"], code="19-SXD", name_vi="Sở Xây dựng")
    agency_y = Agency.objects.create(unit=units["19"], code="19-SNV", name_vi="Sở Nội vụ")
    agency_z = Agency.objects.create(unit=units["01"], code="01-SXD", name_vi="Sở Xây dựng HN")
    staff_x = _user("staff-x")
    staff_y = _user("staff-y")
    coordinator = _user("coordinator", "plans.add_task")
    PlanStaff.objects.create(user=staff_x, unit=units["19"], agency=agency_x)
    PlanStaff.objects.create(user=staff_y, unit=units["19"], agency=agency_y)
    PlanStaff.objects.create(user=coordinator, unit=units["19"])
    return {
        "version": version,
        "units": units,
        "rounds": rounds,
        "agency_x": agency_x,
        "agency_y": agency_y,
        "agency_z": agency_z,
        "staff_x": staff_x,
        "staff_y": staff_y,
        "coordinator": coordinator,
        "other_staff": _user("other-staff"),
        "national": _user(
            "national", "plans.view_all_tasks", "plans.add_task", "plans.change_task"
        ),
        "admin": _user("admin", superuser=True),
    }
