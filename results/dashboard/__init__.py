"""Public dashboard of published results (server-rendered pages)."""
