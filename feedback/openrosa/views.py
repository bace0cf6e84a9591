"""The OpenRosa endpoints ODK Collect and Enketo speak, under ``/openrosa/``.

* ``GET formList``: the forms of the rounds open for collection (open now, with an open
  link: an ODK client carries no invitation), for an account that may submit on behalf
  of citizens (``feedback.submit_on_behalf``).
* ``GET forms/<round code>/form.xml``: the round's XForm (``feedback.openrosa.xform``).
* ``HEAD submission``: 204 with ``X-OpenRosa-Accept-Content-Length``, the most a client
  may send in one request (ODK Collect splits larger submissions).
* ``POST submission``: multipart, ``xml_submission_file`` and any attachments. The
  instance goes through ``feedback.services.submit_response``, the path of every channel
  (channel ``odk``, the account recorded); its ``meta/instanceID`` is the idempotency key:
  sent again, nothing new is stored and the answer is 202 (attachments not yet stored,
  as ODK Collect sends them in several requests for a large submission, are added);
  the same ID with other content is a 409. Stored: 201.

Every answer is OpenRosa: ``X-OpenRosa-Version: 1.0``, and an ``OpenRosaResponse``
document whose ``message`` says what happened, naming the question or field at fault
(400), the round (403 closed, 404 unknown) or the file (413 too large). The account
authenticates with HTTP Basic or Digest (``feedback.openrosa.auth``), never with a session
cookie, so these views need no CSRF token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFilesSent,
    ValidationError,
)
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from config.input_guard import checks_own_input, printable, text_problem
from config.links import public_base_url
from feedback import services
from feedback.errors import AnswersInvalid, ClientIdConflict, RoundClosed
from feedback.models import Response, ResponseAttachment
from feedback.openrosa import auth
from feedback.openrosa.xform import (
    AGENCY,
    PSU,
    UNIT,
    InstanceInvalid,
    instance_form_id,
    parse_instance,
    read_instance,
    round_for_instance,
    round_form,
)
from surveys.models import Round

SUBMIT_PERMISSION = "feedback.submit_on_behalf"
XML_FIELD = "xml_submission_file"
FORM_FIELDS = {"unit": UNIT, "agency": AGENCY, "psu": PSU}
OPENROSA_HEADERS = {"X-OpenRosa-Version": "1.0"}


def openrosa_message(status: int, message: str, *, nature: str = "") -> HttpResponse:
    nature = nature or ("submit_success" if status < 300 else "error")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OpenRosaResponse xmlns="http://openrosa.org/http/response">'
        f'<message nature="{nature}">{escape(printable(message))}</message>'
        "</OpenRosaResponse>"
    )
    response = HttpResponse(body, status=status, content_type="text/xml; charset=utf-8")
    response["X-OpenRosa-Version"] = "1.0"
    return response


def _unauthorized(*, stale: bool = False) -> HttpResponse:
    response = auth.ChallengeResponse(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OpenRosaResponse xmlns="http://openrosa.org/http/response">'
        f'<message nature="error">{escape(_("Sign in with your ODK account."))}</message>'
        "</OpenRosaResponse>",
        status=401,
        content_type="text/xml; charset=utf-8",
    )
    response["X-OpenRosa-Version"] = "1.0"
    return auth.attach_challenge(response, stale=stale)


def openrosa_view(methods: tuple[str, ...]) -> Callable[..., Any]:
    """Allowed methods, HTTP authentication and the submit-on-behalf permission."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @checks_own_input
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = openrosa_message(405, _("Method not allowed."))
                response["Allow"] = ", ".join(methods)
                return response
            outcome = auth.authenticate(request)
            if outcome.user is None:
                return _unauthorized(stale=outcome.stale)
            if not outcome.user.has_perm(SUBMIT_PERMISSION):
                return openrosa_message(
                    403,
                    _(
                        "This account may not submit responses: it needs the permission "
                        "“Can submit responses on behalf of citizens”."
                    ),
                )
            request.openrosa_user = outcome.user  # type: ignore[attr-defined]
            response = view(request, *args, **kwargs)
            response["X-OpenRosa-Version"] = "1.0"
            return response

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorate


def collecting_rounds(now: Any = None) -> list[Round]:
    """Rounds an ODK client can submit to now: open, answerable without an invitation."""
    now = now or timezone.now()
    return list(
        Round.objects.filter(opens_at__lte=now, closes_at__gt=now, allow_open_link=True)
        .select_related("version", "version__questionnaire")
        .order_by("code")
    )


@openrosa_view(("GET", "HEAD"))
def form_list(request: HttpRequest) -> HttpResponse:
    """The OpenRosa form list (``xformsList``) of the rounds open for collection."""
    base = public_base_url(request)
    items = []
    for survey_round in collecting_rounds():
        form = round_form(survey_round)
        url = base + reverse("openrosa:form", kwargs={"code": survey_round.code})
        items.append(
            "<xform>"
            f"<formID>{escape(survey_round.code)}</formID>"
            f"<name>{escape(str(survey_round))}</name>"
            f"<version>{escape(form.version)}</version>"
            f"<hash>md5:{form.md5}</hash>"
            f"<downloadUrl>{escape(url)}</downloadUrl>"
            "</xform>"
        )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xforms xmlns="http://openrosa.org/xforms/xformsList">' + "".join(items) + "</xforms>"
    )
    return HttpResponse(body, content_type="text/xml; charset=utf-8")


@openrosa_view(("GET", "HEAD"))
def form_xml(request: HttpRequest, code: str) -> HttpResponse:
    """The XForm of a round open for collection."""
    survey_round = next((r for r in collecting_rounds() if r.code == code), None)
    if survey_round is None:
        return openrosa_message(
            404, _("No survey round %(code)s is open for collection.") % {"code": code}
        )
    form = round_form(survey_round)
    response = HttpResponse(form.xml, content_type="text/xml; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="form.xml"'
    return response


def _too_large(what: str, limit: int) -> HttpResponse:
    return openrosa_message(
        413,
        _("%(what)s is larger than %(limit)d bytes.") % {"what": what, "limit": limit},
    )


@openrosa_view(("HEAD", "POST"))
def submission(request: HttpRequest) -> HttpResponse:
    """Receive one instance (and its attachments); see the module docstring."""
    request_limit = settings.OPENROSA_MAX_REQUEST_BYTES
    if request.method == "HEAD":
        response = HttpResponse(status=204)
        response["X-OpenRosa-Accept-Content-Length"] = str(request_limit)
        return response
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > request_limit:
        return _too_large(_("The request"), request_limit)
    try:
        files = request.FILES
    except (RequestDataTooBig, TooManyFilesSent):
        return _too_large(_("The request"), request_limit)
    except (MultiPartParserError, SuspiciousOperation):
        return openrosa_message(400, _("The request is not a valid multipart form."))
    xml_file = files.get(XML_FIELD)
    if xml_file is None:
        return openrosa_message(
            400, _("%(field)s: the instance file is missing.") % {"field": XML_FIELD}
        )
    if xml_file.size > settings.FEEDBACK_MAX_BODY_BYTES:
        return _too_large(XML_FIELD, settings.FEEDBACK_MAX_BODY_BYTES)

    attachments: dict[str, Any] = {}
    file_limit = settings.OPENROSA_MAX_ATTACHMENT_BYTES
    for field_name, uploads in files.lists():
        if field_name == XML_FIELD:
            continue
        for upload in uploads:
            name = upload.name or field_name
            if problem := text_problem(name):
                return openrosa_message(400, f"{printable(name)}: {problem}")
            if len(name) > 255:
                return openrosa_message(
                    400, _("%(name)s: the file name is too long.") % {"name": name[:40] + "…"}
                )
            if upload.size > file_limit:
                return _too_large(name, file_limit)
            attachments.setdefault(name, upload)

    try:
        root = parse_instance(xml_file.read())
        survey_round = round_for_instance(instance_form_id(root))
        if survey_round is None:
            return openrosa_message(
                404,
                _("No survey round %(code)s: the form is not one of this server.")
                % {"code": printable(instance_form_id(root))},
            )
        if not survey_round.allow_open_link:
            return openrosa_message(
                403,
                _("The survey round %(round)s can only be answered with an invitation.")
                % {"round": survey_round.code},
            )
        instance = read_instance(root, round_form(survey_round))
    except InstanceInvalid as problem:
        return openrosa_message(400, f"{problem.field}: {problem.message}")

    user = request.openrosa_user  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            result = services.submit_response(
                round_code=survey_round.code,
                unit_code=instance.unit,
                agency_code=instance.agency,
                psu=instance.psu,
                answers=instance.answers,
                client_id=instance.client_id,
                channel=Response.Channel.ODK,
                account_id=user.pk,
            )
            added = store_attachments(result.response, attachments)
    except AnswersInvalid as invalid:
        return openrosa_message(400, _lines(invalid.errors))
    except ClientIdConflict:
        return openrosa_message(
            409,
            _(
                "meta/instanceID: an instance with this ID and other content was already "
                "received; the stored one is kept."
            ),
        )
    except RoundClosed as closed:
        return openrosa_message(403, str(closed.detail))
    except ValidationError as invalid:
        errors = invalid.message_dict if hasattr(invalid, "error_dict") else {"": invalid.messages}
        return openrosa_message(
            400, _lines({FORM_FIELDS.get(name, name): msgs for name, msgs in errors.items()})
        )
    receipt = result.response.receipt
    if result.created:
        return openrosa_message(201, _("Received. Receipt %(receipt)s.") % {"receipt": receipt})
    message = _("Already received (receipt %(receipt)s).") % {"receipt": receipt}
    if added:
        message += " " + _("%(count)d attachment(s) added.") % {"count": added}
    return openrosa_message(202, message)


def _lines(errors: dict[str, list[str]]) -> str:
    """One line per field or question: ``CODE: message``, unless the message names it."""
    lines = []
    for name, messages in errors.items():
        for message in messages:
            lines.append(message if not name or message.startswith(name) else f"{name}: {message}")
    return "\n".join(lines)


def store_attachments(response: Response, attachments: dict[str, Any]) -> int:
    """Store the files not yet stored with the response (by name); how many were added."""
    if not attachments:
        return 0
    stored = set(
        ResponseAttachment.objects.filter(
            response=response, name__in=list(attachments)
        ).values_list("name", flat=True)
    )
    new = []
    for name, upload in attachments.items():
        if name in stored:
            continue
        upload.seek(0)
        content = upload.read()
        new.append(
            ResponseAttachment(
                response=response,
                name=name,
                content_type=""
                if text_problem(upload.content_type or "")
                else (upload.content_type or "")[:100],
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content=content,
            )
        )
    ResponseAttachment.objects.bulk_create(new)
    return len(new)
