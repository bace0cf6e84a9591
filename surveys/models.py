"""The survey frame (units, agencies, rounds) and versioned questionnaires.

A questionnaire has versions; a version holds sections, questions, choices and the
indicator tree its questions feed. Only a draft version can change: once published (or
retired) its content is frozen, and changing it means starting a new draft
(``surveys.services.start_draft``). The guard lives here, in ``save()`` and ``delete()``
of every content model, so that no path (admin, shell, loader) can bypass it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from config.model_fields import optional_key, two_languages

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
    _("Use letters, digits, '_', '.' or '-', starting with a letter or digit."),
)


class PublishedVersionImmutable(ValidationError):
    """Raised when content of a published or retired questionnaire version would change."""


def localized(obj: Any, field: str) -> str:
    """The ``<field>_<language>`` value for the active language, falling back to Vietnamese."""
    language = (translation.get_language() or "vi")[:2]
    return getattr(obj, f"{field}_{language}", "") or getattr(obj, f"{field}_vi", "")


class CodeAndText:
    """Shown as its code and its text named ``SHOWN_TEXT`` (``name``, ``title`` or ``label``)
    in the active language."""

    SHOWN_TEXT = "name"

    def __str__(self) -> str:
        return f"{self.code} {localized(self, self.SHOWN_TEXT)}"  # type: ignore[attr-defined]


# --- Survey frame -------------------------------------------------------------------------


class Unit(models.Model):
    """An administrative unit rated by citizens (a province or centrally-run city).

    Units are valid between two dates; a merger ends the old units (``valid_to``) and
    starts a new one whose ``predecessors`` are recorded, so that rounds on either side
    of the 2025 merger can be compared.
    """

    class Kind(models.TextChoices):
        PROVINCE = "province", _("province")
        MUNICIPALITY = "municipality", _("centrally-run city")

    code = models.CharField(_("code"), max_length=16, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    region = models.CharField(_("region"), max_length=120, blank=True)
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_to = models.DateField(_("valid to"), null=True, blank=True)
    predecessors = models.ManyToManyField(
        "self",
        through="UnitLineage",
        through_fields=("successor", "predecessor"),
        symmetrical=False,
        related_name="successors",
        blank=True,
        verbose_name=_("predecessors"),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("administrative unit")
        verbose_name_plural = _("administrative units")
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(valid_to__gte=models.F("valid_from")),
                name="unit_valid_to_after_valid_from",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def is_valid_on(self, day: Any) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


class UnitLineage(models.Model):
    """One edge of the merger graph: ``predecessor`` became (part of) ``successor``."""

    predecessor = models.ForeignKey(
        Unit, on_delete=models.CASCADE, related_name="+", verbose_name=_("predecessor")
    )
    successor = models.ForeignKey(
        Unit, on_delete=models.CASCADE, related_name="+", verbose_name=_("successor")
    )
    effective_on = models.DateField(_("effective on"))

    class Meta:
        verbose_name = _("unit lineage")
        verbose_name_plural = _("unit lineage")
        constraints = [
            models.UniqueConstraint(
                fields=["predecessor", "successor"], name="unit_lineage_unique_edge"
            ),
            models.CheckConstraint(
                condition=~Q(predecessor=models.F("successor")), name="unit_lineage_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.predecessor_id} → {self.successor_id} ({self.effective_on})"


class Agency(models.Model):
    """A body that delivers services within a unit (a department, a one-stop shop).

    Its code is unique in the country (by convention ``<unit code>-<own code>``, e.g.
    ``01-TTPVHCC``), so that a code alone names one agency on every channel, and a code
    sent with another unit is refused rather than read as that unit's namesake.
    """

    class Kind(models.TextChoices):
        DEPARTMENT = "department", _("department")
        ONE_STOP_SHOP = "one_stop_shop", _("one-stop shop")
        DISTRICT = "district", _("district or commune people's committee")
        OTHER = "other", _("other")

    CODE_MAX_LENGTH = 50  # a unit's code (16), "-", an agency's own code (32)

    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="agencies", verbose_name=_("unit")
    )
    code = models.CharField(
        _("code"),
        max_length=CODE_MAX_LENGTH,
        unique=True,
        validators=[code_validator],
        help_text=_(
            "Unique in the country: the unit's code, a hyphen, the agency's own code "
            "(e.g. 01-TTPVHCC)."
        ),
    )
    name_vi, name_en = two_languages("name", 200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.OTHER)

    class Meta:
        ordering = ["unit__code", "code"]
        verbose_name = _("agency")
        verbose_name_plural = _("agencies")

    def __str__(self) -> str:
        # Codes usually start with the unit's code already (01-TTPVHCC): not shown twice.
        unit = "" if self.code.startswith(f"{self.unit.code}-") else f"{self.unit.code}/"
        return f"{unit}{self.code} {localized(self, 'name')}"


# --- Questionnaires -----------------------------------------------------------------------


class Questionnaire(models.Model):
    """A family of questionnaire versions (e.g. ``sipas``)."""

    code = models.CharField(_("code"), max_length=32, unique=True, validators=[code_validator])
    title_vi, title_en = two_languages("title", 200)
    description_vi, description_en = two_languages("description", blank=True)
    owner_unit = optional_key(
        Unit,
        models.PROTECT,
        related_name="own_questionnaires",
        verbose_name=_("owner province"),
        help_text=_("Empty: a national questionnaire. Set: the province's own questionnaire."),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("questionnaire")
        verbose_name_plural = _("questionnaires")

    def __str__(self) -> str:
        return f"{self.code}: {localized(self, 'title')}"


class QuestionnaireVersion(models.Model):
    """One version of a questionnaire: a draft until published, then frozen."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        PUBLISHED = "published", _("published")
        RETIRED = "retired", _("retired")

    questionnaire = models.ForeignKey(
        Questionnaire,
        on_delete=models.PROTECT,
        related_name="versions",
        verbose_name=_("questionnaire"),
    )
    number = models.PositiveIntegerField(_("version number"))
    label = models.CharField(
        _("label"), max_length=64, blank=True, help_text=_("e.g. '2022 household form'")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    based_on = optional_key(
        "self", models.SET_NULL, related_name="drafts", verbose_name=_("based on")
    )
    source_digest = models.CharField(
        _("source digest"),
        max_length=64,
        blank=True,
        editable=False,
        help_text=_("SHA-256 of the data file this version was loaded from, if any."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    published_at = models.DateTimeField(_("published"), null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["questionnaire__code", "-number"]
        verbose_name = _("questionnaire version")
        verbose_name_plural = _("questionnaire versions")
        constraints = [
            models.UniqueConstraint(
                fields=["questionnaire", "number"], name="version_number_unique"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(published_at__isnull=False),
                name="version_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        label = f" ({self.label})" if self.label else ""
        return f"{self.questionnaire.code} v{self.number}{label} [{self.get_status_display()}]"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            stored = (
                QuestionnaireVersion.objects.filter(pk=self.pk)
                .values_list("status", "questionnaire_id", "number", "label")
                .first()
            )
            if stored is not None and stored[0] != self.Status.DRAFT:
                frozen = (self.questionnaire_id, self.number, self.label)
                if frozen != stored[1:]:
                    raise PublishedVersionImmutable(
                        _("Version %(v)s is %(s)s and cannot be changed; start a new draft.")
                        % {"v": self.number, "s": self.Status(stored[0]).label}
                    )
                if stored[0] == self.Status.RETIRED and self.status != self.Status.RETIRED:
                    raise PublishedVersionImmutable(_("A retired version stays retired."))
                if self.status == self.Status.DRAFT:
                    raise PublishedVersionImmutable(
                        _("A published version cannot go back to draft; start a new draft.")
                    )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self.pk is not None and not self.is_editable:
            raise PublishedVersionImmutable(
                _("Version %(v)s is %(s)s and cannot be deleted.")
                % {"v": self.number, "s": self.get_status_display()}
            )
        return super().delete(*args, **kwargs)

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


def version_key(
    related_name: str, verbose_name: str = _("version"), **kwargs: Any
) -> models.ForeignKey:
    """The version a piece of content (or a mapping) belongs to: deleted with it."""
    return models.ForeignKey(
        QuestionnaireVersion,
        on_delete=models.CASCADE,
        related_name=related_name,
        verbose_name=verbose_name,
        **kwargs,
    )


def content_code() -> models.CharField:
    """The code of a section, question, choice, indicator or policy group."""
    return models.CharField(_("code"), max_length=32, validators=[code_validator])


def content_position() -> models.PositiveIntegerField:
    """The place of a piece of content among its siblings."""
    return models.PositiveIntegerField(_("position"), default=0)


def answer_values(verbose_name: str, help_text: str) -> models.JSONField:
    """A list of answer values (a display condition's, the satisfied ones), empty by default."""
    return models.JSONField(verbose_name, default=list, blank=True, help_text=help_text)


def answer_bound(verbose_name: str, help_text: str) -> models.DecimalField:
    """A question's lowest or highest answer (number, scale point, date year; for a multiple
    choice, the number of choices), if any."""
    return models.DecimalField(
        verbose_name, max_digits=14, decimal_places=4, null=True, blank=True, help_text=help_text
    )


def code_unique_in(parent: str, model: str) -> models.UniqueConstraint:
    """A code names one ``model`` row within its ``parent`` (version or question)."""
    return models.UniqueConstraint(fields=[parent, "code"], name=f"{model}_code_unique_in_{parent}")


class VersionContent(models.Model):
    """Base for models that belong to a version: frozen unless the version is a draft."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._check_editable(_("changed"))
        if self.pk is not None:
            # Moving content out of a frozen version is a change to that version too.
            stored = type(self).objects.filter(pk=self.pk).first()
            if stored is not None:
                stored._check_editable(_("changed"))
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self._check_editable(_("deleted"))
        return super().delete(*args, **kwargs)

    def owning_version_id(self) -> int | None:
        return self.version_id  # type: ignore[attr-defined]

    def _check_editable(self, action: str) -> None:
        version_id = self.owning_version_id()
        status = (
            QuestionnaireVersion.objects.filter(pk=version_id)
            .values_list("status", flat=True)
            .first()
        )
        if status is not None and status != QuestionnaireVersion.Status.DRAFT:
            raise PublishedVersionImmutable(
                _("This version is %(s)s: its %(what)s cannot be %(action)s. Start a new draft.")
                % {
                    "s": QuestionnaireVersion.Status(status).label,
                    "what": self._meta.verbose_name,
                    "action": action,
                }
            )


class PolicyGroup(CodeAndText, VersionContent):
    """A policy group the questionnaire asks about (e.g. health care), for breakdowns."""

    version = version_key("policy_groups")
    code = content_code()
    position = content_position()
    name_vi, name_en = two_languages("name", 200)

    class Meta:
        ordering = ["version", "position", "code"]
        verbose_name = _("policy group")
        verbose_name_plural = _("policy groups")
        constraints = [code_unique_in("version", "policy_group")]


class Indicator(CodeAndText, VersionContent):
    """A node of the version's indicator tree (index, field, element/content, item).

    Questions name the item they feed (``Question.indicator``); the aggregation rule of
    each node is data, so that every "[our rule]" of the methodology is a setting.
    """

    class Kind(models.TextChoices):
        INDEX = "index", _("index")
        FIELD = "field", _("field")
        ELEMENT = "element", _("element / content")
        ITEM = "item", _("item / criterion")

    class Aggregation(models.TextChoices):
        MEAN = "mean", _("mean of children")
        WEIGHTED_MEAN = "weighted_mean", _("weighted mean of children")
        POOLED = "pooled", _("pooled over all answers")
        SHARE = "share", _("share of satisfied answers (item)")

    version = version_key("indicators")
    code = content_code()
    parent = optional_key("self", models.CASCADE, related_name="children", verbose_name=_("parent"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    position = content_position()
    name_vi, name_en = two_languages("name", 300)
    aggregation = models.CharField(
        _("aggregation"), max_length=16, choices=Aggregation.choices, default=Aggregation.MEAN
    )
    weight = models.FloatField(
        _("weight"), default=1.0, help_text=_("Used by a parent with a weighted mean.")
    )
    policy_group = optional_key(
        PolicyGroup, models.SET_NULL, related_name="indicators", verbose_name=_("policy group")
    )

    class Meta:
        ordering = ["version", "position", "code"]
        verbose_name = _("indicator")
        verbose_name_plural = _("indicators")
        constraints = [
            code_unique_in("version", "indicator"),
            models.CheckConstraint(
                condition=Q(weight__gte=0), name="indicator_weight_not_negative"
            ),
        ]

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.parent_id is not None:
            if self.parent.version_id != self.version_id:
                errors.setdefault("parent", []).append(
                    _("The parent must belong to the same version.")
                )
            node, seen = self.parent, {self.pk}
            while node is not None:
                if node.pk in seen:
                    errors.setdefault("parent", []).append(_("The parent would make a cycle."))
                    break
                seen.add(node.pk)
                node = node.parent
        if self.policy_group_id is not None and self.policy_group.version_id != self.version_id:
            errors.setdefault("policy_group", []).append(
                _("The policy group must belong to the same version.")
            )
        if errors:
            raise ValidationError(errors)


class Section(CodeAndText, VersionContent):
    """A section of a questionnaire version, shown as one step of the form."""

    SHOWN_TEXT = "title"

    version = version_key("sections")
    code = content_code()
    position = content_position()
    title_vi, title_en = two_languages("title", 300)
    intro_vi, intro_en = two_languages("intro", blank=True)

    class Meta:
        ordering = ["version", "position", "id"]
        verbose_name = _("section")
        verbose_name_plural = _("sections")
        constraints = [code_unique_in("version", "section")]


class Question(VersionContent):
    """A question with its type, bounds, display condition and scoring tag.

    ``version`` repeats ``section.version`` so that the database can hold question codes
    unique within a version; ``save()`` keeps the two in step.
    """

    class Type(models.TextChoices):
        SCALE = "scale", _("scale (e.g. 1–5, with labels)")
        SINGLE = "single", _("single choice")
        MULTIPLE = "multiple", _("multiple choice")
        YESNO = "yesno", _("yes / no")
        NUMBER = "number", _("number")
        TEXT = "text", _("short text")
        LONGTEXT = "longtext", _("long text")
        DATE = "date", _("date")

    CHOICE_TYPES = frozenset({Type.SCALE, Type.SINGLE, Type.MULTIPLE})
    TEXT_TYPES = frozenset({Type.TEXT, Type.LONGTEXT})

    version = version_key("questions", editable=False)
    section = models.ForeignKey(
        Section, on_delete=models.CASCADE, related_name="questions", verbose_name=_("section")
    )
    code = content_code()
    position = content_position()
    type = models.CharField(_("type"), max_length=16, choices=Type.choices)
    required = models.BooleanField(_("required"), default=False)
    label_vi, label_en = two_languages("label")
    help_vi, help_en = two_languages("help", blank=True)
    min_value = answer_bound(
        _("minimum"),
        _("Lowest number, scale point or date year; number of choices for multiple."),
    )
    max_value = answer_bound(
        _("maximum"), _("Highest number or scale point; most choices for multiple.")
    )
    max_length = models.PositiveIntegerField(
        _("maximum length"), null=True, blank=True, help_text=_("For text answers.")
    )
    show_if_question = optional_key(
        "self",
        models.RESTRICT,
        related_name="dependent_questions",
        verbose_name=_("show only if the answer to"),
    )
    show_if_values = answer_values(
        _("is one of"), _('Answer values, e.g. [true] or ["yes", "maybe"] or [4, 5].')
    )
    indicator = optional_key(
        Indicator, models.SET_NULL, related_name="questions", verbose_name=_("feeds indicator")
    )
    satisfied_values = answer_values(
        _("satisfied values"), _("Answer values that count as satisfied, e.g. [4, 5].")
    )
    excluded_from_indices = models.BooleanField(
        _("excluded from indices"),
        default=False,
        help_text=_("Demographics, screeners and open text: never scored."),
    )
    personal_data = models.BooleanField(
        _("personal data"),
        default=False,
        help_text=_(
            "Asks for personal data (name, phone, address…): it must be shown only after a "
            "yes/no consent question answered yes, and is never published or exported."
        ),
    )

    class Meta:
        ordering = ["version", "section__position", "position", "id"]
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        constraints = [
            code_unique_in("version", "question"),
            models.CheckConstraint(
                condition=Q(min_value__isnull=True)
                | Q(max_value__isnull=True)
                | Q(min_value__lte=models.F("max_value")),
                name="question_min_not_above_max",
            ),
            models.CheckConstraint(
                condition=~(Q(indicator__isnull=False) & Q(excluded_from_indices=True)),
                name="question_excluded_feeds_no_indicator",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.section_id is not None:
            self.version_id = self.section.version_id
        super().save(*args, **kwargs)

    @property
    def label(self) -> str:
        return localized(self, "label")

    @property
    def help(self) -> str:
        return localized(self, "help")

    # A form that moves several questions in one save (the admin's section and question
    # pages) checks the order of display conditions on the positions the save will give,
    # and sets this so that ``clean()`` does not judge them by the stored neighbours.
    order_checked_by_form = False

    def clean(self) -> None:
        from surveys.validation import question_errors

        if errors := question_errors(self, check_order=not self.order_checked_by_form):
            raise ValidationError(errors)


class Choice(CodeAndText, VersionContent):
    """An answer option of a scale, single- or multiple-choice question."""

    SHOWN_TEXT = "label"

    question = models.ForeignKey(
        Question, on_delete=models.CASCADE, related_name="choices", verbose_name=_("question")
    )
    code = content_code()
    position = content_position()
    label_vi, label_en = two_languages("label", 300)

    class Meta:
        ordering = ["question", "position", "id"]
        verbose_name = _("choice")
        verbose_name_plural = _("choices")
        constraints = [code_unique_in("question", "choice")]

    def owning_version_id(self) -> int | None:
        return (
            Question.objects.filter(pk=self.question_id)
            .values_list("version_id", flat=True)
            .first()
        )

    @property
    def label(self) -> str:
        return localized(self, "label")


class Round(CodeAndText, models.Model):
    """A survey round: a period, open and close times, units covered, the version used."""

    code = models.CharField(_("code"), max_length=32, unique=True, validators=[code_validator])
    name_vi, name_en = two_languages("name", 200)
    period_start = models.DateField(_("period start"), help_text=_("Services used from…"))
    period_end = models.DateField(_("period end"), help_text=_("…until"))
    opens_at = models.DateTimeField(_("opens"))
    closes_at = models.DateTimeField(_("closes"))
    version = models.ForeignKey(
        QuestionnaireVersion,
        on_delete=models.PROTECT,
        related_name="rounds",
        verbose_name=_("questionnaire version"),
        limit_choices_to={"status": QuestionnaireVersion.Status.PUBLISHED},
    )
    units = models.ManyToManyField(Unit, related_name="rounds", verbose_name=_("units covered"))
    owner_unit = optional_key(
        Unit,
        models.PROTECT,
        related_name="local_rounds",
        verbose_name=_("owner province"),
        help_text=_(
            "Empty: a national round. Set: a local round of this province, covering only it; "
            "its results are never published nationally nor ranked."
        ),
    )
    allow_open_link = models.BooleanField(
        _("open link allowed"),
        default=True,
        help_text=_("If off, citizens need a single-use invitation to answer."),
    )
    publish_agency_results = models.BooleanField(
        _("agency results public"),
        default=False,
        db_default=False,  # rows written by older code (a rolling upgrade, a migration) too
        help_text=_(
            "If on, the values per agency of a national round's published results are public; "
            "if off, only national staff and the province's staff see them. A local round's "
            "results are never public."
        ),
    )

    class Variance(models.TextChoices):
        TAYLOR = "taylor", _("Taylor linearization")
        JACKKNIFE = "jackknife", _("jackknife replicates by PSU, each raked again")

    class NationalValue(models.TextChoices):
        POOLED = "pooled", _("pooled over all respondents")
        POPULATION = "population", _("units weighted by their population")

    variance_method = models.CharField(
        _("variance method"),
        max_length=16,
        choices=Variance.choices,
        default=Variance.TAYLOR,
        help_text=_(
            "How standard errors are estimated from the sample design (stratum and PSU of "
            "each response); see the method note in docs/."
        ),
    )
    national_value = models.CharField(
        _("national value"),
        max_length=16,
        choices=NationalValue.choices,
        default=NationalValue.POOLED,
        help_text=_(
            "Pooled over all respondents (the SIPAS method), or each unit's value weighted "
            "by its population from the round's margins."
        ),
    )

    class Meta:
        ordering = ["-opens_at", "code"]
        verbose_name = _("survey round")
        verbose_name_plural = _("survey rounds")
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="round_closes_after_opening"
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="round_period_end_after_start",
            ),
        ]

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            errors.setdefault("closes_at", []).append(_("The round must close after it opens."))
        if self.period_start and self.period_end and self.period_end < self.period_start:
            errors.setdefault("period_end", []).append(
                _("The period must end on or after its start.")
            )
        if self.version_id is not None and self.version.status == QuestionnaireVersion.Status.DRAFT:
            errors.setdefault("version", []).append(
                _("A round must use a published questionnaire version.")
            )
        if self.version_id is not None:
            owner = self.version.questionnaire.owner_unit_id
            if owner is not None and owner != self.owner_unit_id:
                errors.setdefault("version", []).append(
                    _("This questionnaire belongs to another province.")
                )
        if self.pk is not None and self.owner_unit_id is not None:
            others = self.units.exclude(pk=self.owner_unit_id)
            if others.exists():
                errors.setdefault("units", []).append(local_round_units_message())
        if errors:
            raise ValidationError(errors)

    def is_open(self, at: Any = None) -> bool:
        at = at or timezone.now()
        return self.opens_at <= at < self.closes_at

    @property
    def is_local(self) -> bool:
        """A province's own round: never published nationally nor ranked."""
        return self.owner_unit_id is not None


def local_round_units_message() -> str:
    return str(_("A local round covers only its owner province."))


# --- Staff desks: one agency of a unit, or (no agency) the whole unit ---------------------


def desk_fields(
    related_name: str, agency_help: str
) -> tuple[models.ForeignKey, models.ForeignKey, models.ForeignKey]:
    """The ``user``, ``unit`` and ``agency`` of a staff desk (petitions, action plans)."""
    return (
        models.ForeignKey(
            settings.AUTH_USER_MODEL,
            on_delete=models.CASCADE,
            related_name=related_name,
            verbose_name=_("user"),
        ),
        models.ForeignKey(Unit, on_delete=models.CASCADE, verbose_name=_("unit")),
        optional_key(Agency, models.CASCADE, verbose_name=_("agency"), help_text=agency_help),
    )


def desk_constraints(prefix: str) -> list[models.UniqueConstraint]:
    """A user has one desk per agency, and one for the whole unit."""
    # Two partial indexes rather than NULLS NOT DISTINCT, which SQLite lacks.
    return [
        models.UniqueConstraint(
            fields=["user", "unit", "agency"],
            condition=Q(agency__isnull=False),
            name=f"{prefix}_unique_agency",
        ),
        models.UniqueConstraint(
            fields=["user", "unit"],
            condition=Q(agency__isnull=True),
            name=f"{prefix}_unique_unit",
        ),
    ]


class DeskChecks:
    """``clean()`` of a staff desk: its agency belongs to its unit."""

    def clean(self) -> None:
        if self.agency_id and self.unit_id and self.agency.unit_id != self.unit_id:  # type: ignore[attr-defined]
            raise ValidationError({"agency": _("Choose an agency of the unit.")})


class ProvinceStaff(models.Model):
    """A staff account working for one province: it runs that province's own surveys.

    Its questionnaires, local rounds, invitations, paper imports, raw responses and
    recomputes are limited to the province (``surveys.scoping``); the model permissions
    come from the group "Province staff". A user belongs to one province at most.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="province_staff",
        verbose_name=_("user"),
    )
    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="province_staff", verbose_name=_("province")
    )

    class Meta:
        ordering = ["unit__code", "user_id"]
        verbose_name = _("province staff member")
        verbose_name_plural = _("province staff")

    def __str__(self) -> str:
        return f"{self.user} @ {self.unit.code}"


class StratumPopulation(models.Model):
    """The population size of one sampling stratum in a round, for a finite population
    correction (optional: a stratum without a size is treated as infinite).

    Either ``stratum`` names a stratum code as responses carry it, or ``unit`` gives the size
    of a unit whose responses carry no stratum (the unit is then their stratum; see
    ``feedback/design.py``).
    """

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="stratum_populations")
    stratum = models.CharField(
        _("stratum"),
        max_length=64,
        blank=True,
        help_text=_(
            "The stratum code as responses carry it; leave empty and choose a unit "
            "for the responses that carry none."
        ),
    )
    unit = optional_key(
        Unit,
        models.PROTECT,
        related_name="stratum_populations",
        help_text=_("The unit whose responses carry no stratum."),
    )
    population = models.PositiveBigIntegerField(
        _("population"), help_text=_("Number of sampling units (e.g. households) in the stratum.")
    )

    class Meta:
        ordering = ["round", "stratum", "unit__code"]
        verbose_name = _("stratum population")
        verbose_name_plural = _("stratum populations")
        constraints = [
            models.CheckConstraint(
                condition=(Q(stratum="") & Q(unit__isnull=False))
                | (~Q(stratum="") & Q(unit__isnull=True)),
                name="stratum_population_stratum_or_unit",
            ),
            models.CheckConstraint(
                condition=Q(population__gt=0), name="stratum_population_positive"
            ),
            models.UniqueConstraint(
                fields=["round", "stratum"],
                condition=~Q(stratum=""),
                name="stratum_population_once",
            ),
            models.UniqueConstraint(
                fields=["round", "unit"],
                condition=Q(unit__isnull=False),
                name="stratum_population_unit_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stratum or self.unit}: {self.population}"

    def clean(self) -> None:
        if bool(self.stratum) == (self.unit_id is not None):
            raise ValidationError(
                {"stratum": [_("Give either a stratum code or a unit, not both or neither.")]}
            )


# --- Series across questionnaire versions -------------------------------------------------


class VersionMapping(models.Model):
    """Which codes of one questionnaire version correspond to which codes of another.

    Values are compared across rounds of two versions only through such a mapping: the
    change against the previous round, the trend of a unit and the cross-round export
    (docs/series.md). Rounds of one version compare code by code, with no mapping. A
    mapping is edited freely (it is not content of either version); its rows are checked
    against both versions by ``surveys.mapping``.
    """

    from_version = version_key(
        "mappings_from", _("from version"), help_text=_("The earlier version.")
    )
    to_version = version_key("mappings_to", _("to version"), help_text=_("The later version."))
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["from_version__questionnaire__code", "from_version__number", "to_version"]
        verbose_name = _("version mapping")
        verbose_name_plural = _("version mappings")
        constraints = [
            models.UniqueConstraint(
                fields=["from_version", "to_version"], name="version_mapping_once"
            ),
            models.CheckConstraint(
                condition=~Q(from_version=models.F("to_version")),
                name="version_mapping_two_versions",
            ),
        ]

    def __str__(self) -> str:
        code = self.from_version.questionnaire.code
        return f"{code} v{self.from_version.number} → v{self.to_version.number}"

    def clean(self) -> None:
        from surveys.mapping import mapping_errors

        if errors := mapping_errors(self):
            raise ValidationError(errors)


class VersionMappingRow(models.Model):
    """One code of the earlier version and its equivalent in the later one (or none)."""

    class Kind(models.TextChoices):
        QUESTION = "question", _("question")
        INDICATOR = "indicator", _("indicator")

    class Relation(models.TextChoices):
        SAME = "same", _("same")
        REWORDED = "reworded", _("reworded")
        NONE = "none", _("no equivalent")

    mapping = models.ForeignKey(
        VersionMapping, on_delete=models.CASCADE, related_name="rows", verbose_name=_("mapping")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    from_code = models.CharField(_("code in the earlier version"), max_length=32)
    to_code = models.CharField(
        _("code in the later version"),
        max_length=32,
        blank=True,
        help_text=_("Empty when the relation is 'no equivalent'."),
    )
    relation = models.CharField(_("relation"), max_length=16, choices=Relation.choices)

    class Meta:
        ordering = ["mapping", "kind", "from_code"]
        verbose_name = _("mapping row")
        verbose_name_plural = _("mapping rows")
        constraints = [
            models.UniqueConstraint(
                fields=["mapping", "kind", "from_code"], name="mapping_row_from_once"
            ),
            models.UniqueConstraint(
                fields=["mapping", "kind", "to_code"],
                condition=~Q(to_code=""),
                name="mapping_row_to_once",
            ),
            models.CheckConstraint(
                condition=(Q(relation="none") & Q(to_code=""))
                | (~Q(relation="none") & ~Q(to_code="")),
                name="mapping_row_to_code_unless_none",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_code} → {self.to_code or '∅'} ({self.relation})"
