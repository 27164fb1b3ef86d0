"""YAML documents with the line of every value, so each problem found in one is ``FILE:LINE: reason``.

Runbooks and fabric specs load through :func:`load`: a safe loader (no Python tags) that also
refuses duplicate keys and keys that are not names, and records the line of every key and list
item by its path in the document (``("steps", 2, "vm.list", "name")``). :func:`line_of` finds
the line for a path a validator reports, falling back to the nearest enclosing key.

Every file hvauto reads as input (runbooks, vars files, fabric specs, inventories and the user's
config.toml) comes through :func:`read_file` and every YAML document through :func:`load` (or
:func:`safe_load` where no lines are needed), which bound what a hostile file can cost:

* a regular file only (a FIFO would block, a device never ends) of at most :data:`MAX_BYTES`;
* at most :data:`MAX_VALUES` values once aliases are expanded (a "billion laughs" alias bomb is
  small on disk and exponential in memory) and at most :data:`MAX_DEPTH` levels of nesting (an
  alias that contains itself, ``steps: &s [*s]``, is infinitely deep);
* text only: a string that cannot be sent as UTF-8 (``"\\ud800"``) is refused where it is.

Each limit is a validation problem (exit 2; an inventory's is a configuration error, exit 3),
never a MemoryError, a RecursionError or a hang. The limits are in the README.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from hvauto import text as texts
from hvauto.errors import ValidationError

Key = tuple[str | int, ...]

#: The most values (scalars, lists, mappings) one YAML document may hold with its aliases expanded.
MAX_VALUES = 100_000
MAX_BYTES, MAX_DEPTH, read_file = texts.MAX_BYTES, texts.MAX_DEPTH, texts.read_file


class TooBig(Exception):
    """A document over one of the limits (an alias bomb, an alias that contains itself, a file too large)."""


class Refused(ValidationError):
    """A document refused for what it would cost (over a limit) or carry (not text), not for its syntax."""


def safe_load(text: str, source: str, *, what: str) -> Any:
    """``yaml.safe_load`` within the same bounds as :func:`load` (duplicate keys refused too)."""
    return load(text, source, what=what)[0]


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


def _flow_depth(text: str) -> tuple[int, int]:
    """The deepest nesting of flow collections (``[`` and ``{`` outside quotes and comments), and its line.

    Checked before parsing: PyYAML's scanner slows down with every open flow level, so a file of
    nested brackets would take long to be refused by the recursion it ends in.
    """
    depth = deepest = 0
    line = at = 1
    quote = ""
    prev = "\n"
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        if quote:
            if ch == quote:
                if quote == "'" and i + 1 < n and text[i + 1] == "'":
                    i += 1  # '' is a quote inside a single-quoted scalar
                else:
                    quote = ""
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch == "#" and prev in " \t\n":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch in "\"'" and prev in " \t\n[{,:-?":
            quote = ch
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, line
        elif ch in "]}" and depth:
            depth -= 1
        prev = ch
        i += 1
    return deepest, at


def load(text: str, source: str, *, what: str) -> tuple[Any, dict[Key, int]]:
    """The document and the line of every key and item, by its path; a YAML problem is one ValidationError."""
    lines: dict[Key, int] = {}
    deepest, at = _flow_depth(text)
    if deepest > MAX_DEPTH:
        raise Refused([f"{source}:{at}: nested more than {MAX_DEPTH} levels deep"], what=what)
    try:
        loader = _Marked(text)
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text, source, what) from None
    count = 0
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines

        def build(n: yaml.Node, path: Key) -> Any:
            nonlocal count
            count += 1
            if count > MAX_VALUES:
                raise TooBig(f"{source}:{n.start_mark.line + 1}: more than {MAX_VALUES} values with its aliases "
                             "expanded (an alias bomb?)")
            if len(path) > MAX_DEPTH:
                raise TooBig(f"{source}:{n.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep (an "
                             "alias that contains itself?)")
            lines[path] = n.start_mark.line + 1
            if isinstance(n, yaml.MappingNode):
                loader.flatten_mapping(n)
                out: dict[Any, Any] = {}
                for k_node, v_node in n.value:
                    if not isinstance(k_node, yaml.ScalarNode):
                        raise ValidationError([f"{source}:{k_node.start_mark.line + 1}: a key must be a name"],
                                              what=what)
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
            value = loader.construct_object(n, deep=True)
            if isinstance(value, str) and texts.not_utf8(value):
                raise Refused([f"{source}:{n.start_mark.line + 1}: {texts.shown(value)!r}: "
                               f"{texts.not_utf8(value)}"], what=what)
            return value

        return build(node, ()), lines
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text, source, what) from None
    except TooBig as exc:
        raise Refused([str(exc)], what=what) from None
    except RecursionError:
        raise Refused([f"{source}: nested too deeply to read"], what=what) from None
    finally:
        loader.dispose()


def line_of(lines: Mapping[Key, int], path: Key) -> int:
    """The line of ``path``, else of its nearest enclosing key that has one, else 1."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)
