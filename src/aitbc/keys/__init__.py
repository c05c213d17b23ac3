"""API key administration and `/v1/me`: the HTTP side of ``aitbc.auth``."""
