"""Web drafts: answers saved step by step and resumed from a link (writes in ``services``)."""
