"""Audit trail: who changed what, when, before and after (``django-auditlog``)."""
