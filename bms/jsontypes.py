"""JSON shapes: what ``json.loads`` returns and ``json.dumps`` accepts, for data whose keys are not
fixed (a selector's result made plain, an LLM's raw tool arguments, a job's stored result).

Data with a known shape gets a ``TypedDict`` of its own; these aliases are for the rest, read with
``isinstance`` narrowing. The module imports no app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject: TypeAlias = dict[str, JSONValue]
# What a function accepts as JSON: read-only containers, so a ``list[str]`` or ``dict[str, int]`` qualifies
# (``JSONValue``'s ``list``/``dict`` are invariant). Error details are this (bms.errors).
JSONData: TypeAlias = JSONScalar | Sequence["JSONData"] | Mapping[str, "JSONData"]


def json_object(value: object) -> JSONObject:
    """``value`` if it is a JSON object, else an empty one (for reading optional nested parts)."""
    return value if isinstance(value, dict) else {}


def json_objects(value: object) -> list[JSONObject]:
    """The objects in ``value`` if it is a JSON array (other items skipped), else an empty list."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def json_value(data: JSONData) -> JSONValue:
    """``data`` with its containers made lists and dicts, as a stored JSON value holds them."""
    if data is None or isinstance(data, str | int | float | bool):
        return data
    if isinstance(data, Mapping):
        return {str(k): json_value(v) for k, v in data.items()}
    return [json_value(v) for v in data]
