"""Model fields that several apps declare alike: texts in two languages, a reference to
the account that did something. Each helper returns new field instances, so a model keeps
its own columns (and its migrations see the same fields as when they were written out)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# The Vietnamese and English labels of each bilingual text, written out for translation.
_TWO_LANGUAGE_LABELS = {
    "name": (_("name (Vietnamese)"), _("name (English)")),
    "title": (_("title (Vietnamese)"), _("title (English)")),
    "description": (_("description (Vietnamese)"), _("description (English)")),
    "intro": (_("introduction (Vietnamese)"), _("introduction (English)")),
    "label": (_("label (Vietnamese)"), _("label (English)")),
    "help": (_("help text (Vietnamese)"), _("help text (English)")),
}


def two_languages(
    text: str, max_length: int | None = None, *, blank: bool = False
) -> tuple[models.Field, models.Field]:
    """The fields ``<text>_vi`` and ``<text>_en``: a ``CharField`` of ``max_length``, or a
    ``TextField`` without one. The English text is always optional."""
    vi_label, en_label = _TWO_LANGUAGE_LABELS[text]
    if max_length is None:
        return models.TextField(vi_label, blank=blank), models.TextField(en_label, blank=True)
    return (
        models.CharField(vi_label, max_length=max_length, blank=blank),
        models.CharField(en_label, max_length=max_length, blank=True),
    )


def account_reference(
    verbose_name: str, related_name: str | None = "+", **kwargs: object
) -> models.ForeignKey:
    """The account that did something (submitted, reviewed, wrote): kept when the account
    is deleted, as empty."""
    return optional_key(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        related_name=related_name,
        verbose_name=verbose_name,
        **kwargs,
    )


def optional_key(to: object, on_delete: object, **kwargs: object) -> models.ForeignKey:
    """A foreign key that may be empty (``null`` in the database, ``blank`` in forms)."""
    return models.ForeignKey(to, on_delete=on_delete, null=True, blank=True, **kwargs)
