"""How GPU and AI model names are compared: case-, space- and dash-insensitively."""

from __future__ import annotations

import re

_IGNORED = re.compile(r"[\s_-]+")


def model_key(name: str) -> str:
    return _IGNORED.sub("", name).lower()


def like_pattern(user_pattern: str) -> str:
    """A substring LIKE pattern over model keys; ``*`` in the user's pattern matches anything."""
    escaped = model_key(user_pattern).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped.replace("*", "%") + "%"
