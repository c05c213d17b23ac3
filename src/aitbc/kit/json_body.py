"""What every JSON request body must be before any route sees it: valid JSON, no deeper than
``MAX_DEPTH``, with finite numbers only. Python's parser (and so FastAPI's) would take NaN,
Infinity and 1e309 (as infinity), which SQLite then stores and PostgreSQL refuses; and a
deeply nested body breaks code that walks it. Checked once, the same on both databases."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
# A surrogate written as an escape: the only way one reaches a parsed string, since UTF-8
# text cannot hold one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotFinite(text)
    return value


def _constant(name: str) -> Any:
    raise _NotFinite(name)


def _depth(value: Any) -> int:
    """How deep arrays and objects nest (a scalar is 0), without recursion."""
    deepest, level = 0, [(value, 1)]
    while level:
        node, depth = level.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                level.append((child, depth + 1))
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
    return deepest


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string in the value (keys included) holds half of a surrogate pair,
    which is no character: it cannot be encoded, stored or sent back."""
    level = [value]
    while level:
        node = level.pop()
        if isinstance(node, str):
            try:
                node.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            level.extend(node.keys())
            level.extend(node.values())
        elif isinstance(node, list):
            level.extend(node)
    return False


def problem(body: bytes) -> str | None:
    """Why the body is not acceptable JSON, as a sentence for the client; None when it is."""
    try:
        value = json.loads(body, parse_float=_finite, parse_constant=_constant)
    except _NotFinite as exc:
        return (
            f"Numbers in the body must be finite; {str(exc)[:20]!r} is not "
            "(NaN, Infinity and numbers beyond a 64-bit float are refused)."
        )
    except RecursionError:
        return f"The body nests arrays or objects more than {MAX_DEPTH} levels deep."
    except UnicodeDecodeError:
        return "The body is not valid JSON: it is not UTF-8 text."
    except json.JSONDecodeError as exc:
        return (
            f"The body is not valid JSON: {exc.msg.lower()} at line {exc.lineno}, "
            f"column {exc.colno}."
        )
    except ValueError as exc:  # an integer with thousands of digits
        return f"The body is not valid JSON: {str(exc)[:80]}."
    if _depth(value) > MAX_DEPTH:
        return f"The body nests arrays or objects more than {MAX_DEPTH} levels deep."
    if _SURROGATE_ESCAPE.search(body) is not None and _has_lone_surrogate(value):
        return "The body is not valid JSON text: it holds an unpaired surrogate (\\ud800-\\udfff)."
    return None
