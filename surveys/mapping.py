"""Series across questionnaire versions: checking a version mapping, loading it from CSV, and
reading which codes of two versions may be compared (docs/series.md).

A mapping (``VersionMapping``) relates an earlier version A to a later version B of one
questionnaire; each row names a question or indicator code of A and its equivalent in B
(``same`` or ``reworded``), or says it has none (``none``). A row is accepted only if both
codes exist in their versions and their answers are on the same footing:

- questions: the same type (``reworded`` also lets short and long text meet), the same
  choice codes (for ``same`` in the same order), and, when both are scored, the same
  satisfied values: a 5-point scale never maps to yes/no;
- indicators: the same kind and aggregation and, for items, the same scales under them (the
  type, choice codes and satisfied values of the questions that feed them).

``row_errors`` (one row), ``rows_errors`` (a set of rows: each code once per side) and
``mapping_errors`` (the two versions) are used by the model's ``clean``, the admin, the CSV
loader and the tests alike. Rounds of one version compare code by code with no mapping;
rounds of two versions compare only what a mapping between them links (``correspondence``,
``series_links``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from config.csv_upload import file_refused, uploaded_text
from surveys.models import (
    Choice,
    Indicator,
    Question,
    QuestionnaireVersion,
    VersionMapping,
    VersionMappingRow,
)

HEADER = ("kind", "from_code", "to_code", "relation")
MAX_BYTES = 2 * 1024 * 1024
COMPARABLE = (VersionMappingRow.Relation.SAME, VersionMappingRow.Relation.REWORDED)
Kind = VersionMappingRow.Kind
Relation = VersionMappingRow.Relation
Errors = dict[str, list[str]]


def _add(errors: Errors, key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


# --- The two versions ---------------------------------------------------------------------------


def mapping_errors(mapping: VersionMapping) -> Errors:
    """Problems of the mapping's two versions: one questionnaire, two versions, one mapping
    per pair whichever its direction."""
    errors: Errors = {}
    if mapping.from_version_id is None or mapping.to_version_id is None:
        return errors
    if mapping.from_version_id == mapping.to_version_id:
        _add(errors, "to_version", _("A mapping relates two different versions."))
        return errors
    if mapping.from_version.questionnaire_id != mapping.to_version.questionnaire_id:
        _add(errors, "to_version", _("Both versions must be of the same questionnaire."))
    for name in ("from_version", "to_version"):
        if getattr(mapping, name).status == QuestionnaireVersion.Status.DRAFT:
            _add(errors, name, _("Map published versions only: a draft can still change."))
    others = VersionMapping.objects.filter(
        Q(from_version_id=mapping.from_version_id, to_version_id=mapping.to_version_id)
        | Q(from_version_id=mapping.to_version_id, to_version_id=mapping.from_version_id)
    ).exclude(pk=mapping.pk)
    if others.exists():
        _add(errors, "to_version", _("These two versions already have a mapping."))
    return errors


def _value_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Scale:
    """What a question's answers are: its type, choice codes in order, satisfied values."""

    type: str
    choices: tuple[str, ...]
    satisfied: frozenset[str]

    @property
    def family(self) -> str:
        return "text" if self.type in Question.TEXT_TYPES else self.type

    def describe(self) -> str:
        if self.choices:
            return f"{self.type} ({', '.join(self.choices)})"
        return self.type


@dataclass
class VersionCodes:
    """The question scales and indicators of one version, read once (three queries)."""

    version: QuestionnaireVersion
    questions: dict[str, Scale] = field(default_factory=dict)
    indicators: dict[str, tuple[str, str, frozenset[Scale]]] = field(default_factory=dict)

    @classmethod
    def of(cls, version: QuestionnaireVersion) -> VersionCodes:
        found = cls(version)
        choices: dict[int, list[str]] = defaultdict(list)
        for question_id, code in (
            Choice.objects.filter(question__version=version)
            .order_by("question_id", "position", "id")
            .values_list("question_id", "code")
        ):
            choices[question_id].append(code)
        feeding: dict[int, set[Scale]] = defaultdict(set)
        for pk, code, kind, satisfied, indicator_id in Question.objects.filter(
            version=version
        ).values_list("pk", "code", "type", "satisfied_values", "indicator_id"):
            scale = Scale(
                kind, tuple(choices[pk]), frozenset(_value_key(v) for v in satisfied or [])
            )
            found.questions[code] = scale
            if indicator_id is not None:
                feeding[indicator_id].add(scale)
        for pk, code, kind, aggregation in Indicator.objects.filter(version=version).values_list(
            "pk", "code", "kind", "aggregation"
        ):
            found.indicators[code] = (kind, aggregation, frozenset(feeding[pk]))
        return found

    @property
    def name(self) -> str:
        return f"v{self.version.number}"


class MappingCheck:
    """Checks rows of a mapping between two versions (each read once)."""

    def __init__(self, from_version: QuestionnaireVersion, to_version: QuestionnaireVersion):
        self.earlier = VersionCodes.of(from_version)
        self.later = VersionCodes.of(to_version)

    def row_errors(self, kind: str, from_code: str, to_code: str, relation: str) -> Errors:
        """Problems of one row, keyed by its field (kind, from_code, to_code, relation)."""
        errors: Errors = {}
        for key, value, allowed, message in (
            ("kind", kind, Kind.values, _("%(value)s is not a kind (expected %(expected)s).")),
            (
                "relation",
                relation,
                Relation.values,
                _("%(value)s is not a relation (expected %(expected)s)."),
            ),
        ):
            if value not in allowed:
                expected = ", ".join(allowed)
                _add(errors, key, message % {"value": value or "-", "expected": expected})
        if errors:
            return errors
        what = _("question") if kind == Kind.QUESTION else _("indicator")
        codes = "questions" if kind == Kind.QUESTION else "indicators"
        earlier, later = getattr(self.earlier, codes), getattr(self.later, codes)
        if from_code not in earlier:
            _add(
                errors,
                "from_code",
                _("Version %(version)s has no %(what)s %(code)s.")
                % {"version": self.earlier.name, "what": what, "code": from_code or "-"},
            )
        if relation == Relation.NONE:
            if to_code:
                _add(errors, "to_code", _("A row without equivalent has no code here."))
            return errors
        if not to_code:
            _add(errors, "to_code", _("Give the code in the later version."))
        elif to_code not in later:
            _add(
                errors,
                "to_code",
                _("Version %(version)s has no %(what)s %(code)s.")
                % {"version": self.later.name, "what": what, "code": to_code},
            )
        if errors:
            return errors
        if kind == Kind.QUESTION:
            problem = question_mismatch(earlier[from_code], later[to_code], relation)
        else:
            problem = indicator_mismatch(earlier[from_code], later[to_code])
        if problem:
            _add(
                errors,
                "to_code",
                _("%(from)s and %(to)s cannot be compared: %(problem)s")
                % {"from": from_code, "to": to_code, "problem": problem},
            )
        return errors


def question_mismatch(a: Scale, b: Scale, relation: str) -> str | None:
    """Why two questions' answers are not comparable, or None."""
    if a.family != b.family or (relation == Relation.SAME and a.type != b.type):
        return _("the types differ (%(a)s, %(b)s).") % {"a": a.type, "b": b.type}
    if relation == Relation.SAME and a.choices != b.choices:
        return _("the choices differ (%(a)s; %(b)s).") % {
            "a": a.describe(),
            "b": b.describe(),
        }
    if set(a.choices) != set(b.choices):
        return _("the choices differ (%(a)s; %(b)s).") % {
            "a": a.describe(),
            "b": b.describe(),
        }
    if a.satisfied and b.satisfied and a.satisfied != b.satisfied:
        return _("they count different answers as satisfied.")
    return None


def indicator_mismatch(
    a: tuple[str, str, frozenset[Scale]], b: tuple[str, str, frozenset[Scale]]
) -> str | None:
    """Why two indicators are not comparable, or None."""
    if a[0] != b[0]:
        return _("the kinds differ (%(a)s, %(b)s).") % {"a": a[0], "b": b[0]}
    if a[1] != b[1]:
        return _("they are aggregated differently (%(a)s, %(b)s).") % {"a": a[1], "b": b[1]}
    if {(s.family, frozenset(s.choices), s.satisfied) for s in a[2]} != {
        (s.family, frozenset(s.choices), s.satisfied) for s in b[2]
    }:
        return _("the questions under them are on different scales.")
    return None


def rows_errors(
    check: MappingCheck, rows: Iterable[tuple[str, str, str, str]]
) -> list[tuple[int, Errors]]:
    """Problems of a whole set of rows ``(kind, from_code, to_code, relation)``: each row's,
    and a code given twice on one side. Each with the row's index."""
    rows = list(rows)
    found: list[tuple[int, Errors]] = []
    froms = Counter((kind, a) for kind, a, _b, _r in rows)
    tos = Counter((kind, b) for kind, _a, b, _r in rows if b)
    for index, (kind, a, b, relation) in enumerate(rows):
        errors = check.row_errors(kind, a, b, relation)
        if froms[kind, a] > 1:
            _add(errors, "from_code", _("%(code)s is mapped more than once.") % {"code": a})
        if b and tos[kind, b] > 1:
            _add(
                errors,
                "to_code",
                _("%(code)s is the equivalent of more than one code.") % {"code": b},
            )
        if errors:
            found.append((index, errors))
    return found


# --- CSV ----------------------------------------------------------------------------------------


def read_mapping_csv(mapping: VersionMapping, data: bytes | str) -> list[VersionMappingRow]:
    """The rows of a CSV file (``kind,from_code,to_code,relation``), unsaved; otherwise
    ValidationError ``{"file": [problems]}``, each naming its row (the header is row 1) and
    column."""

    data = uploaded_text(data, max_bytes=MAX_BYTES)
    if "\x00" in data:
        raise file_refused([_("The file is not UTF-8 text.")])
    try:
        reader = csv.reader(io.StringIO(data))
        header = tuple(cell.strip().lower() for cell in next(reader, []))
        lines: list[tuple[int, list[str]]] = [(reader.line_num, fields) for fields in reader]
    except csv.Error as exc:
        raise file_refused([_("The file is not valid CSV: %(error)s") % {"error": exc}]) from None
    if header != HEADER:
        raise file_refused(
            [
                _("Row 1: the columns must be %(expected)s, not %(found)s.")
                % {"expected": ",".join(HEADER), "found": ",".join(header) or "-"}
            ]
        )
    problems: list[str] = []
    rows: list[tuple[str, str, str, str]] = []
    numbers: list[int] = []
    for number, fields in lines:
        if not any(cell.strip() for cell in fields):
            continue
        if len(fields) != len(HEADER):
            problems.append(
                _("Row %(row)d: %(n)d fields, expected %(expected)d.")
                % {"row": number, "n": len(fields), "expected": len(HEADER)}
            )
            continue
        kind, a, b, relation = (cell.strip() for cell in fields)
        rows.append((kind.lower(), a, b, relation.lower()))
        numbers.append(number)
    check = MappingCheck(mapping.from_version, mapping.to_version)
    for index, errors in rows_errors(check, rows):
        for column, messages in errors.items():
            for message in messages:
                problems.append(
                    _("Row %(row)d, %(field)s: %(message)s")
                    % {"row": numbers[index], "field": column, "message": message}
                )
    if problems:
        raise file_refused(problems)
    return [
        VersionMappingRow(mapping=mapping, kind=k, from_code=a, to_code=b, relation=r)
        for k, a, b, r in rows
    ]


def rows_text(mapping: VersionMapping) -> str:
    """The mapping's rows as the lines of their CSV file."""
    return "\n".join(
        ",".join(row)
        for row in mapping.rows.order_by("kind", "from_code").values_list(
            "kind", "from_code", "to_code", "relation"
        )
    )


def replace_rows(*, mapping: VersionMapping, data: bytes | str) -> int:
    """Replace the mapping's rows with those of a CSV file, all or nothing; the audit trail
    records the rows before and after."""
    from audit.services import record_change  # the audit app records; it imports no app

    rows = read_mapping_csv(mapping, data)
    with transaction.atomic():
        before = rows_text(mapping)
        mapping.rows.all().delete()
        VersionMappingRow.objects.bulk_create(rows)
        after = rows_text(mapping)
        if before != after:
            record_change(mapping, {"rows": [before, after]})
        forget_links()
    return len(rows)


def fill_matching_rows(*, mapping: VersionMapping) -> int:
    """Add a ``same`` row for every code (question and indicator) found in both versions with
    comparable answers and not mapped yet. The number of rows added."""
    check = MappingCheck(mapping.from_version, mapping.to_version)
    taken = set(mapping.rows.values_list("kind", "from_code"))
    taken_to = set(mapping.rows.exclude(to_code="").values_list("kind", "to_code"))
    added = 0
    for kind, codes in ((Kind.QUESTION, "questions"), (Kind.INDICATOR, "indicators")):
        later = getattr(check.later, codes)
        for code in getattr(check.earlier, codes):
            if code not in later or (kind, code) in taken or (kind, code) in taken_to:
                continue
            if check.row_errors(kind, code, code, Relation.SAME):
                continue
            VersionMappingRow.objects.create(
                mapping=mapping, kind=kind, from_code=code, to_code=code, relation=Relation.SAME
            )
            added += 1
    return added


# --- Reads: which codes compare ----------------------------------------------------------------


def correspondence(
    *, earlier_version_id: int, later_version_id: int, kind: str
) -> dict[str, str] | None:
    """Later code → earlier code of every pair the mapping between the two versions links
    (``same`` or ``reworded``); None when both are one version (every code is itself).
    Without a mapping, empty: nothing is compared. One query."""
    if earlier_version_id == later_version_id:
        return None
    rows = VersionMappingRow.objects.filter(
        Q(mapping__from_version_id=earlier_version_id, mapping__to_version_id=later_version_id)
        | Q(mapping__from_version_id=later_version_id, mapping__to_version_id=earlier_version_id),
        kind=kind,
        relation__in=COMPARABLE,
    ).values_list("mapping__from_version_id", "from_code", "to_code")
    return {
        (b if start == earlier_version_id else a): (a if start == earlier_version_id else b)
        for start, a, b in rows
    }


@dataclass(frozen=True)
class Links:
    """Every comparable pair of every mapping of one kind: ``pairs[(from, to)][to_code]``
    is the from_code. ``stamp`` changes whenever a mapping does."""

    pairs: dict[tuple[int, int], dict[str, str]]
    stamp: str

    def earlier_code(self, *, earlier: int, later: int, code: str) -> str | None:
        """The code of the earlier version compared with ``code`` of the later one, or
        None when nothing is (no mapping, or no equivalent)."""
        if earlier == later:
            return code
        if (earlier, later) in self.pairs:
            return self.pairs[earlier, later].get(code)
        backwards = self.pairs.get((later, earlier), {})
        return next((b for b, a in backwards.items() if a == code), None)


LINKS_KEY = "surveys:series-links:{kind}"
LINKS_SECONDS = 24 * 3600


def series_links(kind: str = Kind.INDICATOR) -> Links:
    """``Links`` of every mapping, from the cache (forgotten whenever a mapping changes)."""
    return cache.get_or_set(
        LINKS_KEY.format(kind=kind), lambda: read_links(kind), timeout=LINKS_SECONDS
    )


def cached_links(kind: str = Kind.INDICATOR) -> Links | None:
    """``series_links`` if the cache has them, else None (no query)."""
    return cache.get(LINKS_KEY.format(kind=kind))


def neighbours(code: str, links: Links) -> set[str]:
    """The code and the codes one mapping row links to it, either way."""
    found = {code}
    for pairs in links.pairs.values():
        for later, earlier in pairs.items():
            if later == code:
                found.add(earlier)
            if earlier == code:
                found.add(later)
    return found


def read_links(kind: str) -> Links:
    pairs: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    rows = (
        VersionMappingRow.objects.filter(kind=kind, relation__in=COMPARABLE)
        .order_by("mapping_id", "from_code")
        .values_list("mapping__from_version_id", "mapping__to_version_id", "from_code", "to_code")
    )
    for a, b, from_code, to_code in rows:
        pairs[a, b][to_code] = from_code
    stamp = json.dumps(sorted((f"{a}:{b}", sorted(p.items())) for (a, b), p in pairs.items()))
    return Links(dict(pairs), hashlib.blake2b(stamp.encode(), digest_size=8).hexdigest())


def forget_links(*args: Any, **kwargs: Any) -> None:
    """Drop the cached links now and when the transaction commits (a signal receiver too):
    a reader between the two may have cached the rows as they were."""

    def forget() -> None:
        cache.delete_many([LINKS_KEY.format(kind=kind) for kind in Kind.values])

    forget()
    transaction.on_commit(forget)
