"""Idempotent loaders for the data the project ships: provinces, their 2025 merger, and
questionnaires written as YAML (``surveys/data/``). Running a loader twice changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q

from surveys.models import (
    Choice,
    Indicator,
    PolicyGroup,
    Question,
    Questionnaire,
    QuestionnaireVersion,
    Section,
    Unit,
    UnitLineage,
)
from surveys.services import publish_version

DATA_DIR = Path(__file__).resolve().parent / "data"
PROVINCES_2022 = DATA_DIR / "provinces-2022.csv"
MERGER_2025 = DATA_DIR / "province-merger-2025.csv"
MERGER_2025_DATE = dt.date(2025, 7, 1)
SIPAS_2022 = DATA_DIR / "questionnaires" / "sipas-2022.yaml"
DEMO_AGENCIES = DATA_DIR / "demo-agencies.csv"


@dataclass
class LoadReport:
    """What a loader created; ``created == 0`` on a second run."""

    created: int = 0
    unchanged: int = 0
    links_created: int = 0


def merged_unit_code(kept_code: str) -> str:
    """Code of a unit created by the 2025 merger: ``<code of the namesake>-2025``.

    The merger table gives no codes for new provinces, so ours are derived from the
    pre-merger province whose name the new one carries (documented in docs/questionnaires.md).
    """
    return f"{kept_code}-2025"


@transaction.atomic
def load_units(provinces_csv: Path = PROVINCES_2022, merger_csv: Path = MERGER_2025) -> LoadReport:
    """Load the 63 provinces of 2022 and the 34 of the 2025 merger, with lineage."""
    report = LoadReport()
    with provinces_csv.open(encoding="utf-8") as f:
        provinces = list(csv.DictReader(f))
    with merger_csv.open(encoding="utf-8") as f:
        merger = list(csv.DictReader(f))

    for row in provinces:
        _, created = Unit.objects.get_or_create(
            code=row["code"],
            defaults={"name": row["name"], "kind": row["kind"], "region": row["region"]},
        )
        report.created += created
        report.unchanged += not created

    by_code = {row["code"]: row for row in provinces}
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in merger:
        if row["old_code"] not in by_code:
            raise ValidationError(
                {"old_code": [f"{merger_csv.name}: unknown province code {row['old_code']}"]}
            )
        groups[row["new_name"]].append(row)

    for new_name, members in groups.items():
        if len(members) == 1 and members[0]["old_name"] == new_name:
            continue  # unchanged by the merger: the 2022 unit goes on
        namesake = next((m for m in members if m["old_name"] == new_name), None)
        if namesake is None:  # renamed (Thừa Thiên Huế → Thành phố Huế): keep its code
            namesake = next(
                (m for m in members if new_name.endswith(m["old_name"].split()[-1])), members[0]
            )
        kept = by_code[namesake["old_code"]]
        kind = (
            Unit.Kind.MUNICIPALITY
            if new_name.startswith("Thành phố")
            or any(by_code[m["old_code"]]["kind"] == Unit.Kind.MUNICIPALITY for m in members)
            else Unit.Kind.PROVINCE
        )
        successor, created = Unit.objects.get_or_create(
            code=merged_unit_code(kept["code"]),
            defaults={
                "name": new_name,
                "kind": kind,
                "region": kept["region"],
                "valid_from": MERGER_2025_DATE,
            },
        )
        report.created += created
        report.unchanged += not created
        for member in members:
            predecessor = Unit.objects.get(code=member["old_code"])
            if predecessor.valid_to is None:
                predecessor.valid_to = MERGER_2025_DATE - dt.timedelta(days=1)
                predecessor.save(update_fields=["valid_to"])
            _, created = UnitLineage.objects.get_or_create(
                predecessor=predecessor,
                successor=successor,
                defaults={"effective_on": MERGER_2025_DATE},
            )
            report.links_created += created
    return report


# --- Questionnaires -----------------------------------------------------------------------


def _text(value: Any, key: str = "") -> tuple[str, str]:
    """``{"vi": ..., "en": ...}`` (or a plain string, taken as Vietnamese) → (vi, en)."""
    if value is None:
        return "", ""
    if isinstance(value, str):
        return value, ""
    if not isinstance(value, dict) or "vi" not in value:
        raise ValidationError({key or "label": ["expected {vi: ..., en: ...}"]})
    return str(value["vi"]), str(value.get("en", ""))


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


# libyaml's safe loader where PyYAML has it (its wheels do): the same document, ten times
# faster than the pure-Python one.
SAFE_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_questionnaire(
    path: Path = SIPAS_2022, *, publish: bool = True
) -> tuple[QuestionnaireVersion, bool]:
    """Load a questionnaire file as a new version; the same file again returns that version.

    The version is recognised by the file's SHA-256 digest. Returns ``(version, created)``.
    Errors in the file raise ``ValidationError`` naming the part, and nothing is stored.
    """
    digest = file_digest(path)
    spec = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_YAML)
    if not isinstance(spec, dict) or "questionnaire" not in spec or "sections" not in spec:
        raise ValidationError({"file": [f"{path.name}: needs 'questionnaire' and 'sections'"]})

    with transaction.atomic():
        meta = spec["questionnaire"]
        title_vi, title_en = _text(meta.get("title"), "title")
        desc_vi, desc_en = _text(meta.get("description"), "description")
        questionnaire, _ = Questionnaire.objects.get_or_create(
            code=meta["code"],
            defaults={
                "title_vi": title_vi,
                "title_en": title_en,
                "description_vi": desc_vi,
                "description_en": desc_en,
            },
        )
        existing = questionnaire.versions.filter(source_digest=digest).first()
        if existing is not None:
            return existing, False

        number = (questionnaire.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = QuestionnaireVersion.objects.create(
            questionnaire=questionnaire,
            number=number,
            label=str(spec.get("version", {}).get("label", "")),
            source_digest=digest,
        )
        _load_content(version, spec)
        if publish:
            version = publish_version(version_id=version.pk)
    return version, True


def _load_content(
    version: QuestionnaireVersion, spec: dict[str, Any], *, clean: bool = True
) -> None:
    """Create the content of ``spec`` in ``version``. ``clean=False`` leaves out each
    question's ``full_clean``, for a caller that checks the whole version afterwards with
    ``version_errors`` to report every problem at once (the XLSForm import)."""
    groups: dict[str, PolicyGroup] = {}
    for position, item in enumerate(spec.get("policy_groups", []), start=1):
        name_vi, name_en = _text(item.get("name"), f"policy group {item.get('code')}")
        groups[item["code"]] = PolicyGroup.objects.create(
            version=version, code=item["code"], position=position, name_vi=name_vi, name_en=name_en
        )

    indicators: dict[str, Indicator] = {}

    def add_indicator(node: dict[str, Any], parent: Indicator | None, position: int) -> None:
        code = node["code"]
        if code in indicators:
            raise ValidationError({f"indicator {code}": ["code used twice"]})
        name_vi, name_en = _text(node.get("name"), f"indicator {code}")
        group = node.get("policy_group")
        if group is not None and group not in groups:
            raise ValidationError({f"indicator {code}": [f"unknown policy group {group}"]})
        indicators[code] = Indicator.objects.create(
            version=version,
            code=code,
            parent=parent,
            kind=node["kind"],
            position=position,
            name_vi=name_vi,
            name_en=name_en,
            aggregation=node.get("aggregation", Indicator.Aggregation.MEAN),
            weight=float(node.get("weight", 1.0)),
            policy_group=groups.get(group) if group else None,
        )
        for child_position, child in enumerate(node.get("children", []), start=1):
            add_indicator(child, indicators[code], child_position)

    for position, root in enumerate(spec.get("indicators", []), start=1):
        add_indicator(root, None, position)

    scales: dict[str, list[dict[str, Any]]] = spec.get("scales", {})
    questions: dict[str, Question] = {}
    for s_position, section_spec in enumerate(spec["sections"], start=1):
        title_vi, title_en = _text(section_spec.get("title"), f"section {section_spec['code']}")
        intro_vi, intro_en = _text(section_spec.get("intro"), f"section {section_spec['code']}")
        section = Section.objects.create(
            version=version,
            code=section_spec["code"],
            position=s_position,
            title_vi=title_vi,
            title_en=title_en,
            intro_vi=intro_vi,
            intro_en=intro_en,
        )
        for q_position, q in enumerate(section_spec.get("questions", []), start=1):
            code = q["code"]
            where = f"question {code}"
            if code in questions:
                raise ValidationError({where: ["code used twice in this version"]})
            label_vi, label_en = _text(q.get("label"), where)
            help_vi, help_en = _text(q.get("help"), where)
            condition = q.get("show_if")
            condition_question = None
            if condition is not None:
                condition_question = questions.get(condition.get("question"))
                if condition_question is None:
                    named = condition.get("question")
                    raise ValidationError(
                        {where: [f"show_if names {named!r}, which is not an earlier question"]}
                    )
            indicator_code = q.get("indicator")
            if indicator_code is not None and indicator_code not in indicators:
                raise ValidationError({where: [f"unknown indicator {indicator_code}"]})
            question = Question(
                section=section,
                code=code,
                position=q_position,
                type=q["type"],
                required=bool(q.get("required", False)),
                label_vi=label_vi,
                label_en=label_en,
                help_vi=help_vi,
                help_en=help_en,
                min_value=_decimal(q.get("min")),
                max_value=_decimal(q.get("max")),
                max_length=q.get("max_length"),
                show_if_question=condition_question,
                show_if_values=list(condition.get("in", [])) if condition else [],
                indicator=indicators.get(indicator_code) if indicator_code else None,
                satisfied_values=list(q.get("satisfied", [])),
                excluded_from_indices=bool(q.get("excluded", False)),
                personal_data=bool(q.get("personal_data", False)),
            )
            if clean:
                question.full_clean(exclude=["version"])
            question.save()
            questions[code] = question

            choices = q.get("choices", [])
            if isinstance(choices, str):
                if choices not in scales:
                    raise ValidationError({where: [f"unknown scale {choices!r}"]})
                choices = scales[choices]
            objs = []
            for c_position, choice in enumerate(choices, start=1):
                c_vi, c_en = _text(choice.get("label"), where)
                objs.append(
                    Choice(
                        question=question,
                        code=str(choice["code"]),
                        position=c_position,
                        label_vi=c_vi,
                        label_en=c_en,
                    )
                )
            Choice.objects.bulk_create(objs)


# --- Built-in rounds ----------------------------------------------------------------------


def _aware(day: dt.date, hour: int = 0) -> dt.datetime:
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def provinces_2022() -> Any:
    """The 63 provinces of 2022: units in effect before the 2025 merger."""
    with PROVINCES_2022.open(encoding="utf-8") as f:
        codes = [row["code"] for row in csv.DictReader(f)]
    return Unit.objects.filter(code__in=codes)


@transaction.atomic
def ensure_sipas_rounds(version: QuestionnaireVersion, *, today: dt.date) -> LoadReport:
    """The historic round ``sipas-2022`` (closed) and an open ``demo`` round, both over the
    63 provinces of 2022 with the SIPAS questionnaire. Existing rounds are left as they are.
    """
    from surveys.models import Round

    report = LoadReport()
    units = list(provinces_2022())
    specs = {
        "sipas-2022": {
            "name_vi": "SIPAS 2022",
            "name_en": "SIPAS 2022",
            "period_start": dt.date(2022, 1, 1),
            "period_end": dt.date(2022, 12, 31),
            "opens_at": _aware(dt.date(2022, 9, 1)),
            "closes_at": _aware(dt.date(2022, 12, 1)),
            "allow_open_link": False,
        },
        "demo": {
            "name_vi": "Khảo sát thử (dữ liệu minh họa)",
            "name_en": "Demo survey (illustrative data)",
            "period_start": today - dt.timedelta(days=365),
            "period_end": today,
            "opens_at": _aware(today),
            "closes_at": _aware(today + dt.timedelta(days=365)),
            "allow_open_link": True,
        },
    }
    for code, defaults in specs.items():
        survey_round, created = Round.objects.get_or_create(
            code=code, defaults={**defaults, "version": version}
        )
        if created:
            survey_round.units.set(units)
            report.created += 1
        else:
            report.unchanged += 1
    return report


def current_units(*, today: dt.date) -> Any:
    """Units in effect on ``today`` (after the 2025 merger: the 34)."""
    return Unit.objects.filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=today),
        Q(valid_to__isnull=True) | Q(valid_to__gte=today),
    )


@transaction.atomic
def ensure_demo_agencies(
    agencies_csv: Path = DEMO_AGENCIES, *, today: dt.date | None = None
) -> LoadReport:
    """Demo agencies: the public administrative service centre (the file's first row) of
    each 2022 province, for the historic round; every agency of the file for each unit in
    effect today, so that petitions there can be assigned and routed. Codes are unique in
    the country: the file's ``{unit_code}`` becomes the unit's code (``01-TTPVHCC``) and
    ``{unit}`` in names its name. Existing agencies (same code) are left as they are.
    """
    from django.utils import timezone

    from surveys.models import Agency

    with agencies_csv.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    today = today or timezone.localdate()
    wanted = [(unit, rows[:1]) for unit in provinces_2022()]
    wanted += [(unit, rows) for unit in current_units(today=today)]
    agencies: dict[str, Agency] = {}
    for unit, unit_rows in wanted:
        for row in unit_rows:
            code = row["code"].format(unit_code=unit.code)
            agencies[code] = Agency(
                unit=unit,
                code=code,
                name_vi=row["name_vi"].format(unit=unit.name),
                name_en=row["name_en"].format(unit=unit.name),
                kind=row["kind"],
            )
    before = Agency.objects.count()
    Agency.objects.bulk_create(agencies.values(), ignore_conflicts=True)
    created = Agency.objects.count() - before
    return LoadReport(created=created, unchanged=len(agencies) - created)
