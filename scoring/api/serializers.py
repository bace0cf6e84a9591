"""Schema of the run document (``scoring.api.views.run_document``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from scoring.models import Run


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    round = serializers.CharField(help_text=_("Round code."))
    status = serializers.ChoiceField(choices=Run.Status.choices)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    published_at = serializers.DateTimeField(allow_null=True)
    responses = serializers.IntegerField(
        help_text=_("Responses the run computed from (excluded by review: not counted).")
    )
    excluded = serializers.DictField(
        help_text=_(
            "Responses excluded by review and left out of the run: `responses` in all, "
            "`units` unit code → count."
        )
    )
    answers = serializers.IntegerField(help_text=_("Answers the run computed from."))
    versions = serializers.ListField(child=serializers.DictField())
    settings = serializers.DictField(help_text=_("Settings used, e.g. MIN_PUBLISH_N."))
    code_version = serializers.CharField(allow_blank=True)
    progress = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
