"""The runbook format's JSON Schema: the shipped base (``schema.json``), the full schema with every
operation's options (``hvauto runbook schema``), and a small checker for the keywords it uses.

The checker is the validator's first pass, so the schema editors see and the rules ``hvauto
runbook validate`` applies cannot drift apart. It supports the subset of JSON Schema 2020-12 the
two schemas use: type, properties, required, additionalProperties, propertyNames, items,
minItems, minLength, minimum, maximum, enum, pattern, anyOf, oneOf and local ``$ref``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from .operations import OPERATIONS, Option

Path_ = tuple[str | int, ...]


@functools.lru_cache(maxsize=1)
def _base_text() -> str:
    return resources.files("hvauto.runbook").joinpath("schema.json").read_text(encoding="utf-8")


def base_schema() -> dict[str, Any]:
    data = json.loads(_base_text())
    assert isinstance(data, dict)
    return data


def option_schema(opt: Option) -> dict[str, Any]:
    forms: dict[str, dict[str, Any]] = {
        "str": {"type": "string"},
        "path": {"type": "string", "minLength": 1},
        "host": {"type": "string", "minLength": 1},
        "int": {"type": "integer"},
        "number": {"type": "number"},
        "bool": {"type": "boolean"},
        "map": {"type": "object"},
        "str[]": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "host[]": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    }
    typed = forms[opt.type]
    if opt.choices:
        typed = {**typed, "enum": list(opt.choices)}
    out: dict[str, Any] = {"anyOf": [typed, {"$ref": "#/$defs/templated"}]}
    if opt.doc:
        out["description"] = opt.doc
    return out


def full_schema() -> dict[str, Any]:
    """The base schema with one ``$defs`` entry per operation: what an editor should validate with."""
    schema = copy.deepcopy(base_schema())
    step = schema["$defs"]["step"]
    step["additionalProperties"] = False
    for name, op in sorted(OPERATIONS.items()):
        ref = "op:" + name
        schema["$defs"][ref] = {
            "type": "object",
            "description": op.summary,
            "additionalProperties": False,
            "required": sorted(k for k, o in op.options.items() if o.required),
            "properties": {k: option_schema(o) for k, o in op.options.items()},
        }
        step["properties"][name] = {"$ref": f"#/$defs/{ref}"}
    step["oneOf"] = [{"required": [name]} for name in sorted(OPERATIONS)]
    return schema


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _describe(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object", "null"):
        if _TYPES[name](value):
            return {"object": "a mapping", "array": "a list", "null": "empty (null)"}.get(name, f"a {name}")
    return type(value).__name__


def _type_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[str]:
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            target = target[part]
        return _type_of(target, root)
    t = schema.get("type", [])
    return list(t) if isinstance(t, list) else [t]


def _best(instance: Any, alternatives: list[Mapping[str, Any]], root: Mapping[str, Any],
          path: Path_) -> tuple[Path_, str]:
    """The most useful reason none of ``alternatives`` fits: the one of the right type says why."""
    typed = [s for s in alternatives if any(_TYPES[t](instance) for t in _type_of(s, root))]
    if len(typed) == 1:
        found = list(errors(instance, typed[0], root, path))
        if found:
            return found[0]
    kinds = sorted({t for s in alternatives for t in _type_of(s, root)})
    if typed or not kinds:
        return path, "is not one of the allowed forms"
    return path, f"expected {' or '.join(kinds)}, got {_describe(instance)}"


def errors(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None,
           path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """Every (path, reason) where ``instance`` breaks ``schema``."""
    root = root or schema
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            target = target[part]
        yield from errors(instance, target, root, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            matching = [s for s in schema[key] if not any(True for _ in errors(instance, s, root, path))]
            if not matching:
                if key == "oneOf" and all("required" in s for s in schema[key]):
                    wanted = ", ".join(s["required"][0] for s in schema[key])
                    yield path, f"needs exactly one of: {wanted}"
                else:
                    yield _best(instance, schema[key], root, path)
            elif key == "oneOf" and len(matching) > 1:
                yield path, "matches more than one of the allowed forms"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in types):
            yield path, f"expected {' or '.join(types)}, got {_describe(instance)}"
            return
    if "enum" in schema and instance not in schema["enum"]:
        yield path, f"{instance!r} is not one of {', '.join(map(str, schema['enum']))}"
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            yield path, "must not be empty"
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            yield path, f"{instance!r} does not match {schema['pattern']}"
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            yield path, f"must be at least {schema['minimum']}"
        if "maximum" in schema and instance > schema["maximum"]:
            yield path, f"must be at most {schema['maximum']}"
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            yield path, f"needs at least {schema['minItems']} item(s)"
        if "items" in schema:
            for i, item in enumerate(instance):
                yield from errors(item, schema["items"], root, (*path, i))
    if isinstance(instance, Mapping):
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in instance:
                yield path, f"missing required key {req!r}"
        for k, v in instance.items():
            if "propertyNames" in schema:
                for _, why in errors(k, schema["propertyNames"], root, (*path, k)):
                    yield (*path, k), f"bad name: {why}"
            if k in props:
                yield from errors(v, props[k], root, (*path, k))
            elif schema.get("additionalProperties", True) is False:
                yield (*path, k), f"unknown key {k!r}"
            elif isinstance(schema.get("additionalProperties"), Mapping):
                yield from errors(v, schema["additionalProperties"], root, (*path, k))
