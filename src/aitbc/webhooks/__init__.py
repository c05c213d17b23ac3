"""Webhooks: an owner's events posted to a URL of theirs, signed, retried, logged."""
