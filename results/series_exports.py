"""The cross-round export: raw responses of several rounds of one questionnaire in one CSV
with harmonized columns (docs/series.md).

The columns are the question codes of the latest version among the rounds (the highest
number); a response given on another version fills a column through the mapping between its
version and the latest one (``surveys.mapping.correspondence``, ``same`` or ``reworded``
rows); a column without equivalent stays empty for it. The ``round`` and ``version`` columns
say where each row comes from. Rows stream round by round (oldest first), responses by id,
over server-side cursors: memory does not grow with the rounds. Personal data is never
exported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from feedback.models import Response
from results.exports import RESPONSE_FIELDS, RESPONSE_HEADER, responses_with_cells
from surveys.mapping import correspondence
from surveys.models import (
    Question,
    Questionnaire,
    QuestionnaireVersion,
    Round,
    VersionMappingRow,
    code_validator,
)

MAX_ROUNDS = 50
HEADER = [*RESPONSE_HEADER[:2], "version", *RESPONSE_HEADER[2:]]  # id, round, version, …


def rounds_of(
    questionnaire: Questionnaire, text: str, *, among: QuerySet[Round] | None = None
) -> list[Round]:
    """The rounds ``a,b,…`` of the questionnaire, oldest first; ValidationError naming
    ``rounds`` for an empty list, an unknown code or a round of another questionnaire.
    ``among`` limits the rounds that exist (a province's staff: their own rounds)."""
    codes = list(dict.fromkeys(code.strip() for code in text.split(",") if code.strip()))
    if not codes:
        raise ValidationError({"rounds": [_("Name at least one round: rounds=a,b.")]})
    if len(codes) > MAX_ROUNDS:
        raise ValidationError(
            {"rounds": [_("At most %(n)d rounds in one file.") % {"n": MAX_ROUNDS}]}
        )
    valid = []
    for code in codes:
        try:
            code_validator(code)
        except ValidationError:
            continue
        if len(code) <= Round._meta.get_field("code").max_length:
            valid.append(code)
    rounds = Round.objects.all() if among is None else among
    found = {r.code: r for r in rounds.filter(code__in=valid).select_related("version")}
    unknown = [code for code in codes if code not in found]
    if unknown:
        raise ValidationError(
            {"rounds": [_("Unknown rounds: %(codes)s.") % {"codes": ", ".join(unknown)[:500]}]}
        )
    foreign = [c for c, r in found.items() if r.version.questionnaire_id != questionnaire.pk]
    if foreign:
        raise ValidationError(
            {
                "rounds": [
                    _("Not rounds of questionnaire %(code)s: %(codes)s.")
                    % {"code": questionnaire.code, "codes": ", ".join(foreign)}
                ]
            }
        )
    return sorted(found.values(), key=lambda r: (r.opens_at, r.code))


def harmonized_columns(
    rounds: Sequence[Round],
) -> tuple[QuestionnaireVersion, list[str], dict[int, int], dict[int, int]]:
    """The latest version, its question codes (the columns), each question id of any
    version in play → its column, and each version id → its number."""
    version_ids = {r.version_id for r in rounds} | set(
        Response.objects.filter(round__in=rounds)
        .order_by()
        .values_list("version_id", flat=True)
        .distinct()
    )
    versions = {v.pk: v for v in QuestionnaireVersion.objects.filter(pk__in=version_ids)}
    latest = max(
        (versions[r.version_id] for r in rounds), key=lambda v: v.number
    )  # the rounds' versions decide; responses of other versions are mapped to it
    questions = list(
        Question.objects.filter(version_id__in=versions, personal_data=False)
        .order_by("section__position", "position", "id")
        .values_list("id", "code", "version_id")
    )
    columns = [code for _pk, code, version in questions if version == latest.pk]
    index = {code: position for position, code in enumerate(columns)}
    by_id: dict[int, int] = {}
    linked: dict[int, dict[str, str] | None] = {}
    for pk, code, version in questions:
        if version not in linked:
            later_to_earlier = correspondence(
                earlier_version_id=version,
                later_version_id=latest.pk,
                kind=VersionMappingRow.Kind.QUESTION,
            )
            linked[version] = (
                None
                if later_to_earlier is None
                else {earlier: later for later, earlier in later_to_earlier.items()}
            )
        mapping = linked[version]
        target = code if mapping is None else mapping.get(code)
        if target is not None and target in index:
            by_id[pk] = index[target]
    numbers = {pk: v.number for pk, v in versions.items()}
    return latest, columns, by_id, numbers


def series_response_rows(rounds: Sequence[Round]) -> Iterator[list[Any]]:
    """The header, then one row per response of each round: its fields, then its answers in
    the latest version's columns."""
    _latest, columns, by_id, numbers = harmonized_columns(rounds)
    yield [*HEADER, *columns]
    fields = ("pk", "version_id", *RESPONSE_FIELDS[1:])
    for survey_round in rounds:
        rows = responses_with_cells(survey_round, fields, by_id, len(columns))
        for (pk, version_id, unit, submitted_at, *rest), cells in rows:
            yield [
                pk,
                survey_round.code,
                numbers.get(version_id),
                unit,
                timezone.localtime(submitted_at),
                *rest,
                *cells,
            ]
