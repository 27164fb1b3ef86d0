"""The runbook format's JSON Schema: the shipped base (``schema.json``) and the full schema with
every operation's options (``hvauto runbook schema``).

The base schema is the validator's first pass (:func:`errors`, jsonschema through
:mod:`hvauto.schemas`), so the schema editors see and the rules ``hvauto runbook validate``
applies cannot drift apart.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from hvauto import schemas

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


def errors(instance: Any, schema: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    """Every (path, reason) where ``instance`` breaks ``schema`` (checked by jsonschema)."""
    yield from schemas.validate(schema, instance)


#: What a value is, in words (the option checks of the loader say it the same way).
_describe = schemas.describe
