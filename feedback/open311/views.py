"""GeoReport v2 endpoints: services (categories), service definitions, requests (petitions).

DRF views outside the REST API's OpenAPI schema: they follow the GeoReport v2 specification
instead. The URL's suffix picks JSON or XML (``renderers``), every error is in the
specification's format (``exceptions``). ``jurisdiction_id`` is the code of a province or
city; a request is created with a form-encoded POST whose ``api_key`` is a REST API token of
an account with the permission ``feedback.submit_petitions`` (``authentication``). Contact
details are never returned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from config.abuse import SubmissionThrottle, check_body_size
from config.input_guard import checks_own_input, query_problems
from config.links import public_base_url
from config.parsers import FormParser, MultiPartParser
from feedback.models import CLOSED_STATUSES, OPEN_STATUSES, Petition, PetitionCategory
from feedback.open311.authentication import ApiKeyAuthentication, CanSubmitPetitions
from feedback.open311.exceptions import exception_handler
from feedback.open311.renderers import (
    GeoReportJSONRenderer,
    GeoReportXMLRenderer,
    SuffixNegotiation,
)
from feedback.petitions import services
from surveys.models import Agency, Unit, localized

DEFAULT_DAYS = 90


class GeoReportView(APIView):
    """What every endpoint shares: JSON or XML by the URL's suffix, the specification's
    errors, no schema, and a query string the database cannot store refused (400)."""

    renderer_classes = [GeoReportJSONRenderer, GeoReportXMLRenderer]
    content_negotiation_class = SuffixNegotiation
    parser_classes = [FormParser, MultiPartParser]
    authentication_classes: list[type[Any]] = []
    permission_classes = [AllowAny]
    schema = None
    xml_root = ""  # the document's element in XML

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        # UnstorableInputMiddleware leaves the query string to the view: its 400 is Open311's.
        return checks_own_input(super().as_view(**initkwargs))

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # The suffix gives the format of an error raised here, before DRF's initial() runs.
        self.format_kwarg = self.get_format_suffix(**kwargs)
        if problems := query_problems(request):
            raise ValidationError(problems)
        if request.method == "POST" and hasattr(self, "post"):  # elsewhere a 405
            check_body_size(request)  # before the form is parsed for its api_key
        super().initial(request, *args, **kwargs)


def _jurisdiction(request: Request) -> Unit | None:
    """The unit of ``jurisdiction_id``, None without one; an unknown code is a 404."""
    code = request.query_params.get("jurisdiction_id", "").strip()
    if not code:
        return None
    unit = Unit.objects.filter(code=code).first()
    if unit is None:
        raise NotFound(f"jurisdiction_id {code} not found")
    return unit


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


class ServiceList(GeoReportView):
    """GET Service List: the petition categories open for new petitions."""

    xml_root = "services"

    def get(self, request: Request, format: str) -> Response:
        _jurisdiction(request)
        categories = PetitionCategory.objects.filter(is_active=True)
        return Response([_service(c) for c in categories])


class ServiceDefinition(GeoReportView):
    """GET Service Definition: the optional ``agency`` attribute, listing the jurisdiction's
    agencies when ``jurisdiction_id`` is given."""

    xml_root = "service_definition"

    def get(self, request: Request, code: str, format: str) -> Response:
        category = PetitionCategory.objects.filter(code=code.strip(), is_active=True).first()
        if category is None:
            raise NotFound(f"service_code {code} not found")
        unit = _jurisdiction(request)
        attribute: dict[str, Any] = {
            "variable": True,
            "code": "agency",
            "datatype": "string",
            "required": False,
            "datatype_description": (
                "Code of an agency of the jurisdiction (unique in the country, e.g. "
                "01-TTPVHCC), if known; an agency of another jurisdiction is refused."
            ),
            "order": 1,
            "description": "Agency that should handle the request (optional).",
        }
        if unit is not None:
            agencies = Agency.objects.filter(unit=unit).order_by("code")
            attribute["datatype"] = "singlevaluelist"
            attribute["values"] = [{"key": a.code, "name": localized(a, "name")} for a in agencies]
        return Response({"service_code": category.code, "attributes": [attribute]})


def _when(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


def _request(petition: Petition) -> dict[str, Any]:
    """One petition in GeoReport v2 fields; never the contact details."""
    zone = timezone.get_current_timezone()
    closed = petition.status in CLOSED_STATUSES
    return {
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
        raise ValidationError(problem) from None
    return value


def _listed(values: str) -> list[str]:
    return [v.strip() for v in values.strip().split(",") if v.strip()]


def _filtered(request: Request) -> QuerySet[Petition]:
    """The petitions matching the GET Service Requests filters; a bad one is a 400."""
    query = request.query_params
    petitions = _public()
    if (unit := _jurisdiction(request)) is not None:
        petitions = petitions.filter(unit=unit)
    if ids := _listed(query.get("service_request_id", "")):
        if not all(i.isascii() and i.isdigit() and len(i) < 19 for i in ids):
            raise ValidationError("service_request_id must be numbers separated by commas")
        return petitions.filter(pk__in=[int(i) for i in ids])  # overrides the other filters
    if codes := _listed(query.get("service_code", "")):
        petitions = petitions.filter(category__code__in=codes)
    if statuses := _listed(query.get("status", "")):
        if unknown := set(statuses) - {"open", "closed"}:
            raise ValidationError(
                f"status must be open or closed, not {', '.join(sorted(unknown))}"
            )
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


def _decimal(raw: str, name: str) -> Decimal | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValidationError(f"{name} must be a number") from None
    if not value.is_finite():
        raise ValidationError(f"{name} must be a number")
    try:
        return value.quantize(Decimal("0.000001"))
    except InvalidOperation:  # more digits than a Decimal holds: far out of range anyway
        raise ValidationError(f"{name} is out of range") from None


def _petition_input(form: Any) -> services.PetitionInput:
    """A POST Service Request's parameters as a petition; a bad or missing one is a 400."""

    def text(name: str) -> str:
        return form.get(name, "").strip()

    lat, long = _decimal(form.get("lat", ""), "lat"), _decimal(form.get("long", ""), "long")
    if missing := [name for name in ("service_code", "jurisdiction_id") if not form.get(name)]:
        raise ValidationError([f"{name} is required" for name in missing])
    contact = {
        "contact_name": f"{text('first_name')} {text('last_name')}".strip(),
        "contact_email": text("email"),
        "contact_phone": text("phone"),
    }
    return services.PetitionInput(
        category=text("service_code"),
        unit=text("jurisdiction_id"),
        agency=text("attribute[agency]"),
        description=text("description"),
        address=text("address_string"),
        lat=lat,
        long=long,
        # The client's app collected the contact details to be passed on with the request.
        contact_consent=any(contact.values()),
        **contact,
    )


class RequestList(GeoReportView):
    """GET Service Requests (with the specification's filters) and POST Service Request."""

    xml_root = "service_requests"
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [CanSubmitPetitions]
    throttle_scope = "open311-submit"

    def get_throttles(self) -> list[BaseThrottle]:
        return [SubmissionThrottle()] if self.request.method == "POST" else []

    def get(self, request: Request, format: str) -> Response:
        petitions = _filtered(request).order_by("-submitted_at", "-pk")
        return Response([_request(p) for p in petitions[: settings.OPEN311_MAX_REQUESTS]])

    def post(self, request: Request, format: str) -> Response:
        petition, _created = services.submit_petition(
            data=_petition_input(request.data),
            channel=Petition.Channel.OPEN311,
            submitted_by=request.user,
            link_base=public_base_url(request),
        )
        created = {
            "service_request_id": str(petition.pk),
            "service_notice": f"Tracking code for the citizen: {petition.tracking_code}",
            "account_id": None,
        }
        return Response([created])


class RequestDetail(GeoReportView):
    """GET Service Request: one petition, as a list of one (as the specification has it)."""

    xml_root = "service_requests"

    def get(self, request: Request, pk: str, format: str) -> Response:
        petition = _public().filter(pk=int(pk)).first() if len(pk) < 19 else None
        if petition is None:
            raise NotFound(f"service_request_id {pk} not found")
        return Response([_request(petition)])
