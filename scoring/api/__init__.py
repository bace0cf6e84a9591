"""REST API of scoring runs."""
