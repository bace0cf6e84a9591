"""Admin for paper-form imports (to come)."""
