"""The in-process scoring scheduler of the embedded default (no ``REDIS_URL``, tasks in-process).

With a broker, Celery beat recomputes rounds (nightly) and a worker computes runs. Without one
nothing would ever score an open round, so the serving process (``config/wsgi.py``,
``config/asgi.py``) starts this scheduler: a daemon thread that, every
``SCORING_AUTO_MINUTES`` minutes, recomputes and publishes each open round holding a response
submitted since the round's last run started (``selectors.open_rounds_with_new_responses``),
one round after another. A round with nothing new costs two ``EXISTS`` per pass.

One pass at a time: a process runs at most one pass (a lock; a pass still busy when the next
is due makes that one skip), and ``services.start_run`` lets one run per round be running
across processes (a second start joins the running one), so several web processes scoring the
same database do the work once. ``SCORING_AUTO_MINUTES=0`` turns the scheduler off; with a
broker (``CELERY_TASK_ALWAYS_EAGER`` off) it never starts.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


class Scheduler:
    """A thread that scores open rounds with new responses every ``period_seconds``."""

    def __init__(self, *, period_seconds: float) -> None:
        self.period_seconds = period_seconds
        self._stop = threading.Event()
        self._pass = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._loop, name="scoring-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> list[str]:
        """Score the open rounds with new responses now; the codes scored. A pass already
        under way in this process makes this one return ``[]`` at once."""
        from scoring import selectors, services

        if not self._pass.acquire(blocking=False):
            return []
        scored = []
        try:
            for code in selectors.open_rounds_with_new_responses():
                try:
                    run = services.recompute_round(round_code=code)
                except Exception:  # one round's failure must not stop the others
                    logger.exception("in-process scoring of round %s failed", code)
                    continue
                logger.info("in-process scoring: %s run %s %s", code, run.pk, run.status)
                scored.append(code)
        finally:
            connections.close_all()  # this thread's connections only
            self._pass.release()
        return scored

    def _loop(self) -> None:
        while not self._stop.wait(self.period_seconds):
            try:
                self.run_once()
            except Exception:  # e.g. the database is down: try again next period
                logger.exception("in-process scoring pass failed")


_started: Scheduler | None = None
_starting = threading.Lock()


def start_in_process_scheduler() -> Scheduler | None:
    """Start this process's scheduler once, when tasks run in-process and
    ``SCORING_AUTO_MINUTES`` > 0; the running scheduler, or ``None`` when it does not apply."""
    global _started
    minutes = settings.SCORING_AUTO_MINUTES
    if not settings.CELERY_TASK_ALWAYS_EAGER or minutes <= 0:
        return None
    with _starting:
        if _started is None:
            _started = Scheduler(period_seconds=minutes * 60).start()
            logger.info("in-process scoring scheduler: open rounds every %s minutes", minutes)
    return _started
