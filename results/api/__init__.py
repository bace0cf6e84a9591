"""REST API of published results."""
