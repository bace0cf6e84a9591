"""Review of responses: set aside or taken back (writes in ``services``, reads in ``selectors``)."""
