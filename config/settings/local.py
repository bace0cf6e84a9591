"""Settings for `make run` on a developer's machine: DEBUG on unless said otherwise."""

import os

if not os.environ.get("DEBUG"):  # unset or empty
    os.environ["DEBUG"] = "true"

from config.settings.base import *  # noqa: F403

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (WhiteNoise warns when it is missing)
