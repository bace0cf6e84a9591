"""A round's XForm, built with pyxform from the XLSForm export of its questionnaire version,
and the answers read back from an instance (an ODK submission) of it.

The form is the export's ``survey``/``choices``/``settings`` sheets (``surveys.xlsform``)
with three questions of ours in front: the unit (``sipas_unit``, required, a choice among
the round's units), the agency (``sipas_agency``, optional, the agencies of the unit chosen:
a ``choice_filter``) and the primary sampling unit (``sipas_psu``, optional text). Its
``form_id`` is the round's code, so a submission names its round; its ``version`` changes
with the questionnaire version and the round's units and agencies, so ODK Collect fetches
the form again when they change.

Reading an instance: every leaf element outside ``meta`` is a question by its XLSForm name
(``surveys.xlsform.xml_name`` of its code); groups and notes of the form are skipped, an
empty element is no answer, any other element is passed on as an unknown question code,
which validation refuses like on every channel. Values are converted from XForm text to
the API's values (``yes``/``no`` → booleans, whole numbers, space-separated choices →
lists); text that is no value of its type is passed on as text, which validation then
refuses naming the question.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from django.utils.translation import gettext as _
from pyxform.xls2xform import convert

from surveys.models import Agency, Question, Round
from surveys.xlsform import xlsform_sheets, xml_name

UNIT, AGENCY, PSU = "sipas_unit", "sipas_agency", "sipas_psu"
UNIT_LIST, AGENCY_LIST = "sipas_units", "sipas_agencies"
RESERVED = frozenset({UNIT, AGENCY, PSU})
VI, EN = "Tiếng Việt (vi)", "English (en)"
# Namespace of the client ids made from instance IDs that are not ``uuid:<UUID>``.
INSTANCE_NAMESPACE = uuid.UUID("3f6b1c52-5d0e-4f7e-9a43-0d6c2b7e8a19")
YES_TEXTS = frozenset({"yes", "1", "true"})
NO_TEXTS = frozenset({"no", "0", "false"})


class InstanceInvalid(ValueError):
    """An instance that cannot be read; ``field`` names the element at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RoundForm:
    """The XForm of a round and what reading its instances needs."""

    xml: str
    version: str
    md5: str
    # XLSForm names of the form's rows that carry no answer (groups, notes).
    non_answers: frozenset[str]
    # XLSForm name → our question code, and each question's type.
    codes: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)


def _labels(column: str, vi: str, en: str, keys: set[str]) -> dict[str, str]:
    """Vietnamese and English columns as the export names them (plain ``label`` if the
    export has no translated columns)."""
    vi_key, en_key = f"{column}::{VI}", f"{column}::{EN}"
    if vi_key in keys or not keys:
        return {vi_key: vi, en_key: en or vi}
    return {column: vi}


def _header(rows: list[dict[str, str]]) -> list[dict[str, None]]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return [keys]


def round_sheets(survey_round: Round) -> dict[str, list[dict[str, str]]]:
    """The XLSForm sheets of the round's form: the export plus the round's own rows."""
    sheets = xlsform_sheets(survey_round.version)
    survey = [dict(row) for row in sheets["survey"]]
    choices = [dict(row) for row in sheets.get("choices", [])]
    settings_rows = [dict(row) for row in sheets.get("settings", [])] or [{}]
    label_keys = {key for row in survey for key in row if key.startswith("label")}
    taken = {row.get("name", "") for row in survey} & RESERVED
    if taken:
        raise ValueError(f"the questionnaire uses the reserved names {sorted(taken)}")

    units = list(survey_round.units.order_by("code"))
    agencies = list(
        Agency.objects.filter(unit__in=units).select_related("unit").order_by("unit__code", "code")
    )
    own = [
        {
            "type": f"select_one {UNIT_LIST}",
            "name": UNIT,
            "required": "yes",
            **_labels("label", "Tỉnh, thành phố được đánh giá", "Province rated", label_keys),
        }
    ]
    choices += [
        {
            "list_name": UNIT_LIST,
            "name": unit.code,
            **_labels("label", *[unit.name] * 2, label_keys),
        }
        for unit in units
    ]
    if agencies:
        own.append(
            {
                "type": f"select_one {AGENCY_LIST}",
                "name": AGENCY,
                "choice_filter": f"unit=${{{UNIT}}}",
                **_labels(
                    "label",
                    "Cơ quan (không bắt buộc)",
                    "Agency (optional)",
                    label_keys,
                ),
            }
        )
        choices += [
            {
                "list_name": AGENCY_LIST,
                "name": agency.code,
                "unit": agency.unit.code,
                **_labels(
                    "label",
                    agency.name_vi,
                    getattr(agency, "name_en", "") or agency.name_vi,
                    label_keys,
                ),
            }
            for agency in agencies
        ]
    own.append(
        {
            "type": "text",
            "name": PSU,
            **_labels(
                "label",
                "Địa bàn khảo sát (thôn, xã; không bắt buộc)",
                "Primary sampling unit (village, commune; optional)",
                label_keys,
            ),
        }
    )
    signature = hashlib.sha256(
        "|".join(
            [str(survey_round.version.pk), str(survey_round.version.published_at)]
            + [u.code + ":" + u.name for u in units]
            + [a.code + ":" + a.unit.code + ":" + a.name_vi for a in agencies]
        ).encode()
    ).hexdigest()[:10]
    settings_row = settings_rows[0]
    settings_row["form_id"] = survey_round.code
    settings_row["version"] = f"{survey_round.version.number}.{signature}"
    settings_row["form_title"] = (
        f"{survey_round.name_vi} ({survey_round.code})"
        if survey_round.name_vi
        else survey_round.code
    )
    return {"survey": own + survey, "choices": choices, "settings": [settings_row]}


_FORMS: dict[tuple[int, str], RoundForm] = {}


def round_form(survey_round: Round) -> RoundForm:
    """The round's XForm (built once per process for each form version)."""
    sheets = round_sheets(survey_round)
    version = sheets["settings"][0]["version"]
    key = (survey_round.pk, version)
    if (form := _FORMS.get(key)) is not None:
        return form
    warnings: list[str] = []
    workbook: dict[str, Any] = {}
    for sheet, rows in sheets.items():
        # As pyxform reads a spreadsheet: empty cells are absent.
        cells = [{k: str(v) for k, v in row.items() if v not in (None, "")} for row in rows]
        workbook[sheet] = cells
        workbook[f"{sheet}_header"] = _header(cells)
    result = convert(workbook, warnings=warnings)
    questions = Question.objects.filter(version_id=survey_round.version_id).values_list(
        "code", "type"
    )
    codes = {xml_name(code): code for code, _type in questions}
    types = {code: kind for code, kind in questions}
    non_answers = frozenset(
        row["name"]
        for row in sheets["survey"]
        if row.get("name") and row["name"] not in codes and row["name"] not in RESERVED
    )
    xml = result.xform
    form = RoundForm(
        xml=xml,
        version=version,
        md5=hashlib.md5(xml.encode()).hexdigest(),
        non_answers=non_answers,
        codes=codes,
        types=types,
    )
    if len(_FORMS) > 64:
        _FORMS.clear()
    _FORMS[key] = form
    return form


# --- Reading an instance ------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    form_id: str
    instance_id: str
    client_id: uuid.UUID
    unit: str
    agency: str
    psu: str
    answers: dict[str, Any]


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse_instance(data: bytes) -> Element:
    """The instance's root element; ``InstanceInvalid`` for XML that is not well formed or
    declares a DTD or entities (refused outright: no entity is ever expanded)."""
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise InstanceInvalid(
            "xml_submission_file", _("The instance may not declare a DTD or entities.")
        ) from None
    except (ParseError, ValueError) as problem:
        raise InstanceInvalid(
            "xml_submission_file",
            _("The instance is not well-formed XML (%(problem)s).") % {"problem": problem},
        ) from None


def instance_form_id(root: Element) -> str:
    form_id = (root.get("id") or "").strip()
    if not form_id:
        raise InstanceInvalid("id", _("The instance does not name its form (attribute id)."))
    return form_id


def client_id_of(instance_id: str) -> uuid.UUID:
    """The response's idempotency key: the UUID of ``uuid:<UUID>``, or for another form of
    instance ID a UUID derived from it."""
    if instance_id.lower().startswith("uuid:"):
        try:
            return uuid.UUID(instance_id[5:])
        except ValueError:
            pass
    return uuid.uuid5(INSTANCE_NAMESPACE, instance_id)


def _value(kind: str, text: str) -> Any:
    match kind:
        case Question.Type.YESNO:
            lowered = text.strip().lower()
            if lowered in YES_TEXTS:
                return True
            if lowered in NO_TEXTS:
                return False
            return text
        case Question.Type.SCALE | Question.Type.NUMBER:
            stripped = text.strip()
            if len(stripped) > 40:
                return text  # no whole number we store: refused as such by validation
            try:
                number = Decimal(stripped)
            except InvalidOperation:
                return text
            if not number.is_finite() or number != number.to_integral_value():
                return text
            return int(number)
        case Question.Type.MULTIPLE:
            return text.split()
        case Question.Type.SINGLE | Question.Type.DATE:
            return text.strip()
    return text


def read_instance(root: Element, form: RoundForm) -> Instance:
    """The unit, agency, PSU, instance ID and answers (by question code) of an instance."""
    form_id = instance_form_id(root)
    instance_id = ""
    unit = agency = psu = ""
    answers: dict[str, Any] = {}
    stack = [(child, False) for child in reversed(list(root))]
    while stack:
        element, in_meta = stack.pop()
        name = _local(element.tag)
        children = list(element)
        if children:
            stack.extend((child, in_meta or name == "meta") for child in reversed(children))
            continue
        text = element.text or ""
        if in_meta:
            if name == "instanceID":
                instance_id = text.strip()
            continue
        if name == UNIT:
            unit = text.strip()
        elif name == AGENCY:
            agency = text.strip()
        elif name == PSU:
            psu = text.strip()
        elif name in form.non_answers:
            continue
        elif not text.strip():
            continue  # unanswered (or hidden: engines blank what is not relevant)
        else:
            code = form.codes.get(name, name)
            if code in answers:
                raise InstanceInvalid(
                    code, _("%(code)s is answered twice in the instance.") % {"code": code}
                )
            answers[code] = _value(form.types.get(code, ""), text)
    if not instance_id:
        raise InstanceInvalid(
            "meta/instanceID", _("The instance has no meta/instanceID (its idempotency key).")
        )
    if not unit:
        raise InstanceInvalid(UNIT, _("The instance names no unit (%(name)s).") % {"name": UNIT})
    return Instance(
        form_id=form_id,
        instance_id=instance_id,
        client_id=client_id_of(instance_id),
        unit=unit,
        agency=agency,
        psu=psu,
        answers=answers,
    )


def round_for_instance(form_id: str) -> Round | None:
    return (
        Round.objects.filter(code=form_id)
        .select_related("version", "version__questionnaire")
        .first()
    )
