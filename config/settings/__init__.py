"""Settings modules: ``base`` (read from the environment), ``local``, ``production``, ``test``."""
