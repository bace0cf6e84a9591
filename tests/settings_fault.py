"""Settings of the server the Redis fault tests start: the test settings with a real broker.

``config.settings.test`` runs Celery tasks in-process, which would hide a task queued on a
citizen's path while the broker is down; here a task is sent to Redis as in production.
"""

from config.settings.test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
