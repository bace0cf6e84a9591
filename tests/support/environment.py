"""Settings read from the environment by a fresh interpreter (``processes.run_django``)."""

from __future__ import annotations

from tests.support.processes import run_django

LOCAL = "config.settings.local"


def printed(code: str, settings: str = LOCAL, **env: str) -> str:
    """What ``code`` prints once Django is set up on the ``settings`` module with ``env``;
    the interpreter must exit cleanly."""
    result = run_django(code, DJANGO_SETTINGS_MODULE=settings, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(settings: str = LOCAL, **env: str) -> str:
    """The error output of an interpreter that must fail to set Django up on the ``settings``
    module with ``env``."""
    result = run_django("", DJANGO_SETTINGS_MODULE=settings, **env)
    assert result.returncode != 0
    return result.stderr
