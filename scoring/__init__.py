"""Satisfaction indicators computed from responses (reads ``feedback``, never writes it)."""
