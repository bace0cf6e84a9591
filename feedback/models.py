"""Responses and feedback from citizens (to come: see the response issue)."""
