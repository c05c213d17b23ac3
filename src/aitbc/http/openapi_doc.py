"""The OpenAPI document, finished: what the server refuses in any text it is sent is written
into the document too, so that the two agree exactly (a fuzzer checks both ways:
tests/test_schemathesis.py). No text anywhere may hold a NUL character (the request guard
refuses it: SQLite would store it, PostgreSQL refuses it); a free-form JSON value is any JSON
value without one, in its strings and its keys."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

NO_NUL = "^[^\\u0000]*$"
JSON_VALUE_REF = "#/components/schemas/JsonValue"
JSON_VALUE: dict[str, Any] = {
    "description": "Any JSON value whose strings and keys hold no NUL character.",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": JSON_VALUE_REF}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": JSON_VALUE_REF},
        },
    ],
}
_ANNOTATIONS = {"title", "description", "default", "examples", "deprecated"}


def _finish(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _finish(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _finish(value)
    kind = node.get("type")
    if kind == "string" and not ({"pattern", "enum", "const"} & node.keys()):
        node["pattern"] = NO_NUL
    if kind == "object" and node.get("additionalProperties", True) is True:
        # Extra keys are taken (or ignored): they are JSON values like any other.
        node["additionalProperties"] = {"$ref": JSON_VALUE_REF}
        node["propertyNames"] = {"pattern": NO_NUL}


def _any_values(node: Any) -> None:
    """A property that may be anything (``{}`` with annotations only) is a JSON value."""
    if isinstance(node, list):
        for item in node:
            _any_values(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, prop in value.items():
                    if isinstance(prop, dict) and prop.keys() <= _ANNOTATIONS:
                        value[name] = {**prop, "$ref": JSON_VALUE_REF}
            _any_values(value)


def install(app: FastAPI) -> None:
    """Finish the app's document once, when it is first asked for."""
    build = app.openapi

    def finished() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            _any_values(doc)
            _finish(doc)
            doc.setdefault("components", {}).setdefault("schemas", {})["JsonValue"] = JSON_VALUE
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = finished  # type: ignore[method-assign]
