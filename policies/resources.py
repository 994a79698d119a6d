"""Reading planned resources: the ones of a type, the strings in their inputs, a JSON input, siblings under one
parent, the stack's URN. What every rule module uses."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from policies.model import Resource, StackContext


def of_type(resources: list[Resource], suffix: str) -> list[Resource]:
    return [r for r in resources if r.type == suffix or r.type.endswith(f":{suffix}")]


def strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def stack_urn(resources: list[Resource], context: StackContext) -> str:
    return next((r.urn for r in resources if r.type == "pulumi:pulumi:Stack"), f"stack:{context.stack}")


def siblings(resources: list[Resource], bucket: Resource, type_: str) -> list[Resource]:
    return [r for r in of_type(resources, type_) if r.parent == bucket.parent]


def parsed_json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None
