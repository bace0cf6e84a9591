"""What citizens send: survey responses and feedback (built on ``surveys``)."""
