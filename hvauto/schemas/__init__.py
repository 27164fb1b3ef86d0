"""JSON Schemas shipped with hvauto (package data) and the small validator that reads them.

The validator covers the subset of JSON Schema the shipped schemas use (``$ref`` into ``$defs``,
``type``, ``const``, ``enum``, ``required``, ``properties``, ``additionalProperties``, ``items``,
``minItems``/``maxItems``/``uniqueItems``, ``minimum``/``maximum``, ``pattern``) and reports
*every* problem as ``(key path, reason)``, so a user fixes a spec in one pass.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@functools.cache
def load(name: str) -> dict[str, Any]:
    """A schema by file name, from the installed package (``hvauto/schemas/NAME``)."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def _path(parts: tuple[str | int, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _type_ok(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _describe(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object"):
        if _type_ok(value, name):
            return name
    return "null" if value is None else type(value).__name__


def validate(schema: dict[str, Any], doc: Any) -> list[tuple[str, str]]:
    """Every way ``doc`` breaks ``schema``, as (key path, reason); empty when it conforms."""
    problems: list[tuple[str, str]] = []

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            ref = str(node["$ref"])
            if not ref.startswith("#/"):
                raise ValueError(f"unsupported $ref {ref!r}")
            target: Any = schema
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
        return node

    def check(node: dict[str, Any], value: Any, at: tuple[str | int, ...]) -> None:
        node = resolve(node)
        where = _path(at)
        if "const" in node and value != node["const"]:
            problems.append((where, f"must be {json.dumps(node['const'])}"))
            return
        if "enum" in node and value not in node["enum"]:
            problems.append((where, f"must be one of {', '.join(str(v) for v in node['enum'])} (got {value!r})"))
            return
        wanted = node.get("type")
        if wanted and not _type_ok(value, wanted):
            problems.append((where, f"expected {'an' if wanted[0] in 'aeio' else 'a'} {wanted}, got {_describe(value)}"))
            return
        if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
            problems.append((where, f"{value!r} is not valid here (expected to match {node['pattern']})"))
        if _type_ok(value, "number"):
            if "minimum" in node and value < node["minimum"]:
                problems.append((where, f"must be at least {node['minimum']} (got {value})"))
            if "maximum" in node and value > node["maximum"]:
                problems.append((where, f"must be at most {node['maximum']} (got {value})"))
        if isinstance(value, list):
            if "minItems" in node and len(value) < node["minItems"]:
                problems.append((where, f"needs at least {node['minItems']} item(s)"))
            if "maxItems" in node and len(value) > node["maxItems"]:
                problems.append((where, f"takes at most {node['maxItems']} item(s) (got {len(value)})"))
            if node.get("uniqueItems"):
                seen: list[Any] = []
                for item in value:
                    if item in seen:
                        problems.append((where, f"{item!r} is listed twice"))
                    seen.append(item)
            if "items" in node:
                for i, item in enumerate(value):
                    check(node["items"], item, (*at, i))
        if isinstance(value, dict):
            for key in node.get("required", []):
                if key not in value:
                    problems.append((_path((*at, key)), "is required"))
            props = node.get("properties", {})
            extra = node.get("additionalProperties", True)
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append((where, f"key {key!r} must be a string"))
                    continue
                if key in props:
                    check(props[key], item, (*at, key))
                elif extra is False:
                    known = ", ".join(props) or "none"
                    problems.append((_path((*at, key)), f"unknown key (known keys: {known})"))
                elif isinstance(extra, dict):
                    check(extra, item, (*at, key))

    check(schema, doc, ())
    return problems
