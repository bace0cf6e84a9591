"""Celery tasks of the feedback app: thin wrappers around services."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.db import OperationalError


class PaperImportTask(Task):
    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # Retries are exhausted (or the error was not transient): say so on the import.
        from feedback.paper import services as paper

        import_id = kwargs.get("import_id", args[0] if args else None)
        if import_id is not None:
            # The error's own text may quote a cell (a database error does): the log has it.
            paper.fail_paper_import(import_id=import_id, error=paper.stopped_message(import_id))


@shared_task(
    name="feedback.import_paper_forms",
    base=PaperImportTask,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def import_paper_forms(import_id: int) -> dict[str, Any]:
    """Import the rows of a paper-form file; a retry resumes after the last committed row."""
    from feedback.paper import services as paper

    done = paper.run_paper_import(import_id=import_id)
    return {"status": done.status, "accepted": done.accepted_rows, "rejected": done.rejected_rows}


@shared_task(name="feedback.requeue_stalled_paper_imports", ignore_result=True)
def requeue_stalled_paper_imports() -> list[int]:
    """Every minute: queue again the paper imports no worker runs (see the service)."""
    from feedback.paper import services as paper

    return paper.requeue_stalled_paper_imports()


@shared_task(name="feedback.purge_expired_drafts", acks_late=True)
def purge_expired_drafts() -> int:
    """Delete web drafts whose resume link has expired (scheduled hourly by beat)."""
    from feedback.drafts import services as drafts

    return drafts.purge_expired()


@shared_task(name="feedback.remind_petitions_near_deadline", acks_late=True)
def remind_petitions_near_deadline() -> int:
    """E-mail handlers about petitions close to their deadline (scheduled daily by beat)."""
    from feedback.petitions import services

    return services.remind_petitions_near_deadline()
