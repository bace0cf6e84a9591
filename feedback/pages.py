"""The pages the public forms answer a connection that has sent too much with (429), on the
shared problem page (``config.pages``); used by the questionnaire and the petition form."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from config.abuse import allow_submission
from config.pages import problem

# What a connection that sent too much in the last hour is told, per throttle scope.
_TOO_MANY = {
    "response-submit": (
        _("Too many questionnaires from this connection"),
        _("Please wait an hour and start the questionnaire again."),
    ),
    "petition-submit": (
        _("Too many petitions from this connection"),
        _("Please wait an hour and send your petition again."),
    ),
}


def refused_by_rate(request: HttpRequest, scope: str) -> HttpResponse | None:
    """The 429 page if the connection's budget of ``scope`` is spent (``config.abuse``),
    else ``None``; a submission allowed counts against the budget."""
    if allow_submission(request, scope):
        return None
    title, message = _TOO_MANY[scope]
    return problem(request, title=str(title), message=str(message), status=429)
