"""Citizen petitions (phản ánh, kiến nghị): submitting, tracking, handling and rating."""
