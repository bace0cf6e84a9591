"""Invitations: generate single-use tokens for a round and unit, and export them as CSV.

Staff hand the links out by post or SMS; the page behind ``/i/<token>/`` lets the citizen
answer once (``services._claim_invitation`` marks the token used).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from feedback.models import Invitation, new_token
from feedback.services import design_field_problems, resolve_target

MAX_INVITATIONS = 10_000
CSV_COLUMNS = ["token", "link", "round", "unit", "agency", "batch", "psu", "stratum", "used"]
# Spreadsheets read a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@")


def invitation_link(token: str, *, base_url: str) -> str:
    """The public link of an invitation: ``/i/<token>/`` on ``base_url``
    (``config.links.public_base_url`` of the request exporting it)."""
    return f"{base_url.rstrip('/')}/i/{token}/"


def _spreadsheet_safe_token() -> str:
    # A token is typed or mail-merged from a spreadsheet: never let one start like a formula.
    while (token := new_token()).startswith(FORMULA_PREFIXES):
        pass
    return token


def generate_invitations(
    *,
    round_code: str,
    unit_code: str,
    count: int,
    agency_code: str = "",
    batch: str = "",
    psu: str = "",
    stratum: str = "",
) -> list[Invitation]:
    """Create ``count`` unused invitations to answer ``round_code`` for ``unit_code``.

    ``psu`` and ``stratum`` are the sample design of the batch (e.g. the village the
    households were drawn in): every response answered with one of these invitations
    takes them (``services.submit_response``).
    """
    if not 1 <= count <= MAX_INVITATIONS:
        raise ValidationError(
            {
                "count": [
                    _("Generate between 1 and %(max)d invitations at a time.")
                    % {"max": MAX_INVITATIONS}
                ]
            }
        )
    if batch.startswith(FORMULA_PREFIXES):
        raise ValidationError({"batch": [_("A batch label cannot start with =, +, - or @.")]})
    design_problems = design_field_problems(psu=psu, stratum=stratum)
    for name in ("psu", "stratum"):
        value = {"psu": psu, "stratum": stratum}[name]
        if name not in design_problems and value.startswith(FORMULA_PREFIXES):
            design_problems[name] = [_("This code cannot start with =, +, - or @.")]
    if design_problems:
        raise ValidationError(design_problems)
    survey_round, unit, agency = resolve_target(
        round_code=round_code, unit_code=unit_code, agency_code=agency_code
    )
    now = timezone.now()
    with transaction.atomic():
        return Invitation.objects.bulk_create(
            (
                Invitation(
                    round=survey_round,
                    unit=unit,
                    agency=agency,
                    token=_spreadsheet_safe_token(),
                    batch=batch,
                    psu=psu,
                    stratum=stratum,
                    created_at=now,
                )
                for _position in range(count)
            ),
            batch_size=1000,
        )


class _Line:
    """A file-like object whose ``write`` returns what it is given (for ``csv.writer``)."""

    def write(self, value: str) -> str:
        return value


def invitations_csv(queryset: QuerySet[Invitation], *, base_url: str) -> Iterator[str]:
    """The invitations as CSV lines, header first, streamed from the database; links start
    with ``base_url``."""
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_COLUMNS)
    rows = queryset.order_by("pk").values_list(
        "token", "round__code", "unit__code", "agency__code", "batch", "psu", "stratum", "used_at"
    )
    for token, round_code, unit_code, agency_code, batch, psu, stratum, used_at in rows.iterator(
        chunk_size=2000
    ):
        yield writer.writerow(
            [
                token,
                invitation_link(token, base_url=base_url),
                round_code,
                unit_code,
                agency_code or "",
                batch,
                psu,
                stratum,
                used_at.isoformat() if used_at else "",
            ]
        )
