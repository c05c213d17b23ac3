"""What happened, for the people it concerns: the event log, its feed and webhooks."""
