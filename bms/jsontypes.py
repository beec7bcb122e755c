"""JSON shapes: what ``json.loads`` returns and ``json.dumps`` accepts, for data whose keys are not
fixed (a selector's result made plain, an LLM's raw tool arguments, a job's stored result).

Data with a known shape gets a ``TypedDict`` of its own; these aliases are for the rest, read with
``isinstance`` narrowing. The module imports no app.
"""

from __future__ import annotations

from typing import TypeAlias

JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject: TypeAlias = dict[str, JSONValue]


def json_object(value: object) -> JSONObject:
    """``value`` if it is a JSON object, else an empty one (for reading optional nested parts)."""
    return value if isinstance(value, dict) else {}


def json_objects(value: object) -> list[JSONObject]:
    """The objects in ``value`` if it is a JSON array (other items skipped), else an empty list."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
