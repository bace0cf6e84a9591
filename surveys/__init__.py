"""Survey frame and questionnaires: units, agencies, rounds, versioned questionnaires."""
