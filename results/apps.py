"""App config for ``results``: the published scores for API consumers and the public.

The last stage of the one-way flow surveys → feedback → scoring → results: it reads
published runs and their scores and never writes them.
"""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ResultsConfig(AppConfig):
    name = "results"
    verbose_name = _("Results")

    def ready(self) -> None:
        # Tell every serving process when a publication changes (results.publications).
        from django.db.models.signals import post_delete, post_save

        from results import publications
        from scoring.models import Run
        from surveys.models import Round

        post_save.connect(publications.run_saved, sender=Run, dispatch_uid="results-run-saved")
        post_delete.connect(publications.deleted, sender=Run, dispatch_uid="results-run-deleted")
        post_save.connect(
            publications.round_saved, sender=Round, dispatch_uid="results-round-saved"
        )
        post_delete.connect(
            publications.deleted, sender=Round, dispatch_uid="results-round-deleted"
        )
