"""Staff preview of any questionnaire version, draft included, exactly as citizens see it.

The preview renders the citizen's own section template (``feedback/section.html``) and walks
the same steps (``feedback.steps``): display conditions, required answers, Back, errors and
progress behave as on ``/rounds/<code>/``. It has no round and stores nothing: no response,
no draft. The answers given wait in the staff member's session between pages, and the final
"Send" shows the answers that would have been sent. The surveys admin links here by URL name
(``feedback:version_preview``), since the survey app may not import this one.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from config.input_guard import checks_own_input, form_problems
from config.pages import problem
from feedback import steps
from feedback.validation import clean_answers
from surveys import scoping
from surveys.models import Question, QuestionnaireVersion, Section
from surveys.selectors import version_sections

PREVIEW_PERMISSIONS = ("surveys.view_questionnaireversion", "surveys.change_questionnaireversion")


def _state_key(version: QuestionnaireVersion) -> str:
    return f"feedback.preview.{version.pk}"


def _render_section(
    request: HttpRequest, version: QuestionnaireVersion, *args: Any, notice: str = "", **kwargs: Any
) -> HttpResponse:
    """A section of the previewed version (``steps.render_section``'s arguments after it)."""
    return steps.render_section(
        request, "feedback/preview_section.html", *args, version=version, notice=notice, **kwargs
    )


def _answer_text(question: Question, value: Any) -> str:
    """An answer as the citizen chose it: choice labels, Yes or No, or the text given."""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    labels = {c.code: c.label for c in question.choices.all()}
    values = value if isinstance(value, list) else [value]
    return ", ".join(labels.get(str(v), str(v)) for v in values)


def _finish(
    request: HttpRequest,
    version: QuestionnaireVersion,
    sections: list[Section],
    answers: dict[str, Any],
) -> HttpResponse:
    """The final "Send": check every answer as a submit would, then show what would be sent."""
    questions = steps.all_questions(sections)
    cleaned, errors = clean_answers(questions, answers)
    if errors:
        first = steps.first_section_with(sections, errors)
        request.session[_state_key(version)] = {
            "answers": answers,
            "section": sections.index(first),
        }
        return _render_section(request, version, sections, first, answers, errors)
    request.session.pop(_state_key(version), None)
    sent = [(q, _answer_text(q, cleaned[q.code].value)) for q in questions if q.code in cleaned]
    return render(request, "feedback/preview_done.html", {"version": version, "sent": sent})


@checks_own_input  # an answer that cannot be stored is shown beside its question, as on the form
@staff_member_required
@require_http_methods(["GET", "POST"])
def version_preview(request: HttpRequest, version_id: int) -> HttpResponse:
    """One section of the version as citizens see it; ``?section=<code>`` opens that section."""
    # Province staff preview their province's versions and the national ones only.
    version = get_object_or_404(scoping.versions_for(request.user, shared=True), pk=version_id)
    if not any(request.user.has_perm(p) for p in PREVIEW_PERMISSIONS):
        raise PermissionDenied
    key = _state_key(version)
    if request.method == "POST" and request.POST.get("action") == "restart":
        request.session.pop(key, None)
        return redirect("feedback:version_preview", version_id=version.pk)

    sections = list(version_sections(version_id=version.pk))
    state = request.session.get(key) or {"answers": {}, "section": 0}
    answers = steps.known_answers(sections, state["answers"])
    index = state["section"]
    if request.method == "GET" and (code := request.GET.get("section")):
        index = steps.section_index(sections, code, index)
    section = steps.section_to_show(sections, answers, index)
    if section is None:
        return problem(
            request,
            title=_("Nothing to preview"),
            message=_("This questionnaire version has no questions yet."),
            status=200,
        )
    if request.method == "GET":
        return _render_section(request, version, sections, section, answers)

    step = steps.take_section(
        sections=sections,
        answers=answers,
        index=index,
        data=request.POST,
        unstorable=form_problems(request),
    )
    if step.keep:
        request.session[key] = {"answers": step.answers, "section": step.index}
    match step.outcome:
        case steps.Outcome.SHOW:
            return _render_section(
                request,
                version,
                sections,
                step.section,
                step.shown,
                step.errors,
                status=step.status,
            )
        case steps.Outcome.SAVED:
            notice = _(
                "Here citizens get a link to continue later. The preview saves nothing: its "
                "answers last until you start again."
            )
            return _render_section(
                request, version, sections, step.section, step.answers, notice=notice
            )
        case steps.Outcome.SEND:
            return _finish(request, version, sections, step.answers)
    return redirect("feedback:version_preview", version_id=version.pk)
