"""JSON Schemas shipped with hvauto (package data), checked with the ``jsonschema`` library.

:func:`validate` reports *every* problem as ``(key path, reason)``, in words a user fixes a file
with in one pass: it names the key and what is expected (``expected an integer, got a string``,
``unknown key 'extar' (did you mean 'extra'?)``), one problem per key, where jsonschema's own
messages would say ``Additional properties are not allowed ('a', 'b' were unexpected)``. The
caller maps a path to its file and line (:mod:`hvauto.yamldoc`).

Two departures from plain jsonschema, both stricter: ``integer`` is a whole number written as
one (``2.0`` is a number, not an integer, as in YAML), and a ``pattern`` ending in ``$`` matches
only at the very end of the value (in Python's ``re``, ``$`` also matches before a trailing
newline, so ``"Converged\\n"`` would pass ``^[A-Za-z]+$``; ECMA 262, which editors use, agrees
with the stricter reading). jsonschema is imported when a document is checked, not before.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

Path_ = tuple[str | int, ...]

_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


@functools.cache
def load(name: str) -> dict[str, Any]:
    """A schema by file name, from the installed package (``hvauto/schemas/NAME``)."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def describe(value: Any) -> str:
    """What a YAML value is, in words: ``a string``, ``a list``, ``empty (null)`` ..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return "empty (null)" if value is None else type(value).__name__


def dotted(path: Iterable[str | int]) -> str:
    """``("vnics", 1, "vlan")`` -> ``vnics[1].vlan``; the empty path is ``(top level)``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def anchored(pattern: str) -> str:
    """``pattern`` with each ``$`` that ends the value in ECMA 262 written as Python's ``\\Z``."""
    out: list[str] = []
    escaped = in_class = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            out.append(r"\Z")
            continue
        out.append(ch)
    return "".join(out)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(anchored(pattern))


@functools.cache
def _validator_class() -> type[jsonschema.protocols.Validator]:
    import jsonschema

    def pattern(validator: Any, patrn: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not _compiled(patrn).search(instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    base = jsonschema.Draft202012Validator
    types = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
    cls: type[jsonschema.protocols.Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        base, validators={"pattern": pattern}, type_checker=types)
    return cls


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise jsonschema's SchemaError unless ``schema`` is a valid 2020-12 schema."""
    _validator_class().check_schema(dict(schema))


def validate(schema: Mapping[str, Any], doc: Any) -> list[tuple[Path_, str]]:
    """Every way ``doc`` breaks ``schema``, as (key path, reason), in document order; empty when it conforms."""
    validator = _validator_class()(schema)
    found: list[tuple[Path_, str]] = []
    for error in validator.iter_errors(doc):
        for problem in _explain(error, schema):
            if problem not in found:
                found.append(problem)
    return found


# -- jsonschema's errors in a user's words ---------------------------------------------------------------

def _resolve(node: Any, root: Mapping[str, Any]) -> Any:
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _types(node: Any, root: Mapping[str, Any]) -> list[str]:
    node = _resolve(node, root)
    if not isinstance(node, Mapping):
        return []
    t = node.get("type", [])
    return list(t) if isinstance(t, list) else [t]


def _fits(value: Any, kind: str) -> bool:
    return {
        "object": isinstance(value, Mapping),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }.get(kind, False)


def _expected(kinds: Sequence[str], value: Any) -> str:
    return f"expected {' or '.join(_TYPE_WORDS.get(k, k) for k in kinds)}, got {describe(value)}"


def _unknown_key(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known) or 'none'}"
    return f"unknown key {key!r} ({hint})"


def _explain(error: jsonschema.ValidationError, root: Mapping[str, Any]) -> list[tuple[Path_, str]]:
    path: Path_ = tuple(error.absolute_path)
    keyword: Any = error.validator
    wanted: Any = error.validator_value
    value: Any = error.instance
    node: Any = error.schema
    if "propertyNames" in error.relative_schema_path:
        # jsonschema checks a key against propertyNames with the key as the instance, at its mapping's path.
        why = f"{value!r} does not match {wanted}" if keyword == "pattern" else error.message
        return [((*path, str(value)), f"bad name: {why}")]
    if keyword == "type":
        return [(path, _expected(wanted if isinstance(wanted, list) else [wanted], value))]
    if keyword == "enum":
        return [(path, f"must be one of {', '.join(map(str, wanted))} (got {value!r})")]
    if keyword == "const":
        return [(path, f"must be {json.dumps(wanted)} (got {json.dumps(value, default=str)})")]
    if keyword == "required":
        # At the missing key's own path (its line is its mapping's): "switch: is required".
        return [((*path, k), "is required") for k in wanted if isinstance(value, Mapping) and k not in value]
    if keyword == "additionalProperties" and isinstance(value, Mapping) and isinstance(node, Mapping):
        props = list(node.get("properties", {}))
        patterns = [_compiled(p) for p in node.get("patternProperties", {})]
        return [((*path, k), _unknown_key(str(k), props)) for k in value
                if k not in props and not any(p.search(str(k)) for p in patterns)]
    if keyword == "pattern":
        what = node.get("description") if isinstance(node, Mapping) else None
        return [(path, f"{value!r} is not {what}" if what else f"{value!r} does not match {wanted}")]
    if keyword == "minLength":
        return [(path, "must not be empty" if wanted == 1 else f"must be at least {wanted} characters long")]
    if keyword == "maxLength":
        return [(path, f"must be at most {wanted} characters long (got {len(value)})")]
    if keyword == "minimum":
        return [(path, f"must be at least {wanted} (got {value})")]
    if keyword == "maximum":
        return [(path, f"must be at most {wanted} (got {value})")]
    if keyword == "minItems":
        return [(path, f"needs at least {wanted} item(s)")]
    if keyword == "maxItems":
        return [(path, f"takes at most {wanted} item(s) (got {len(value)})")]
    if keyword == "uniqueItems" and isinstance(value, list):
        seen: list[Any] = []
        twice: list[Any] = []
        for item in value:
            if item in seen and item not in twice:
                twice.append(item)
            seen.append(item)
        return [(path, f"{item!r} is listed twice") for item in twice]
    if keyword in ("anyOf", "oneOf"):
        return [_alternatives(error, root)]
    return [(path, error.message)]


def _alternatives(error: jsonschema.ValidationError, root: Mapping[str, Any]) -> tuple[Path_, str]:
    """The most useful reason none of the forms fits: the one form of the right type says why."""
    path: Path_ = tuple(error.absolute_path)
    forms: list[Any] = list(error.validator_value)  # type: ignore[arg-type]
    value: Any = error.instance
    if not error.context:  # oneOf: more than one form fits
        return path, "matches more than one of the allowed forms"
    if error.validator == "oneOf" and all(isinstance(f, Mapping) and set(f) == {"required"} for f in forms):
        return path, f"needs exactly one of: {', '.join(str(f['required'][0]) for f in forms)}"
    typed = [i for i, f in enumerate(forms) if any(_fits(value, t) for t in _types(f, root))]
    if len(typed) == 1:
        inner = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == typed[0]]
        for sub in inner:
            explained = _explain(sub, root)
            if explained:
                return explained[0]
    kinds = sorted({t for f in forms for t in _types(f, root)})
    if typed or not kinds:
        return path, "is not one of the allowed forms"
    return path, _expected(kinds, value)
