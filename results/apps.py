"""App config for ``results``: the published scores for API consumers and the public.

The last stage of the one-way flow surveys → feedback → scoring → results: it reads
published runs and their scores and never writes them.
"""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ResultsConfig(AppConfig):
    name = "results"
    verbose_name = _("Results")
