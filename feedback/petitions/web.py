"""Public petition pages: file a petition, look it up by tracking code, rate the answer.

Views parse the form, call ``feedback.petitions.services`` and render. Submitting is rate
limited per hashed client address, sharing the budget of the API (scope ``petition-submit``,
``config.abuse``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from config.abuse import HONEYPOT_FIELD, honeypot_filled
from config.errors import DomainError
from config.input_guard import checks_own_input, form_problems
from config.links import public_base_url
from config.pages import problem
from feedback import pages, steps
from feedback.agency_choice import AgencyChoice, agency_choice, needs_agency_step
from feedback.models import Petition, PetitionCategory
from feedback.petitions import selectors, services
from surveys.collation import in_vietnamese_order

FIELDS = [
    "category",
    "unit",
    "agency",
    "description",
    "address",
    "contact_name",
    "contact_email",
    "contact_phone",
]
RATINGS = [
    (1, pgettext_lazy("rating", "Very dissatisfied")),
    (2, pgettext_lazy("rating", "Dissatisfied")),
    (3, pgettext_lazy("rating", "Neutral")),
    (4, pgettext_lazy("rating", "Satisfied")),
    (5, pgettext_lazy("rating", "Very satisfied")),
]


@checks_own_input  # text that cannot be stored is reported beside its field, like any error
@require_http_methods(["GET", "POST"])
def petition_new(request: HttpRequest) -> HttpResponse:
    """The petition form; a valid one stores the petition and shows its tracking page."""
    units = selectors.current_units()
    chosen: dict[str, Any] = {name: "" for name in FIELDS}
    chosen["client_id"] = str(uuid.uuid4())
    chosen["contact_consent"] = False
    errors: dict[str, list[str]] = {}
    choice = agency_choice(units=units, unit_code="")
    step_note = ""
    if request.method == "POST":
        if honeypot_filled(request):
            return problem(
                request,
                title=_("Your petition was not sent"),
                message=_(
                    "The form had text in the field that must be left empty, so nothing was "
                    "saved. If you are a person, go back, clear the field labelled “Leave this "
                    "field empty” and send the form again."
                ),
                status=400,
            )
        chosen = {name: request.POST.get(name, "") for name in FIELDS}
        chosen["contact_consent"] = request.POST.get("contact_consent") == "yes"
        try:
            client_id = uuid.UUID(request.POST.get("client_id", ""))
        except ValueError:
            client_id = uuid.uuid4()
        chosen["client_id"] = str(client_id)
        choice = agency_choice(units=units, unit_code=chosen["unit"].strip())
        errors = form_problems(request)
        if not errors and needs_agency_step(
            choice,
            agency_code=chosen["agency"].strip(),
            agencies_of=request.POST.get("agencies_of", "").strip(),
        ):
            # Without script: the unit's agencies are listed now; nothing is stored yet.
            step_note = _(
                "Choose the agency of %(unit)s, or leave it blank if you do not know, then "
                "press “Send” again."
            ) % {"unit": choice.listed[0].unit.name}
            return _petition_form(request, chosen, {}, choice, step_note)
        if refused := pages.refused_by_rate(request, "petition-submit"):
            return refused
        data = {k: v for k, v in chosen.items() if k != "client_id"}
        try:
            if errors:
                raise ValidationError(errors)
            petition, _created = services.submit_petition(
                data=services.PetitionInput(**data),
                channel=Petition.Channel.WEB,
                client_id=client_id,
                link_base=public_base_url(request),
            )
        except ValidationError as invalid:
            errors = invalid.message_dict
        except DomainError as refused:
            return problem(
                request, title=_("Your petition was not sent"), message=refused.detail, status=409
            )
        else:
            url = reverse("feedback:petition_track", kwargs={"code": petition.tracking_code})
            return redirect(f"{url}?new=1")
    return _petition_form(request, chosen, errors, choice, step_note)


def _petition_form(
    request: HttpRequest,
    chosen: dict[str, Any],
    errors: dict[str, list[str]],
    choice: AgencyChoice,
    step_note: str,
) -> HttpResponse:
    return render(
        request,
        "feedback/petitions/new.html",
        {
            "categories": PetitionCategory.objects.filter(is_active=True),
            "units": in_vietnamese_order(selectors.current_units(), "name"),
            "agency_choice": choice,
            "step_note": step_note,
            "chosen": chosen,
            "errors": errors,
            "summary": steps.error_summary(errors),
            "honeypot": HONEYPOT_FIELD,
            "max_chars": settings.PETITION_MAX_DESCRIPTION_CHARS,
        },
        status=400 if errors else 200,
    )


@require_GET
def petition_lookup(request: HttpRequest) -> HttpResponse:
    """A box for the tracking code; a known code goes to its page."""
    code = request.GET.get("code", "").strip()
    error = ""
    if code:
        petition = selectors.petition_by_code(code)
        if petition is not None:
            return redirect("feedback:petition_track", code=petition.tracking_code)
        error = _("No petition has this tracking code. Check it and try again.")
    return render(
        request,
        "feedback/petitions/lookup.html",
        {"code": code, "error": error},
        status=404 if error else 200,
    )


@require_http_methods(["GET", "POST"])
def petition_track(request: HttpRequest, code: str) -> HttpResponse:
    """Status, history and public reply of one petition; the rating form once answered."""
    petition = selectors.petition_by_code(code)
    if petition is None:
        return render(
            request,
            "feedback/petitions/lookup.html",
            {"code": code, "error": _("No petition has this tracking code.")},
            status=404,
        )
    rating_error = ""
    if request.method == "POST":
        if honeypot_filled(request):
            rating_error = _("The field that must be left empty had text: nothing was saved.")
        else:
            try:
                rating = int(request.POST.get("rating", ""))
            except ValueError:
                rating = 0
            try:
                services.rate_petition(tracking_code=petition.tracking_code, rating=rating)
            except ValidationError as problem:
                rating_error = " ".join(problem.messages)
            except DomainError as problem:
                rating_error = problem.detail
            else:
                url = reverse("feedback:petition_track", kwargs={"code": petition.tracking_code})
                return redirect(f"{url}?rated=1")
    history = list(petition.events.values_list("status", "at"))
    labels = dict(Petition.Status.choices)
    return render(
        request,
        "feedback/petitions/track.html",
        {
            "petition": petition,
            "history": [(labels[s], at) for s, at in history],
            "is_new": request.GET.get("new") == "1",
            "is_rated": request.GET.get("rated") == "1",
            "can_rate": petition.is_closed and petition.rating is None,
            "ratings": RATINGS,
            "rating_error": rating_error,
            "honeypot": HONEYPOT_FIELD,
        },
        status=400 if rating_error else 200,
    )
