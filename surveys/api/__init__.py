"""REST API of the survey frame."""
