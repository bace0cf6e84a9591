"""Errors of the feedback services, with stable codes for API clients."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from config.errors import DomainError


class AnswersInvalid(DomainError):
    """Some answers are missing or wrong; ``fields["answers"]`` maps question codes to messages."""

    status_code = 400
    code = "invalid_answers"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(_("Some answers are missing or not valid."), fields={"answers": errors})
        self.errors = errors


class ClientIdConflict(DomainError):
    status_code = 409
    code = "client_id_conflict"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, fields={"client_id": [detail]})


class RoundClosed(DomainError):
    status_code = 403
    code = "round_closed"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, fields={"round": [detail]})
