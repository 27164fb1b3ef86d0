"""What a CLI command takes, read from the click command Typer builds for it.

The runbook's operations (:mod:`hvauto.runbook.operations`) take the options of the CLI command
they mirror; this module is where those options are read, so a command's options are declared
once, in its Typer signature. Reading them builds the click commands (``typer.main.get_command``),
which imports the CLI modules but nothing remote: those import ``hvauto.ops`` inside commands.
"""

from __future__ import annotations

import enum
import functools
import pathlib
import typing
from dataclasses import dataclass
from typing import Any

import typer
import typer.main


@dataclass(frozen=True)
class CliParam:
    """One parameter of a CLI command."""

    #: The name a runbook gives it: the long flag without dashes (``--from`` -> ``from``), else the argument's name.
    name: str
    #: The Python parameter of the command function (``source`` for ``--from``).
    python_name: str
    #: str, int, number, bool, path, or str[] (repeatable options and variadic arguments).
    type: str
    required: bool
    doc: str
    choices: tuple[str, ...] = ()
    positional: bool = False


@functools.cache
def _root() -> Any:
    from hvauto.cli.main import app

    return typer.main.get_command(app)


def command(path: str) -> Any:
    """The click command for ``path`` (``"smb share create"``); KeyError names the part not found."""
    node = _root()
    for part in path.split():
        commands = getattr(node, "commands", {})
        if part not in commands:
            raise KeyError(f"no CLI command {path!r} (no {part!r} under {getattr(node, 'name', 'hvauto')!r})")
        node = commands[part]
    return node


def _kind(param: Any) -> tuple[str, tuple[str, ...]]:
    """The runbook type of a parameter and its choices, from its annotation (or, on older typer, its click type)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is not None:
        if typing.get_origin(annotation) in (list, tuple, set):
            return "str[]", ()
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return "str", tuple(str(m.value) for m in annotation)
        if isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath):
            return "path", ()
        simple = {bool: "bool", int: "int", float: "number", str: "str"}
        if annotation in simple:
            return simple[annotation], ()
    if getattr(param, "multiple", False) or getattr(param, "nargs", 1) == -1:
        return "str[]", ()
    click_type = getattr(param, "type", None)
    choices = tuple(str(c) for c in getattr(click_type, "choices", ()) or ())
    if choices:
        return "str", choices
    by_name = {"integer": "int", "float": "number", "boolean": "bool", "path": "path"}
    # click names a bounded type "integer range" / "float range".
    type_name = str(getattr(click_type, "name", "")).removesuffix(" range")
    return by_name.get(type_name, "str"), ()


def params(path: str) -> list[CliParam]:
    """The parameters of the command at ``path``, in the order of its signature."""
    out: list[CliParam] = []
    for param in command(path).params:
        opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        positional = getattr(param, "param_type_name", "") == "argument"
        name = opts[0][2:].replace("-", "_") if opts else str(param.name)
        kind, choices = _kind(param)
        out.append(CliParam(name=name, python_name=str(param.name), type=kind, required=bool(param.required),
                            doc=str(getattr(param, "help", "") or ""), choices=choices, positional=positional))
    return out
