"""Base of domain errors: services raise these, the API renders them (``config.exceptions``).

Each error has an HTTP status, a stable ``code`` and optional field errors, so that views
stay thin and every channel reports the same problem the same way.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, detail: str, *, fields: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or {}
