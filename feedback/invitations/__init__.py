"""Single-use invitations to answer a round (writes in ``services``)."""
