"""How GPU and AI model names are compared: case-, space- and dash-insensitively."""

from __future__ import annotations

import re

from aitbc.errors import Invalid

_IGNORED = re.compile(r"[\s_-]+")


def model_key(name: str) -> str:
    return _IGNORED.sub("", name).lower()


def named_key(name: str) -> str:
    """The key of a model named to list a GPU as, or to price. A name of nothing but
    spaces, dashes and underscores names no model (422 ``invalid_model``)."""
    key = model_key(name)
    if not key:
        raise Invalid(f"{name!r} names no model.", code="invalid_model")
    return key


def wanted_key(name: str | None) -> str | None:
    """The key of a model a client asks for (None: any). A name that names no model is
    refused: taken as any, it would match every GPU."""
    return named_key(name) if name else None


def like_pattern(user_pattern: str) -> str:
    """A substring LIKE pattern over model keys; ``*`` in the user's pattern matches anything."""
    escaped = model_key(user_pattern).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped.replace("*", "%") + "%"
