"""What citizens send: survey responses with their answers, invitations, saved drafts and
paper-form imports.

A response records the questionnaire version, round, unit, channel and time; it holds no
personal data beyond what the questionnaire itself asks, and never the client's IP address.
Answers keep the value as sent (``value``) plus typed columns (``number``, ``code``) so that
scoring can aggregate in SQL without parsing JSON.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.model_fields import account_reference, optional_key, two_languages
from surveys.models import (
    Agency,
    DeskChecks,
    Question,
    QuestionnaireVersion,
    Round,
    Unit,
    desk_constraints,
    desk_fields,
)

# Crockford-like alphabet: no 0/O, 1/I/L, so a receipt read over the phone is unambiguous.
RECEIPT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# Longest stratum or primary sampling unit (PSU) code a response or invitation carries.
DESIGN_CODE_MAX_LENGTH = 64


def design_code(verbose_name: str, help_text: str, **kwargs: Any) -> models.CharField:
    """A stratum or PSU code of the sample design: empty means the default."""
    return models.CharField(
        verbose_name,
        max_length=DESIGN_CODE_MAX_LENGTH,
        blank=True,
        default="",
        help_text=help_text,
        **kwargs,
    )


def new_receipt_code() -> str:
    """A receipt code such as ``K7Q2M-9XH4C`` (50 bits of randomness)."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def new_token() -> str:
    """An unguessable URL-safe token (invitations, resume links)."""
    return secrets.token_urlsafe(16)


class Invitation(models.Model):
    """A single-use link to answer a round for one unit (handed out by post or SMS)."""

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="invitations")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="invitations")
    agency = optional_key(Agency, models.PROTECT, related_name="invitations")
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_token)
    batch = models.CharField(_("batch"), max_length=64, blank=True, db_index=True)
    psu = design_code(
        _("primary sampling unit"),
        _("Village or commune the invitation was drawn in; its response takes it."),
    )
    stratum = design_code(
        _("stratum"), _("Sampling stratum of the invitation; its response takes it.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        ordering = ["round", "unit", "created_at", "id"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self) -> str:
        return f"{self.round.code}/{self.unit.code} {self.token[:6]}…"

    @property
    def is_used(self) -> bool:
        return self.used_at is not None


class Response(models.Model):
    """One citizen's completed questionnaire."""

    class Channel(models.TextChoices):
        WEB = "web", _("web form")
        API = "api", _("API")
        PAPER = "paper", _("paper form")
        ODK = "odk", _("ODK (OpenRosa)")

    class ReviewState(models.TextChoices):
        ACCEPTED = "accepted", _("accepted")
        EXCLUDED = "excluded", _("excluded from the indices")

    class ReviewReason(models.TextChoices):
        DUPLICATE = "duplicate", _("duplicate household")
        FRAUD = "fraud", _("fraud")
        TEST = "test", _("test response")
        OTHER = "other", _("other")

    receipt = models.CharField(
        _("receipt code"), max_length=16, unique=True, default=new_receipt_code, editable=False
    )
    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="responses")
    version = models.ForeignKey(
        QuestionnaireVersion, on_delete=models.PROTECT, related_name="responses"
    )
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="responses")
    agency = optional_key(Agency, models.PROTECT, related_name="responses")
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    client_id = models.UUIDField(
        _("client id"),
        unique=True,
        null=True,
        blank=True,
        help_text=_("Idempotency key sent by the client: the same key never stores twice."),
    )
    request_digest = models.CharField(
        _("request digest"),
        max_length=64,
        blank=True,
        editable=False,
        help_text=_("SHA-256 of the submitted content, to tell a repeat from a conflict."),
    )
    invitation = models.OneToOneField(
        Invitation, on_delete=models.PROTECT, null=True, blank=True, related_name="response"
    )
    submitted_at = models.DateTimeField(_("submitted"), default=timezone.now, db_index=True)
    weight = models.FloatField(_("design weight"), default=1.0)
    # The sample design (feedback/design.py): empty means the default, read by scoring as
    # stratum = the response's unit and PSU = the response itself.
    psu = design_code(
        _("primary sampling unit"),
        _("Village or commune the respondent was sampled in; empty: the response."),
        db_default="",
    )
    stratum = design_code(
        _("stratum"),
        _("Sampling stratum of the respondent; empty: the response's unit."),
        db_default="",
    )
    import_batch = optional_key("PaperImport", models.PROTECT, related_name="responses")
    submitted_by = account_reference(_("submitted by (API or ODK account)"))
    paper_key = models.CharField(
        _("paper form key"),
        max_length=80,
        blank=True,
        db_default="",  # bulk loads that name their columns (demo/responses.py) leave it empty
        editable=False,
        help_text=_(
            "A paper form's identity in its round: its row_id, or without one the digest of "
            "its content. The same form is stored once, whatever the file it comes in."
        ),
    )

    # Review (feedback.review.services): an excluded response stays stored and exported, but no
    # scoring run counts it. Bulk loads that name their columns leave the defaults.
    review_state = models.CharField(
        _("review state"),
        max_length=10,
        choices=ReviewState.choices,
        default=ReviewState.ACCEPTED,
        db_default=ReviewState.ACCEPTED,
        editable=False,
    )
    review_reason = models.CharField(
        _("reason for exclusion"),
        max_length=16,
        choices=ReviewReason.choices,
        blank=True,
        default="",
        db_default="",
        editable=False,
    )
    review_note = models.CharField(
        _("review note"), max_length=500, blank=True, default="", db_default="", editable=False
    )
    reviewed_by = account_reference(_("reviewed by"), editable=False)
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = _("response")
        verbose_name_plural = _("responses")
        permissions = [
            ("submit_on_behalf", _("Can submit responses on behalf of citizens (not throttled)")),
            ("import_paper_forms", _("Can import paper questionnaires")),
            ("manage_invitations", _("Can generate and download invitations")),
            ("review_response", _("Can exclude responses from the indices and accept them")),
        ]
        indexes = [
            models.Index(fields=["round", "unit"], name="response_round_unit"),
            # Few rows: what scoring leaves out of a round (scoring.sql).
            models.Index(
                fields=["round", "id"],
                condition=Q(review_state="excluded"),
                name="response_excluded",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(weight__gt=0), name="response_weight_positive"),
            models.CheckConstraint(
                condition=Q(review_state="accepted") | ~Q(review_reason=""),
                name="response_excluded_has_reason",
            ),
            models.UniqueConstraint(
                fields=["round", "paper_key"],
                condition=~Q(paper_key=""),
                name="response_paper_form_once",
            ),
        ]

    def __str__(self) -> str:
        return self.receipt


class AnswerQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args: Any, **kwargs: Any) -> list[Answer]:
        """``bulk_create`` filling each answer's round from its response when not set."""
        objs = list(objs)
        fill_rounds(objs, using=self.db)
        return super().bulk_create(objs, *args, **kwargs)


def fill_rounds(answers: list[Answer], *, using: str | None = None) -> None:
    """Set ``round_id`` of the answers lacking it from their responses (one query at most
    for the responses not already loaded)."""
    missing: list[Answer] = []
    for answer in answers:
        if answer.round_id is None:
            response = answer._state.fields_cache.get("response")
            if response is not None and response.pk == answer.response_id:
                answer.round_id = response.round_id
            else:
                missing.append(answer)
    if missing:
        rounds = dict(
            Response.objects.using(using)
            .filter(pk__in={a.response_id for a in missing})
            .values_list("pk", "round_id")
        )
        for answer in missing:
            answer.round_id = rounds.get(answer.response_id)


class Answer(models.Model):
    """One answer of a response. Unanswered and hidden questions have no row.

    ``round`` repeats the response's round: on PostgreSQL the answers are partitioned by it
    (``feedback.partitions``), and a round's reads name it to touch that round's partition
    only. Every writer sets it; ``save()`` and ``bulk_create`` fill it from the response.
    """

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="answers")
    # No foreign key constraint: its check would lock the round's row for every answer
    # stored (the response's own constraint already ties the answer to an existing round).
    round = models.ForeignKey(
        Round,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        editable=False,
        related_name="+",
        verbose_name=_("survey round"),
    )
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="answers")
    value = models.JSONField(_("value as sent"))
    number = models.FloatField(
        _("numeric value"), null=True, blank=True, help_text=_("scale, number; yes/no as 1/0")
    )
    code = models.CharField(
        _("choice code"), max_length=64, blank=True, help_text=_("single choice")
    )

    objects = AnswerQuerySet.as_manager()

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        constraints = [
            models.UniqueConstraint(fields=["response", "question"], name="answer_one_per_question")
        ]

    def __str__(self) -> str:
        return f"{self.question_id}={self.value!r}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.round_id is None and self.response_id is not None:
            self.round_id = self.response.round_id
        super().save(*args, **kwargs)


class ResponseAttachment(models.Model):
    """A file sent with a response (an ODK submission's photo of the paper form, say).

    Kept in the database with the response (stored in the same transaction, backed up with
    it, never under a public URL); served only to staff who may view responses, as a
    download, and never part of an export.
    """

    response = models.ForeignKey(
        Response, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("response")
    )
    name = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type as sent"), max_length=100, blank=True)
    size = models.PositiveIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    content = models.BinaryField(_("content"), editable=False)
    received_at = models.DateTimeField(_("received"), default=timezone.now)

    class Meta:
        ordering = ["response", "name"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        constraints = [
            models.UniqueConstraint(fields=["response", "name"], name="attachment_name_once")
        ]

    def __str__(self) -> str:
        return self.name


class OpenRosaCredential(models.Model):
    """An account's ODK password, kept as the two HTTP Digest HA1 values (RFC 7616).

    Digest needs a secret the server can use: ``H(username:realm:password)``, which lets
    whoever reads it answer Digest challenges of this realm but is not the password and
    is of no use elsewhere. Django's password hash cannot serve (it is made not to), and
    is never weakened for it: the ODK password is a separate, random secret generated by
    the service (``feedback.openrosa.auth.issue_password``), shown once.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="openrosa_credential",
        verbose_name=_("account"),
    )
    username = models.CharField(
        _("user name the digests were made with"), max_length=150, editable=False
    )
    realm = models.CharField(_("realm"), max_length=100, editable=False)
    ha1_md5 = models.CharField(max_length=32, editable=False)
    ha1_sha256 = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(_("issued"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("ODK password")
        verbose_name_plural = _("ODK passwords")

    def __str__(self) -> str:
        return self.username


class ResponseDraft(models.Model):
    """A partly filled web response, resumable from a link until it expires."""

    token = models.CharField(max_length=64, unique=True, default=new_token)
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="drafts")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="drafts")
    agency = optional_key(Agency, models.CASCADE, related_name="drafts")
    invitation = optional_key(Invitation, models.CASCADE, related_name="drafts")
    client_id = models.UUIDField(default=None, null=True, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    section = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("saved draft")
        verbose_name_plural = _("saved drafts")

    def __str__(self) -> str:
        return f"draft {self.token[:6]}…"


class PaperImport(models.Model):
    """A file of paper questionnaires entered by staff, imported row by row."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="paper_imports")
    file_name = models.CharField(_("file name"), max_length=255)
    content = models.BinaryField(_("file content"), editable=False)
    uploaded_by = account_reference(_("uploaded by"), related_name=None)
    late_entry = models.BooleanField(
        _("late entry"),
        default=False,
        help_text=_("Imported into a round already closed, by a user allowed to do so."),
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    accepted_rows = models.PositiveIntegerField(_("rows accepted"), default=0)
    rejected_rows = models.PositiveIntegerField(_("rows rejected"), default=0)
    duplicate_rows = models.PositiveIntegerField(
        _("duplicate rows"),
        default=0,
        help_text=_("Forms already stored (by an earlier row or import): not stored again."),
    )
    # Resuming point: the file row (header = 1) up to which every row's outcome is committed,
    # with the counters and the report, in the same transaction as the rows' responses.
    last_row = models.PositiveIntegerField(_("last row committed"), default=0)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    report = models.JSONField(_("report"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("paper form import")
        verbose_name_plural = _("paper form imports")
        permissions = [
            ("import_late_paper", _("Can import paper questionnaires into a closed round")),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"


# --- Petitions (phản ánh, kiến nghị) ------------------------------------------------------


class PetitionCategory(models.Model):
    """A kind of petition (an Open311 service) with its handling deadline in working days."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name_vi, name_en = two_languages("name", 200)
    description_vi, description_en = two_languages("description", blank=True)
    group = models.CharField(_("group"), max_length=100, blank=True)
    keywords = models.CharField(_("keywords"), max_length=200, blank=True)
    deadline_days = models.PositiveSmallIntegerField(
        _("deadline in working days"),
        default=10,
        help_text=_("Working days after the day of receipt within which an answer is due."),
    )
    is_active = models.BooleanField(_("open for new petitions"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "code"]
        verbose_name = _("petition category")
        verbose_name_plural = _("petition categories")
        constraints = [
            models.CheckConstraint(
                condition=Q(deadline_days__gte=1), name="petition_category_deadline_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name_vi}"


class CalendarDay(models.Model):
    """A day whose working status differs from the rule (weekends and ``holidays.VN``):
    an extra day off, or a make-up working day (often a Saturday)."""

    day = models.DateField(_("day"), unique=True)
    is_working_day = models.BooleanField(
        _("working day"), help_text=_("Ticked: a make-up working day. Empty: an extra day off.")
    )
    name = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        ordering = ["day"]
        verbose_name = _("calendar exception")
        verbose_name_plural = _("calendar exceptions")

    def __str__(self) -> str:
        return f"{self.day} {'+' if self.is_working_day else '-'} {self.name}"


class PetitionStaff(DeskChecks, models.Model):
    """A staff account handling the petitions of one agency, or (no agency) of a whole unit."""

    user, unit, agency = desk_fields(
        "petition_desks", _("Empty: the account routes and handles every petition of the unit.")
    )

    class Meta:
        verbose_name = _("petition handler")
        verbose_name_plural = _("petition handlers")
        constraints = desk_constraints("petition_staff")

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.agency_id or self.unit_id}"


class Petition(models.Model):
    """A citizen's feedback, complaint or petition, handled by an agency within a deadline.

    Contact details are personal data: they are shown to the staff handling the petition
    and never on the tracking page, the public API or Open311.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        ASSIGNED = "assigned", _("assigned")
        IN_PROGRESS = "in_progress", _("in progress")
        RESOLVED = "resolved", _("resolved")
        REJECTED = "rejected", _("rejected")

    class Channel(models.TextChoices):
        WEB = "web", _("web form")
        API = "api", _("API")
        OPEN311 = "open311", _("Open311")

    tracking_code = models.CharField(
        _("tracking code"), max_length=16, unique=True, default=new_receipt_code, editable=False
    )
    category = models.ForeignKey(
        PetitionCategory, on_delete=models.PROTECT, related_name="petitions"
    )
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="petitions")
    agency = optional_key(Agency, models.PROTECT, related_name="petitions")
    description = models.TextField(_("description"))
    address = models.CharField(_("address or place"), max_length=255, blank=True)
    lat = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    long = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    contact_name = models.CharField(_("contact name"), max_length=120, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True)
    contact_consent = models.BooleanField(_("consent to store contact details"), default=False)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    client_id = models.UUIDField(_("client id"), unique=True, null=True, blank=True)
    request_digest = models.CharField(max_length=64, blank=True, editable=False)
    submitted_by = account_reference(_("submitted by (API account)"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.RECEIVED
    )
    assignee = account_reference(_("assignee"), related_name="petitions_assigned")
    reply = models.TextField(_("public reply"), blank=True)
    rejection_reason = models.TextField(_("reason for rejection"), blank=True)
    submitted_at = models.DateTimeField(_("submitted"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    deadline = models.DateField(_("deadline"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    reminded_on = models.DateField(_("last reminder"), null=True, blank=True)
    rating = models.PositiveSmallIntegerField(_("citizen rating"), null=True, blank=True)
    rated_at = models.DateTimeField(_("rated"), null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = _("petition")
        verbose_name_plural = _("petitions")
        permissions = [("submit_petitions", _("Can submit petitions with an API key (Open311)"))]
        indexes = [
            models.Index(fields=["status", "deadline"], name="petition_status_deadline"),
            models.Index(fields=["agency", "status"], name="petition_agency_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="petition_rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(status__in=["resolved", "rejected"]),
                name="petition_rated_only_when_closed",
            ),
        ]

    def __str__(self) -> str:
        return self.tracking_code

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    @property
    def is_overdue(self) -> bool:
        """Open past its deadline, or closed after it."""
        if self.closed_at is not None:
            return timezone.localdate(self.closed_at) > self.deadline
        return timezone.localdate() > self.deadline


CLOSED_STATUSES = (Petition.Status.RESOLVED, Petition.Status.REJECTED)
OPEN_STATUSES = (Petition.Status.RECEIVED, Petition.Status.ASSIGNED, Petition.Status.IN_PROGRESS)


class PetitionEvent(models.Model):
    """One change of a petition's status: who (empty for the citizen), when, and a note."""

    petition = models.ForeignKey(Petition, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(_("status"), max_length=12, choices=Petition.Status.choices)
    previous_status = models.CharField(
        _("previous status"), max_length=12, choices=Petition.Status.choices, blank=True
    )
    actor = account_reference(_("by"))
    agency = optional_key(Agency, models.SET_NULL, related_name="+")
    note = models.TextField(_("internal note"), blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("petition status change")
        verbose_name_plural = _("petition status changes")

    def __str__(self) -> str:
        return f"{self.petition_id}: {self.previous_status or '∅'} → {self.status}"


class ResponseRecord(models.Model):
    """The compact record of one response: what scoring reads instead of its answers.

    One narrow row per response, kept by ``feedback.records.refresh`` in the same
    transaction as every write of the response or its answers; the answers stay the source
    of truth (``manage.py rebuild_response_records`` rebuilds and checks the records). The
    design (unit, agency, stratum, PSU, design weight) is copied as stored; the scored
    answers are packed in bit masks over the version's scored questions in question id
    order, 63 per word: ``valid_w`` has a bit per question answered, ``satisfied_w`` a bit
    per answer in the question's satisfied values. A published version never changes, so
    neither does the layout of its records. Words the version does not need are NULL.
    Database triggers keep every response's record present with its design current, and
    mark it ``stale`` when its answers change by any other path (see ``feedback.records``).
    """

    response = models.OneToOneField(
        Response, on_delete=models.CASCADE, primary_key=True, related_name="record"
    )
    round_id = models.BigIntegerField()
    version_id = models.BigIntegerField()
    unit_id = models.BigIntegerField()
    agency_id = models.BigIntegerField(null=True)
    stratum = models.CharField(max_length=64, blank=True)
    psu = models.CharField(max_length=64, blank=True)
    weight = models.FloatField()
    valid_0 = models.BigIntegerField(default=0)
    satisfied_0 = models.BigIntegerField(default=0)
    valid_1 = models.BigIntegerField(null=True)
    satisfied_1 = models.BigIntegerField(null=True)
    valid_2 = models.BigIntegerField(null=True)
    satisfied_2 = models.BigIntegerField(null=True)
    valid_3 = models.BigIntegerField(null=True)
    satisfied_3 = models.BigIntegerField(null=True)
    # Set by the database's triggers when the response's answers (or its version) change
    # outside ``feedback.records.refresh``: scoring then reads that response's answers.
    stale = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("compact response record")
        verbose_name_plural = _("compact response records")
        indexes = [
            models.Index(fields=["round_id", "version_id"], name="record_round_version"),
            models.Index(
                fields=["round_id", "version_id"], condition=Q(stale=True), name="record_stale"
            ),
        ]

    def __str__(self) -> str:
        return f"record {self.response_id}"
