"""Query parameters of the results lists (django-filter): a bad value is a 400 naming it."""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django.db.models import Case, F, QuerySet, When
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ValidationError

from scoring.models import Run, Score
from surveys.models import Indicator, Unit


def codes(value: str) -> list[str]:
    return [code.strip() for code in value.split(",") if code.strip()]


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet that refuses a typed parameter given blank (``?kind=``, ``?valid_on=``).

    django-filter reads a blank value as "no filter"; the schema gives these parameters an
    enum or a format that a blank value is outside of, so it is a 400 naming the parameter.
    Free-text parameters (``region``, a round code) stay optional when blank.
    """

    TYPED = (
        django_filters.ChoiceFilter,
        django_filters.DateFilter,
        django_filters.BooleanFilter,
        django_filters.NumberFilter,
    )

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, declared in self.filters.items():
            if isinstance(declared, self.TYPED) and self.data.get(name, None) == "":
                self.form.add_error(name, _("Give a value, or leave the parameter out."))
                valid = False
        return valid


class ScoreFilter(StrictFilterSet):
    """Filters of ``scores/`` (the round is the view's: it picks the published run)."""

    ORDERINGS = {
        "indicator": ("indicator__position", "indicator__code", "-scope", "unit__code"),
        "unit": ("-scope", "unit__code", "indicator__position", "indicator__code"),
        "-unit": ("scope", "-unit__code", "indicator__position", "indicator__code"),
        "rank": (F("rank").asc(nulls_last=True), "indicator__position", "unit__code"),
        "-rank": (F("rank").desc(nulls_last=True), "indicator__position", "unit__code"),
        "n": ("n", "indicator__position", "unit__code"),
        "-n": ("-n", "indicator__position", "unit__code"),
    }

    indicator = django_filters.CharFilter(
        method="filter_indicator",
        label=_("Indicator codes, comma-separated (e.g. SIPAS,POL,SVC)."),
    )
    unit = django_filters.CharFilter(
        method="filter_unit",
        label=_("Unit codes, comma-separated; 'national' for the national value."),
    )
    suppressed = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        coerce=lambda value: value == "true",
        label=_("true: only suppressed values; false: only published ones."),
    )
    ordering = django_filters.ChoiceFilter(
        method="order",
        choices=[(key, key) for key in [*ORDERINGS, "value", "-value"]],
        label=_("Sort order; suppressed values always come last when sorting by value."),
    )

    class Meta:
        model = Score
        fields = ["indicator", "unit", "suppressed"]

    def __init__(self, *args: Any, version_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version_id = version_id

    def filter_indicator(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        wanted = set(codes(value))
        known = set(
            Indicator.objects.filter(version_id=self.version_id, code__in=wanted).values_list(
                "code", flat=True
            )
        )
        if unknown := sorted(wanted - known):
            raise ValidationError(
                {name: [_("Unknown indicator in this round: %s") % ", ".join(unknown)]}
            )
        return queryset.filter(indicator__code__in=wanted)

    def filter_unit(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        wanted = set(codes(value))
        national = "national" in wanted
        wanted.discard("national")
        known = set(Unit.objects.filter(code__in=wanted).values_list("code", flat=True))
        if unknown := sorted(wanted - known):
            raise ValidationError({name: [_("Unknown unit: %s") % ", ".join(unknown)]})
        chosen = queryset.filter(unit__code__in=wanted, scope=Score.Scope.UNIT)
        if national:
            chosen = chosen | queryset.filter(scope=Score.Scope.NATIONAL)
        return chosen

    def order(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value in ("value", "-value"):
            # Order by the published value only: a suppressed value must not show through
            # its place in the order.
            shown = Case(When(suppressed=False, then="value"))
            by_value = shown.desc(nulls_last=True) if value == "-value" else shown.asc()
            return queryset.order_by("suppressed", by_value, "-scope", "unit__code")
        return queryset.order_by(*self.ORDERINGS[value])


class UnitFilter(StrictFilterSet):
    kind = django_filters.ChoiceFilter(choices=Unit.Kind.choices)
    region = django_filters.CharFilter(lookup_expr="iexact")
    valid_on = django_filters.DateFilter(
        method="filter_valid_on", label=_("Units existing on this day (YYYY-MM-DD).")
    )
    round = django_filters.CharFilter(
        method="filter_round", label=_("Units covered by this round (its code).")
    )
    ordering = django_filters.OrderingFilter(fields=(("code", "code"), ("name", "name")))

    class Meta:
        model = Unit
        fields = ["kind", "region", "valid_on", "round"]

    def filter_valid_on(self, queryset: QuerySet, name: str, value: datetime.date) -> QuerySet:
        return queryset.exclude(valid_from__gt=value).exclude(valid_to__lt=value)

    def filter_round(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # National rounds only: a province's local round is not part of the public results.
        return queryset.filter(rounds__code=value, rounds__owner_unit__isnull=True)


class RunFilter(StrictFilterSet):
    round = django_filters.CharFilter(field_name="round__code", label=_("Round code."))
    status = django_filters.ChoiceFilter(choices=Run.Status.choices)
    ordering = django_filters.OrderingFilter(
        fields=(("started_at", "started_at"), ("published_at", "published_at"), ("id", "id"))
    )

    class Meta:
        model = Run
        fields = ["round", "status"]
