"""Paper questionnaires keyed in from CSV or XLSX files (writes in ``services``)."""
