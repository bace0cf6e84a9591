"""Admin for responses and invitations; paper imports are in ``admin_paper``.

Responses are read-only evidence: nobody edits them here, and only superusers delete one.
Invitations are generated in batches ("Add" opens the generation form) and downloaded as
CSV; both need the permission ``feedback.manage_invitations``.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from config.admin_mixins import Page, SuperuserDeletesMixin, ToolPagesMixin, ViewOnlyInline
from config.links import public_base_url
from feedback import (
    admin_paper,  # noqa: F401  (registers the paper-import admin)
    admin_petitions,  # noqa: F401  (registers the petition admin)
)
from feedback.invitations.services import MAX_INVITATIONS, generate_invitations, invitations_csv
from feedback.models import (
    DESIGN_CODE_MAX_LENGTH,
    Answer,
    Invitation,
    OpenRosaCredential,
    Response,
    ResponseAttachment,
)
from feedback.review import services as review
from surveys import scoping
from surveys.admin import ProvinceScopedMixin, ScopedRelatedFilter
from surveys.models import Agency, Round, Unit

MANAGE_INVITATIONS = "feedback.manage_invitations"

# --- Responses ----------------------------------------------------------------------------


class AnswerInline(ViewOnlyInline):
    model = Answer
    fields = ["question", "value", "number", "code"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Answer]:
        return (
            super()
            .get_queryset(request)
            .select_related("question__section")
            .order_by("question__section__position", "question__position", "question_id")
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The answers are part of the response: whoever may view it sees them.
        return request.user.has_perm("feedback.view_response")


class AttachmentInline(ViewOnlyInline):
    """Files sent with the response (ODK submissions), each a download link for staff who
    may view responses; the content itself never appears on a page."""

    model = ResponseAttachment
    fields = ["download", "content_type", "size", "received_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ResponseAttachment]:
        return super().get_queryset(request).defer("content")

    @admin.display(description=_("file"))
    def download(self, obj: ResponseAttachment) -> str:
        url = reverse(
            "admin:feedback_response_attachment",
            kwargs={"object_id": obj.response_id, "attachment_id": obj.pk},
        )
        return format_html('<a href="{}">{}</a>', url, obj.name)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("feedback.view_response")


class ReviewForm(forms.Form):
    """The review decision of the admin action (checked again by ``feedback.review.services``)."""

    state = forms.ChoiceField(label=_("review state"), choices=Response.ReviewState.choices)
    reason = forms.ChoiceField(
        label=_("reason for exclusion"),
        choices=[("", "---------"), *Response.ReviewReason.choices],
        required=False,
    )
    note = forms.CharField(
        label=_("review note"),
        required=False,
        max_length=review.NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                review.checked_review(**data)
            except ValidationError as error:
                for field, messages in error.message_dict.items():
                    self.add_error(field, messages)
        return data


@admin.register(Response)
class ResponseAdmin(ProvinceScopedMixin, SuperuserDeletesMixin, ToolPagesMixin, admin.ModelAdmin):
    owner_path = "round__owner_unit"  # province staff: the raw responses of their own rounds
    list_display = ["receipt", "round", "unit", "channel", "submitted_at", "review_state"]
    list_filter = [
        ("round", ScopedRelatedFilter),
        "channel",
        "review_state",
        "review_reason",
        ("unit", ScopedRelatedFilter),
    ]
    actions = ["review_responses"]
    list_select_related = ["round", "unit"]
    search_fields = ["receipt"]
    date_hierarchy = "submitted_at"
    # Every stored field but the digest; there is no client IP to show (none is stored).
    fields = [
        "receipt",
        "round",
        "version",
        "unit",
        "agency",
        "channel",
        "submitted_at",
        "weight",
        "stratum",
        "psu",
        "client_id",
        "invitation",
        "import_batch",
        "submitted_by",
        "review_state",
        "review_reason",
        "review_note",
        "reviewed_by",
        "reviewed_at",
    ]
    readonly_fields = fields
    inlines = [AnswerInline, AttachmentInline]
    own_pages = (
        Page(
            "<path:object_id>/attachments/<int:attachment_id>/",
            "attachment_view",
            "feedback_response_attachment",
        ),
    )

    def attachment_view(
        self, request: HttpRequest, object_id: str, attachment_id: int
    ) -> HttpResponse:
        """One attachment, as a download (never shown inline: its type is the sender's
        word), to staff who may view responses."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        attachment = ResponseAttachment.objects.filter(
            pk=attachment_id,
            response_id=object_id
            if str(object_id).isascii() and str(object_id).isdigit()
            else None,
            response__in=self.get_queryset(request),
        ).first()
        if attachment is None:
            raise Http404
        response = HttpResponse(bytes(attachment.content), content_type="application/octet-stream")
        response["Content-Disposition"] = _content_disposition(attachment.name)
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(review.REVIEW_PERMISSION)

    @admin.action(permissions=["review"], description=_("Review: exclude or accept"))
    def review_responses(
        self, request: HttpRequest, queryset: QuerySet[Response]
    ) -> HttpResponse | None:
        """Exclude the selected responses from the indices (with a reason) or accept them
        again, after a form asking for the decision; nothing is deleted."""
        form = ReviewForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            decision = review.checked_review(**form.cleaned_data)
            changed = review.review_responses(
                queryset.values_list("pk", flat=True), decision, user=request.user
            )
            self.message_user(
                request,
                _("%(changed)d of %(selected)d responses changed to “%(state)s”.")
                % {
                    "changed": changed,
                    "selected": queryset.count(),
                    "state": Response.ReviewState(decision.state).label,
                },
                messages.SUCCESS,
            )
            return None
        return self.tool_page(
            request,
            "admin/feedback/response/review.html",
            form=form,
            title=_("Review responses"),
            responses=list(queryset.select_related("unit")),
            action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME,
        )


def _content_disposition(name: str) -> str:
    from urllib.parse import quote

    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


@admin.register(OpenRosaCredential)
class OpenRosaCredentialAdmin(admin.ModelAdmin):
    """ODK passwords: *Add* issues one for an account and shows it once (docs/odk.md)."""

    list_display = ["user", "realm", "created_at"]
    search_fields = ["user__username"]
    fields = ["user"]
    autocomplete_fields: list[str] = []

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "realm", "created_at"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "realm", "created_at"] if obj is not None else ["user"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from django.contrib import messages

        from feedback.openrosa.auth import issue_password

        password = issue_password(obj.user)
        saved = OpenRosaCredential.objects.get(user=obj.user)
        obj.pk, obj.username, obj.realm = saved.pk, saved.username, saved.realm
        obj.ha1_md5, obj.ha1_sha256, obj.created_at = (
            saved.ha1_md5,
            saved.ha1_sha256,
            saved.created_at,
        )
        messages.warning(
            request,
            _("ODK password of %(user)s, shown only this once: %(password)s")
            % {"user": obj.user.get_username(), "password": password},
        )


# --- Invitations --------------------------------------------------------------------------


class UsedFilter(admin.SimpleListFilter):
    title = _("used")
    parameter_name = "used"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("used")), ("no", _("not used"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(used_at__isnull=self.value() == "no")
        return queryset


class GenerateInvitationsForm(forms.Form):
    """Round, unit and agency offered (and accepted) within the user's scope."""

    round = forms.ModelChoiceField(Round.objects.all(), label=_("survey round"))
    unit = forms.ModelChoiceField(Unit.objects.all(), label=_("unit"))
    agency = forms.ModelChoiceField(
        Agency.objects.select_related("unit"), label=_("agency"), required=False
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["round"].queryset = scoping.rounds_for(user)
        self.fields["unit"].queryset = scoping.units_for(user)
        self.fields["agency"].queryset = scoping.agencies_for(user)

    count = forms.IntegerField(
        label=_("number of invitations"), min_value=1, max_value=MAX_INVITATIONS
    )
    batch = forms.CharField(
        label=_("batch label"),
        max_length=64,
        required=False,
        help_text=_("For example the mailing it goes out with; you can filter by it later."),
    )
    psu = forms.CharField(
        label=_("primary sampling unit (PSU)"),
        max_length=DESIGN_CODE_MAX_LENGTH,
        required=False,
        help_text=_(
            "The village or commune the households of this batch were drawn in; every "
            "response answered with one of these invitations records it."
        ),
    )
    stratum = forms.CharField(
        label=_("stratum"),
        max_length=DESIGN_CODE_MAX_LENGTH,
        required=False,
        help_text=_("Sampling stratum of the batch; empty: the unit is the stratum."),
    )


def csv_download(
    request: HttpRequest, queryset: QuerySet[Invitation], name: str
) -> StreamingHttpResponse:
    rows = invitations_csv(queryset, base_url=public_base_url(request))
    response = StreamingHttpResponse(rows, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@admin.register(Invitation)
class InvitationAdmin(ProvinceScopedMixin, ToolPagesMixin, admin.ModelAdmin):
    owner_path = "round__owner_unit"
    list_display = [
        "token",
        "round",
        "unit",
        "agency",
        "batch",
        "psu",
        "stratum",
        "created_at",
        "used_at",
    ]
    list_filter = [
        ("round", ScopedRelatedFilter),
        ("unit", ScopedRelatedFilter),
        "batch",
        UsedFilter,
    ]
    list_select_related = ["round", "unit", "agency__unit"]
    search_fields = ["token", "batch", "psu"]
    own_pages = (Page("generate/", "generate_view", "feedback_invitation_generate"),)
    readonly_fields = [
        "round",
        "unit",
        "agency",
        "token",
        "batch",
        "psu",
        "stratum",
        "created_at",
        "used_at",
    ]
    actions = ["download_csv"]

    def has_manage_invitations_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE_INVITATIONS)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_manage_invitations_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_manage_invitations_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_manage_invitations_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a token, once handed out, must not change

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_manage_invitations_permission(request)

    def add_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.generate_view(request)

    @admin.action(description=_("Download selected as CSV"), permissions=["manage_invitations"])
    def download_csv(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> HttpResponse:
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        return csv_download(request, queryset, f"invitations-{stamp}")

    def generate_view(self, request: HttpRequest) -> HttpResponse:
        """Generate invitations and answer with their CSV; bad input shows form errors."""
        if not self.has_manage_invitations_permission(request):
            raise PermissionDenied
        form = self.posted_form(request, GenerateInvitationsForm, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = generate_invitations(
                    round_code=data["round"].code,
                    unit_code=data["unit"].code,
                    agency_code=data["agency"].code if data["agency"] else "",
                    count=data["count"],
                    batch=data["batch"],
                    psu=data["psu"],
                    stratum=data["stratum"],
                )
            except ValidationError as error:
                form.add_error(None, error)  # keyed by field: round, unit, agency, count, batch
            else:
                parts = [data["round"].code, data["unit"].code, data["batch"]]
                name = slugify("-".join(["invitations", *filter(None, parts)]))
                invitations = Invitation.objects.filter(pk__in=[i.pk for i in created])
                return csv_download(request, invitations, name)
        return self.tool_page(
            request,
            "admin/tool_form.html",
            form=form,
            form_id="generate-invitations-form",
            title=_("Generate invitations"),
            intro=_(
                "Generates single-use invitation links for one round and unit and downloads "
                "them as a CSV file, to hand out by post or SMS."
            ),
            submit=_("Generate and download CSV"),
        )
