"""Errors of the petition services, with stable codes for API clients."""

from __future__ import annotations

from django.utils.translation import gettext as _

from config.errors import DomainError


class PetitionNotFound(DomainError):
    """No petition with this code or id, or none the caller may see (the same answer)."""

    status_code = 404
    code = "petition_not_found"

    def __init__(self) -> None:
        super().__init__(_("No petition has this tracking code or number."))


class TransitionNotAllowed(DomainError):
    status_code = 409
    code = "transition_not_allowed"

    def __init__(self, current: str, target: str) -> None:
        detail = _("A petition that is “%(current)s” cannot become “%(target)s”.") % {
            "current": current,
            "target": target,
        }
        super().__init__(detail, fields={"status": [detail]})


class RoutingNotAllowed(DomainError):
    status_code = 403
    code = "routing_not_allowed"

    def __init__(self) -> None:
        detail = _("Only the unit's coordinators can send a petition to another agency.")
        super().__init__(detail, fields={"agency": [detail]})


class RatingNotAllowed(DomainError):
    status_code = 409
    code = "rating_not_allowed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, fields={"rating": [detail]})
