"""Public web form: choose a unit or follow an invitation, answer section by section,
save and resume, submit, and get a receipt. Views parse, call ``feedback.drafts.services``
and render.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from config.abuse import HONEYPOT_FIELD, honeypot_filled
from config.input_guard import checks_own_input, form_problems
from config.links import absolute_url
from config.pages import fixed, problem
from feedback import pages, steps
from feedback.agency_choice import agency_choice, needs_agency_step
from feedback.drafts import services as drafts
from feedback.errors import AnswersInvalid, ClientIdConflict, RoundClosed
from feedback.models import Invitation, Response, ResponseDraft
from surveys.collation import in_vietnamese_order
from surveys.models import Round, Section
from surveys.selectors import version_sections

# --- Friendly pages ----------------------------------------------------------------------


def _day(value: Any) -> str:
    return formats.date_format(timezone.localtime(value), "SHORT_DATE_FORMAT")


def _round_not_open(request: HttpRequest, survey_round: Round) -> HttpResponse:
    if timezone.now() < survey_round.opens_at:
        return problem(
            request,
            title=_("This survey round is not open yet"),
            message=_("It opens on %(day)s. Please come back then.")
            % {"day": _day(survey_round.opens_at)},
            status=403,
        )
    return problem(
        request,
        title=_("This survey round has closed"),
        message=_(
            "It closed on %(day)s, so it no longer accepts answers. Thank you for your interest."
        )
        % {"day": _day(survey_round.closes_at)},
        status=410,
    )


_honeypot_page = fixed(
    gettext_lazy("Your answers were not sent"),
    gettext_lazy(
        "The form had text in the field that must be left empty, so nothing was saved. "
        "If you are a person, go back, clear the field labelled “Leave this field empty” "
        "and send the form again."
    ),
    400,
)
_unknown_link = fixed(
    gettext_lazy("This link does not work"),
    gettext_lazy(
        "We cannot find a questionnaire for this link. Check that it was copied in full, "
        "or start again from the home page. If you already sent your answers, they are safe."
    ),
    404,
)
_invitation_only = fixed(
    gettext_lazy("This survey round is by invitation only"),
    gettext_lazy("Please use the personal link in the invitation you received."),
    403,
)
_invitation_used = fixed(
    gettext_lazy("This invitation has already been used"),
    gettext_lazy(
        "Answers were already sent with this invitation, and each invitation can be used "
        "once. Thank you for taking part."
    ),
    410,
)


# --- Starting ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def round_start(request: HttpRequest, code: str) -> HttpResponse:
    """Choose the province (and optionally the agency) to rate, then start a draft."""
    survey_round = Round.objects.select_related("version__questionnaire").filter(code=code).first()
    if survey_round is None:
        return _unknown_link(request)
    if not survey_round.is_open():
        return _round_not_open(request, survey_round)
    if not survey_round.allow_open_link:
        return _invitation_only(request)
    units = in_vietnamese_order(survey_round.units.all(), "name")
    chosen = {"unit": "", "agency": "", "agencies_of": ""}
    errors: dict[str, list[str]] = {}
    step_note = ""
    choice = agency_choice(units=units, unit_code="")
    if request.method == "POST":
        if honeypot_filled(request):
            return _honeypot_page(request)
        chosen = {k: request.POST.get(k, "").strip() for k in chosen}
        choice = agency_choice(units=units, unit_code=chosen["unit"])
        if needs_agency_step(
            choice, agency_code=chosen["agency"], agencies_of=chosen["agencies_of"]
        ):
            # Without script: the unit's agencies are listed now; nothing is started yet.
            step_note = _(
                "Choose the agency of %(unit)s you dealt with, or leave it blank to rate the "
                "province as a whole, then press “Start the questionnaire” again."
            ) % {"unit": choice.listed[0].unit.name}
        elif refused := pages.refused_by_rate(request, "response-submit"):
            return refused
        elif not chosen["unit"]:
            errors["unit"] = [_("Choose the province or city you want to rate.")]
        else:
            try:
                draft = drafts.start_draft(
                    round_code=code, unit_code=chosen["unit"], agency_code=chosen["agency"]
                )
            except RoundClosed:
                return _round_not_open(request, survey_round)
            except ValidationError as invalid:
                errors = invalid.message_dict
            else:
                return redirect("feedback:draft", token=draft.token)
    return render(
        request,
        "feedback/round_start.html",
        {
            "round": survey_round,
            "units": units,
            "agency_choice": choice,
            "step_note": step_note,
            "chosen": chosen,
            "errors": errors,
            # The round's errors are about the unit chosen: they link to its field.
            "summary": steps.error_summary(
                errors, lambda name: "id_agency" if name == "agency" else "id_unit"
            ),
            "honeypot": HONEYPOT_FIELD,
        },
    )


@require_http_methods(["GET", "POST"])
def invitation_start(request: HttpRequest, token: str) -> HttpResponse:
    """A personal invitation: start once; a used one gets a friendly page."""
    invitation = (
        Invitation.objects.select_related("round__version__questionnaire", "unit", "agency")
        .filter(token=token)
        .first()
    )
    if invitation is None:
        return _unknown_link(request)
    if invitation.is_used:
        return _invitation_used(request)
    if not invitation.round.is_open():
        return _round_not_open(request, invitation.round)
    if request.method == "POST":
        if honeypot_filled(request):
            return _honeypot_page(request)
        try:
            draft = drafts.start_draft(invitation_token=token)
        except RoundClosed:
            return _round_not_open(request, invitation.round)
        except ValidationError:
            return _invitation_used(request)
        return redirect("feedback:draft", token=draft.token)
    return render(
        request, "feedback/invitation.html", {"invitation": invitation, "honeypot": HONEYPOT_FIELD}
    )


# --- Answering ---------------------------------------------------------------------------


def _render_section(
    request: HttpRequest, draft: ResponseDraft, *args: Any, **kwargs: Any
) -> HttpResponse:
    """A section of the citizen's draft (``steps.render_section``'s arguments after it)."""
    return steps.render_section(request, "feedback/section.html", *args, draft=draft, **kwargs)


def _open_draft(request: HttpRequest, token: str) -> tuple[ResponseDraft | None, HttpResponse]:
    draft, expired = drafts.live_draft(token=token)
    if draft is None:
        return None, _unknown_link(request)
    if expired:
        hours = settings.FEEDBACK_DRAFT_TTL_HOURS
        return None, problem(
            request,
            title=_("This saved link has expired"),
            message=_(
                "Unfinished answers are kept for %(hours)s hours after the last save. "
                "Please start the questionnaire again from the home page."
            )
            % {"hours": hours},
            status=410,
        )
    return draft, HttpResponse()


@checks_own_input  # an answer that cannot be stored is shown beside its question, like any error
@require_http_methods(["GET", "POST"])
def draft_step(request: HttpRequest, token: str) -> HttpResponse:
    """One section of the questionnaire: show it, or take its answers and move on."""
    if request.method == "POST" and (receipt := drafts.receipt_of_submitted_draft(token=token)):
        # A repeated final submit (double click, reload): the first one already stored it.
        return redirect("feedback:thanks", receipt=receipt)
    draft, refusal = _open_draft(request, token)
    if draft is None:
        return refusal
    if request.method == "POST" and honeypot_filled(request):
        return _honeypot_page(request)
    if not draft.round.is_open():
        return _round_not_open(request, draft.round)

    sections = list(version_sections(version_id=draft.round.version_id))
    section = steps.section_to_show(sections, draft.answers, draft.section)
    if section is None:
        return _unknown_link(request)
    if request.method == "GET":
        return _render_section(request, draft, sections, section, draft.answers)

    step = steps.take_section(
        sections=sections,
        answers=draft.answers,
        index=draft.section,
        data=request.POST,
        unstorable=form_problems(request),
    )
    if step.keep:
        drafts.save_answers(draft=draft, answers=step.answers, section=step.index)
    match step.outcome:
        case steps.Outcome.SHOW:
            return _render_section(
                request, draft, sections, step.section, step.shown, step.errors, status=step.status
            )
        case steps.Outcome.SAVED:
            return redirect("feedback:draft_saved", token=draft.token)
        case steps.Outcome.SEND:
            return _submit(request, draft, sections, step.answers)
    return redirect("feedback:draft", token=draft.token)


def _submit(
    request: HttpRequest, draft: ResponseDraft, sections: list[Section], answers: dict[str, Any]
) -> HttpResponse:
    try:
        submission = drafts.submit_draft(draft=draft, answers=answers)
    except AnswersInvalid as invalid:
        # Something on an earlier page is missing: go back there and say what.
        first = steps.first_section_with(sections, invalid.errors)
        drafts.save_answers(draft=draft, answers=answers, section=sections.index(first))
        return _render_section(request, draft, sections, first, answers, invalid.errors)
    except RoundClosed:
        return _round_not_open(request, draft.round)
    except ClientIdConflict as conflict:
        return problem(
            request, title=_("Your answers were not sent"), message=conflict.detail, status=409
        )
    except ValidationError as invalid:
        if "token" in invalid.message_dict:
            return _invitation_used(request)
        messages = [m for ms in invalid.message_dict.values() for m in ms]
        return problem(
            request, title=_("Your answers were not sent"), message=" ".join(messages), status=400
        )
    return redirect("feedback:thanks", receipt=submission.response.receipt)


@require_GET
def draft_saved(request: HttpRequest, token: str) -> HttpResponse:
    """The resume link and until when it works."""
    draft, refusal = _open_draft(request, token)
    if draft is None:
        return refusal
    path = reverse("feedback:draft", kwargs={"token": draft.token})
    return render(
        request, "feedback/saved.html", {"draft": draft, "resume_url": absolute_url(request, path)}
    )


@require_GET
def thanks(request: HttpRequest, receipt: str) -> HttpResponse:
    """The receipt code of a stored response (never its answers)."""
    response = Response.objects.select_related("round").filter(receipt=receipt).first()
    if response is None:
        return _unknown_link(request)
    return render(request, "feedback/thanks.html", {"response": response})
