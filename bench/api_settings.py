"""Settings of the API benchmark's server: production settings plus a bare view's URLconf."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
