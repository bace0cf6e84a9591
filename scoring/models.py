"""Scoring runs and indicator values (to come: see the scoring issue)."""
