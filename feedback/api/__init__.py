"""REST API of citizens' responses."""
