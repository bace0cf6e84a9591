"""GeoReport v2 endpoints: services (categories), service definitions, requests (petitions).

Plain Django views, outside the REST API's OpenAPI schema: they follow the GeoReport v2
specification instead. ``jurisdiction_id`` is the code of a province or city; a request is
created with a form-encoded POST whose ``api_key`` is a REST API token of an account with
the permission ``feedback.submit_petitions``. Contact details are never returned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.authtoken.models import Token

from config.abuse import allow_submission, body_within_limit
from config.errors import DomainError
from config.input_guard import checks_own_input, form_problems, query_problems
from config.links import public_base_url
from feedback.models import CLOSED_STATUSES, OPEN_STATUSES, Petition, PetitionCategory
from feedback.open311.render import errors, render
from feedback.petitions import services
from surveys.models import Agency, Unit, localized

SUBMIT = "feedback.submit_petitions"
DEFAULT_DAYS = 90
# Our field names → the GeoReport v2 parameter a client sent.
PARAMETERS = {
    "category": "service_code",
    "unit": "jurisdiction_id",
    "agency": "attribute[agency]",
    "address": "address_string",
    "contact_name": "first_name",
    "contact_email": "email",
    "contact_phone": "phone",
}


def _clean_text(value: str) -> str:
    return value.strip()


def _messages(problems: dict[str, list[str]]) -> list[str]:
    """GeoReport error messages naming each parameter holding text that cannot be stored."""
    return [f"{name}: {message}" for name, messages in problems.items() for message in messages]


def _checked(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Refuse a query string the database cannot store (400, GeoReport's format); such a
    form is refused by ``_create``, after the size of its body is checked."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if problems := query_problems(request):
            return errors(_messages(problems), fmt=kwargs.get("fmt", "json"), status=400)
        return view(request, *args, **kwargs)

    return checks_own_input(checked)


def _jurisdiction(request: HttpRequest) -> tuple[Unit | None, str]:
    code = _clean_text(
        request.GET.get("jurisdiction_id", "") or request.POST.get("jurisdiction_id", "")
    )
    if not code:
        return None, ""
    return Unit.objects.filter(code=code).first(), code


def _service(category: PetitionCategory) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": localized(category, "name"),
        "description": localized(category, "description"),
        "metadata": True,
        "type": "realtime",
        "keywords": category.keywords,
        "group": category.group,
    }


@_checked
@require_GET
def service_list(request: HttpRequest, fmt: str) -> HttpResponse:
    """GET Service List: the petition categories open for new petitions."""
    unit, code = _jurisdiction(request)
    if code and unit is None:
        return errors([f"jurisdiction_id {code} not found"], fmt=fmt, status=404)
    categories = PetitionCategory.objects.filter(is_active=True)
    return render([_service(c) for c in categories], fmt=fmt, root="services")


@_checked
@require_GET
def service_definition(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    """GET Service Definition: the optional ``agency`` attribute, listing the jurisdiction's
    agencies when ``jurisdiction_id`` is given."""
    category = PetitionCategory.objects.filter(code=_clean_text(code), is_active=True).first()
    if category is None:
        return errors([f"service_code {code} not found"], fmt=fmt, status=404)
    unit, jurisdiction = _jurisdiction(request)
    if jurisdiction and unit is None:
        return errors([f"jurisdiction_id {jurisdiction} not found"], fmt=fmt, status=404)
    attribute: dict[str, Any] = {
        "variable": True,
        "code": "agency",
        "datatype": "string",
        "required": False,
        "datatype_description": (
            "Code of an agency of the jurisdiction (unique in the country, e.g. 01-TTPVHCC), "
            "if known; an agency of another jurisdiction is refused."
        ),
        "order": 1,
        "description": "Agency that should handle the request (optional).",
    }
    if unit is not None:
        agencies = Agency.objects.filter(unit=unit).order_by("code")
        attribute["datatype"] = "singlevaluelist"
        attribute["values"] = [{"key": a.code, "name": localized(a, "name")} for a in agencies]
    body = {"service_code": category.code, "attributes": [attribute]}
    return render(body, fmt=fmt, root="service_definition")


def _when(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


def _request(petition: Petition) -> dict[str, Any]:
    """One petition in GeoReport v2 fields; never the contact details."""
    zone = timezone.get_current_timezone()
    closed = petition.status in CLOSED_STATUSES
    body = {
        "service_request_id": str(petition.pk),
        "status": "closed" if closed else "open",
        "status_notes": petition.rejection_reason or petition.reply,
        "service_name": localized(petition.category, "name"),
        "service_code": petition.category.code,
        "description": petition.description if settings.OPEN311_PUBLIC_DESCRIPTIONS else "",
        "agency_responsible": (
            localized(petition.agency, "name") if petition.agency else petition.unit.name
        ),
        "service_notice": "",
        "requested_datetime": _when(petition.submitted_at),
        "updated_datetime": _when(petition.updated_at),
        "expected_datetime": _when(datetime.combine(petition.deadline, time(23, 59, 59), zone)),
        "address": petition.address,
        "address_id": "",
        "zipcode": "",
        "lat": float(petition.lat) if petition.lat is not None else None,
        "long": float(petition.long) if petition.long is not None else None,
        "media_url": "",
    }
    return body


def _public() -> QuerySet[Petition]:
    return Petition.objects.select_related("category", "unit", "agency")


def _moment(raw: str, *, name: str) -> datetime:
    problem = f"{name} must be a W3C datetime such as 2026-01-01T00:00:00Z"
    try:
        value = parse_datetime(raw)
        if value is None:
            day = parse_date(raw)
            if day is None:
                raise ValueError(problem)
            value = datetime.combine(day, time.min)
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        value.astimezone(UTC)  # a moment of year 1 or 9999 may fall outside the calendar in UTC
    except (ValueError, OverflowError):
        raise ValueError(problem) from None
    return value


def _listed(values: str) -> list[str]:
    return [v.strip() for v in _clean_text(values).split(",") if v.strip()]


def _filtered(request: HttpRequest, unit: Unit | None) -> QuerySet[Petition]:
    """The petitions matching the GET Service Requests filters; ValueError names a bad one."""
    query = request.GET
    petitions = _public()
    if unit is not None:
        petitions = petitions.filter(unit=unit)
    if ids := _listed(query.get("service_request_id", "")):
        if not all(i.isascii() and i.isdigit() and len(i) < 19 for i in ids):
            raise ValueError("service_request_id must be numbers separated by commas")
        return petitions.filter(pk__in=[int(i) for i in ids])  # overrides the other filters
    if codes := _listed(query.get("service_code", "")):
        petitions = petitions.filter(category__code__in=codes)
    if statuses := _listed(query.get("status", "")):
        if unknown := set(statuses) - {"open", "closed"}:
            raise ValueError(f"status must be open or closed, not {', '.join(sorted(unknown))}")
        wanted = [*OPEN_STATUSES] if "open" in statuses else []
        wanted += [*CLOSED_STATUSES] if "closed" in statuses else []
        petitions = petitions.filter(status__in=wanted)
    start_raw, end_raw = query.get("start_date", ""), query.get("end_date", "")
    start = _moment(start_raw, name="start_date") if start_raw else None
    end = _moment(end_raw, name="end_date") if end_raw else None
    if start is None and end is None:
        start = timezone.now() - timedelta(days=DEFAULT_DAYS)
    if start is not None:
        petitions = petitions.filter(submitted_at__gte=start)
    if end is not None:
        petitions = petitions.filter(submitted_at__lte=end)
    return petitions


@_checked
@csrf_exempt
@require_http_methods(["GET", "POST"])
def request_list(request: HttpRequest, fmt: str) -> HttpResponse:
    """GET Service Requests (with the specification's filters) and POST Service Request."""
    if request.method == "POST":
        return _create(request, fmt)
    unit, code = _jurisdiction(request)
    if code and unit is None:
        return errors([f"jurisdiction_id {code} not found"], fmt=fmt, status=404)
    try:
        petitions = _filtered(request, unit)
    except ValueError as problem:
        return errors([str(problem)], fmt=fmt, status=400)
    petitions = petitions.order_by("-submitted_at", "-pk")[: settings.OPEN311_MAX_REQUESTS]
    return render([_request(p) for p in petitions], fmt=fmt, root="service_requests")


@_checked
@require_GET
def request_detail(request: HttpRequest, pk: str, fmt: str) -> HttpResponse:
    """GET Service Request: one petition, as a list of one (as the specification has it)."""
    petition = _public().filter(pk=int(pk)).first() if len(pk) < 19 else None
    if petition is None:
        return errors([f"service_request_id {pk} not found"], fmt=fmt, status=404)
    return render([_request(petition)], fmt=fmt, root="service_requests")


def _key_holder(request: HttpRequest) -> Any:
    key = _clean_text(request.POST.get("api_key", ""))
    token = Token.objects.select_related("user").filter(key=key).first() if key else None
    if token is None or not token.user.is_active or not token.user.has_perm(SUBMIT):
        return None
    return token.user


def _decimal(raw: str, name: str) -> Decimal | None:
    raw = _clean_text(raw)
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} must be a number") from None
    if not value.is_finite():
        raise ValueError(f"{name} must be a number")
    try:
        return value.quantize(Decimal("0.000001"))
    except InvalidOperation:  # more digits than a Decimal holds: far out of range anyway
        raise ValueError(f"{name} is out of range") from None


def _create(request: HttpRequest, fmt: str) -> HttpResponse:
    if not body_within_limit(request, settings.FEEDBACK_MAX_BODY_BYTES):
        return errors(["request body too large"], fmt=fmt, status=413)
    if problems := form_problems(request):
        return errors(_messages(problems), fmt=fmt, status=400)
    user = _key_holder(request)
    if user is None:
        return errors(["api_key missing or not valid"], fmt=fmt, status=403)
    if not allow_submission(request, "open311-submit", user=user):
        return errors(["too many requests; try again later"], fmt=fmt, status=429)
    post = request.POST
    try:
        lat, long = _decimal(post.get("lat", ""), "lat"), _decimal(post.get("long", ""), "long")
    except ValueError as problem:
        return errors([str(problem)], fmt=fmt, status=400)
    missing = [name for name in ("service_code", "jurisdiction_id") if not post.get(name)]
    if missing:
        return errors([f"{name} is required" for name in missing], fmt=fmt, status=400)
    name = " ".join(_clean_text(post.get(k, "")) for k in ("first_name", "last_name")).strip()
    contact = {
        "contact_name": name,
        "contact_email": _clean_text(post.get("email", "")),
        "contact_phone": _clean_text(post.get("phone", "")),
    }
    data = services.PetitionInput(
        category=_clean_text(post.get("service_code", "")),
        unit=_clean_text(post.get("jurisdiction_id", "")),
        agency=_clean_text(post.get("attribute[agency]", "")),
        description=_clean_text(post.get("description", "")),
        address=_clean_text(post.get("address_string", "")),
        lat=lat,
        long=long,
        # The client's app collected the contact details to be passed on with the request.
        contact_consent=any(contact.values()),
        **contact,
    )
    try:
        petition, _created = services.submit_petition(
            data=data,
            channel=Petition.Channel.OPEN311,
            submitted_by=user,
            link_base=public_base_url(request),
        )
    except ValidationError as problem:
        messages = [
            f"{PARAMETERS.get(field, field)}: {message}"
            for field, field_messages in problem.message_dict.items()
            for message in field_messages
        ]
        return errors(messages, fmt=fmt, status=400)
    except DomainError as problem:
        return errors([problem.detail], fmt=fmt, status=problem.status_code)
    body = [
        {
            "service_request_id": str(petition.pk),
            "service_notice": f"Tracking code for the citizen: {petition.tracking_code}",
            "account_id": None,
        }
    ]
    return render(body, fmt=fmt, root="service_requests")
