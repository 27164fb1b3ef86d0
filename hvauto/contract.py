"""Output contracts: a template's declared ``result`` shape, as JSON Schema, and the check of an answer.

A template header writes its output in a short form that reads like the JSON it describes;
:func:`schema` turns it into JSON Schema (draft 2020-12), which is what answers are validated
against (:func:`validate`) and what tooling may export::

    vms:                        # a mapping is an object: every key required, no other key allowed
      - name: str               # a one-item list is an array of that item
        memory_bytes: int
        host: str?              # a trailing ? allows null
        note?: str              # a key ending in ? may be absent
        state: Running|Off      # bare words joined by | (not type names) are an enumeration
    counts: {"*": int}          # the key "*": any key, each value of that type
    job: migration_job?         # a name from templates/_types.yaml

Types: ``str``, ``int``, ``num``, ``bool``, ``any``, ``null``, unions with ``|`` (``str|int``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from .errors import ContractError

SCALARS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "num": {"type": "number"},
    "bool": {"type": "boolean"},
    "null": {"type": "null"},
    "any": {},
}


class ContractSyntaxError(ValueError):
    """The short form cannot be read (a template author's mistake)."""


def schema(spec: Any, types: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of ``spec`` (the short form); ``types`` are the shared named shapes."""
    types = types or {}
    defs: dict[str, Any] = {}

    def named(name: str) -> dict[str, Any]:
        if name not in defs:
            defs[name] = {}  # a recursive reference terminates
            defs[name] = convert(types[name], f"types.{name}")
        return {"$ref": f"#/$defs/{name}"}

    def word(text: str, where: str) -> dict[str, Any]:
        nullable = text.endswith("?")
        text = text[:-1] if nullable else text
        parts = [p.strip() for p in text.split("|")]
        known = [p in SCALARS or p in types for p in parts]
        if all(known):
            options = [SCALARS[p] if p in SCALARS else named(p) for p in parts]
        elif not any(known) and len(parts) > 1:
            options = [{"enum": parts}]
        else:
            bad = next(p for p, k in zip(parts, known, strict=True) if not k)
            raise ContractSyntaxError(f"{where}: unknown type {bad!r}")
        if nullable:
            options.append(SCALARS["null"])
        return options[0] if len(options) == 1 else {"anyOf": options}

    def convert(node: Any, where: str) -> dict[str, Any]:
        if isinstance(node, str):
            return word(node, where)
        if isinstance(node, list):
            if len(node) != 1:
                raise ContractSyntaxError(f"{where}: a list holds exactly one item shape")
            return {"type": "array", "items": convert(node[0], f"{where}[]")}
        if isinstance(node, Mapping):
            if set(node) == {"*"}:
                return {"type": "object", "additionalProperties": convert(node["*"], f"{where}.*")}
            props: dict[str, Any] = {}
            required: list[str] = []
            for raw_key, value in node.items():
                key = str(raw_key)
                optional = key.endswith("?")
                key = key[:-1] if optional else key
                props[key] = convert(value, f"{where}.{key}")
                if not optional:
                    required.append(key)
            return {"type": "object", "properties": props, "required": required, "additionalProperties": False}
        if node is None:
            return SCALARS["null"]
        raise ContractSyntaxError(f"{where}: {node!r} is not a shape")

    root = convert(spec, "output")
    if defs:
        root = {**root, "$defs": defs}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **root}


@functools.lru_cache(maxsize=256)
def _validator(template: str, schema_json: str) -> Any:
    import jsonschema  # only when an answer is checked: not on the --help path

    return jsonschema.Draft202012Validator(json.loads(schema_json))


def _where(path: Any) -> str:
    out = "result"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


#: The JSON types of the schemas :func:`schema` writes, as Draft 2020-12 checks them
#: (an integer-valued float is an integer; a bool is neither integer nor number).
_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_KEYWORDS = frozenset({"$schema", "$defs", "$ref", "type", "properties", "required", "additionalProperties",
                       "items", "enum", "anyOf"})


class _Unknown(Exception):
    """A schema beyond what :func:`schema` writes: jsonschema decides."""


def _conforms(node: Mapping[str, Any], data: Any, defs: Mapping[str, Any]) -> bool:
    """Whether ``data`` is valid, for exactly the vocabulary :func:`schema` writes.

    Answers are almost always valid, so this check runs first and jsonschema (about 70 ms to
    import) is asked only for the messages of an answer that is not, or for a keyword not here.
    """
    if not _KEYWORDS.issuperset(node):
        raise _Unknown
    if "$ref" in node:
        ref = node["$ref"]
        if not (isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs):
            raise _Unknown
        if not _conforms(defs[ref[8:]], data, defs):
            return False
    kind = node.get("type")
    if kind is not None and not (isinstance(kind, str) and kind in _TYPES):
        raise _Unknown
    if kind is not None and not _TYPES[kind](data):
        return False
    if "enum" in node and not (isinstance(data, str) and data in node["enum"]):
        if not all(isinstance(e, str) for e in node["enum"]):
            raise _Unknown
        return False
    if "anyOf" in node and not any(_conforms(option, data, defs) for option in node["anyOf"]):
        return False
    if isinstance(data, list) and "items" in node:
        if not all(_conforms(node["items"], item, defs) for item in data):
            return False
    if isinstance(data, dict):
        props = node.get("properties", {})
        if any(key not in data for key in node.get("required", ())):
            return False
        extra = node.get("additionalProperties", True)
        for key, value in data.items():
            if key in props:
                if not _conforms(props[key], value, defs):
                    return False
            elif extra is False:
                return False
            elif isinstance(extra, Mapping) and not _conforms(extra, value, defs):
                return False
    return True


def conforms(output_schema: Mapping[str, Any], data: Any) -> bool | None:
    """True or False when the quick check can tell, None when only jsonschema can."""
    try:
        return _conforms(output_schema, data, output_schema.get("$defs", {}))
    except _Unknown:
        return None


def problems(template: str, output_schema: Mapping[str, Any], data: Any) -> list[str]:
    """Every way ``data`` breaks the template's output contract, each naming the field."""
    if conforms(output_schema, data):
        return []
    validator = _validator(template, json.dumps(output_schema, sort_keys=True))
    found = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        found.append(f"{_where(err.absolute_path)}: {err.message}")
    return found


def validate(template: str, output_schema: Mapping[str, Any], data: Any, *, host: str | None = None) -> None:
    """Raise :class:`ContractError` naming the template and each field when ``data`` breaks the contract."""
    found = problems(template, output_schema, data)
    if found:
        raise ContractError(template, found, host=host)


__all__ = ["ContractSyntaxError", "conforms", "problems", "schema", "validate"]
