"""Limits shared by every paged read."""

MAX_OFFSET = 1_000_000  # rows a page may skip
