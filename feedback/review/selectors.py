"""Reads of the review of responses: what the next scoring run leaves out."""

from __future__ import annotations

from django.db.models import Count

from feedback.models import Response


def excluded_per_unit(*, round_id: int) -> dict[str, int]:
    """Unit code → responses of the round excluded by review (units with none left out);
    one query on the partial index ``response_excluded``."""
    rows = (
        Response.objects.filter(round_id=round_id, review_state=Response.ReviewState.EXCLUDED)
        .order_by()
        .values("unit__code")
        .annotate(n=Count("pk"))
        .values_list("unit__code", "n")
    )
    return dict(sorted(rows))
