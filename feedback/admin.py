"""Admin for responses and invitations; paper imports are in ``admin_paper``."""

from feedback import admin_paper  # noqa: F401  (registers the paper-import admin)
