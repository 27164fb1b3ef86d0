"""YAML documents with the line of every value, so each problem found in one is ``FILE:LINE: reason``.

Runbooks and fabric specs load through :func:`load`: a safe loader (no Python tags) that also
refuses duplicate keys and keys that are not names, and records the line of every key and list
item by its path in the document (``("steps", 2, "vm.list", "name")``). :func:`line_of` finds
the line for a path a validator reports, falling back to the nearest enclosing key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from hvauto.errors import ValidationError

Key = tuple[str | int, ...]


class _Marked(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every node, keyed by its path in the document."""


def _yaml_problem(exc: yaml.YAMLError, text: str, source: str, what: str) -> ValidationError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}" if mark else "?"
        return ValidationError([f"{source}:{where}: not valid YAML: {exc.problem or exc}"], what=what)
    if isinstance(exc, yaml.reader.ReaderError):
        # A character YAML does not allow (a control character, say): where it is, and which.
        where = str(text[: exc.position].count("\n") + 1)
        return ValidationError([f"{source}:{where}: not valid YAML: {exc.reason} (character #x{exc.character:04x})"],
                               what=what)
    return ValidationError([f"{source}:1: not valid YAML: {exc}"], what=what)


def load(text: str, source: str, *, what: str) -> tuple[Any, dict[Key, int]]:
    """The document and the line of every key and item, by its path; a YAML problem is one ValidationError."""
    lines: dict[Key, int] = {}
    try:
        loader = _Marked(text)
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text, source, what) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines

        def build(n: yaml.Node, path: Key) -> Any:
            lines[path] = n.start_mark.line + 1
            if isinstance(n, yaml.MappingNode):
                loader.flatten_mapping(n)
                out: dict[Any, Any] = {}
                for k_node, v_node in n.value:
                    key = loader.construct_object(k_node, deep=True)
                    if not isinstance(key, (str, int, float, bool)) or isinstance(key, bool):
                        raise ValidationError([f"{source}:{k_node.start_mark.line + 1}: a key must be a name"],
                                              what=what)
                    key = str(key)
                    if key in out:
                        raise ValidationError([f"{source}:{k_node.start_mark.line + 1}: duplicate key {key!r}"],
                                              what=what)
                    out[key] = build(v_node, path + (key,))
                    lines[path + (key,)] = k_node.start_mark.line + 1
                return out
            if isinstance(n, yaml.SequenceNode):
                return [build(item, (*path, i)) for i, item in enumerate(n.value)]
            return loader.construct_object(n, deep=True)

        return build(node, ()), lines
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text, source, what) from None
    finally:
        loader.dispose()


def line_of(lines: Mapping[Key, int], path: Key) -> int:
    """The line of ``path``, else of its nearest enclosing key that has one, else 1."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)
