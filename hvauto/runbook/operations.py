"""The operation registry: what a runbook step may name, and how the engine calls it.

Each entry maps a step's operation name (``vm.list``, ``migrate`` ...) to the plain function in
:mod:`hvauto.ops` that the CLI command calls too, as ``"module:function"`` (imported only when a
step runs, so validating a runbook or ``hvauto --help`` imports no operation code), plus the
option schema the validator and ``hvauto runbook schema`` use. Options are named as the CLI
command's options (``--max-migrations`` is ``max_migrations``).

Most operations act on one host at a time: ``host_option`` names the option that receives each
target host, and the engine fans the step out over its hosts. An operation with
``host_option=None`` (a migration names its VM and destination itself) runs once per step.

Adding an operation is one entry in :data:`OPERATIONS`.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hvauto.session import Session

#: Option types: the YAML value a step gives, checked before any remote call.
OPTION_TYPES = ("str", "str[]", "int", "number", "bool", "host", "host[]", "path", "map")

Adapter = Callable[[Callable[..., Any], Session, dict[str, Any], bool], Any]


@dataclass(frozen=True)
class Option:
    type: str = "str"
    required: bool = False
    doc: str = ""
    choices: tuple[str, ...] = ()
    default: Any = None


@dataclass(frozen=True)
class Operation:
    name: str
    func: str
    summary: str
    options: Mapping[str, Option] = field(default_factory=dict)
    #: The option that receives each target host; None: called once for the whole step.
    host_option: str | None = "host"
    #: True when the function takes a list of hosts (called with a one-host list per target).
    host_list: bool = False
    #: False for read-only operations: they run as they are in --check mode.
    changes: bool = True
    #: Calls the function when its signature is not ``fn(session, *, **options, what_if=)``.
    adapter: Adapter | None = None

    @property
    def fans_out(self) -> bool:
        return self.host_option is not None

    def function(self) -> Callable[..., Any]:
        module, _, attr = self.func.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        if not callable(fn):  # pragma: no cover - a registry typo, caught by the registry test
            raise TypeError(f"{self.func} is not callable")
        return fn  # type: ignore[no-any-return]

    def invoke(self, session: Session, host: str | None, options: Mapping[str, Any], *, what_if: bool) -> dict[str, Any]:
        """Call the operation for one host (or once) and return its result as JSON-able data."""
        kwargs = {k: v for k, v in options.items() if v is not None}
        if self.host_option is not None:
            kwargs[self.host_option] = [host] if self.host_list else host
        fn = self.function()
        if self.adapter is not None:
            value = self.adapter(fn, session, kwargs, what_if)
        elif self.changes:
            value = fn(session, **kwargs, what_if=what_if)
        else:
            value = fn(session, **kwargs)
        return as_result(value)


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def as_result(value: Any) -> dict[str, Any]:
    """An operation's return value as a dict with ``changed`` (False when it does not say)."""
    data = jsonable(value)
    if not isinstance(data, dict):
        data = {"value": data}
    data.setdefault("changed", False)
    data["changed"] = bool(data["changed"])
    return data


# -- adapters for the functions that predate the keyword-only convention ---------------------------

def _vm_list(fn: Callable[..., Any], session: Session, kw: dict[str, Any], what_if: bool) -> Any:
    return {"vms": fn(session, kw["host"], list(kw.get("name") or []))}


def _host_facts(fn: Callable[..., Any], session: Session, kw: dict[str, Any], what_if: bool) -> Any:
    return fn(session, kw["host"])


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "vm.list", "hvauto.ops.vms:list_on", "List the VMs on each host (hvauto vm list).",
            {"name": Option("str[]", doc="only VMs with these exact names")},
            changes=False, adapter=_vm_list,
        ),
        Operation(
            "host.facts", "hvauto.ops.hosts:facts",
            "A host's OS, PowerShell, memory and migration settings (hvauto host show).",
            {}, changes=False, adapter=_host_facts,
        ),
        Operation(
            "powershell", "hvauto.runbook.custom:run_template",
            "Run your own .ps1.j2 template (values bound as parameters, one JSON result).",
            {
                "template": Option("path", required=True, doc="the .ps1.j2 file, relative to the runbook"),
                "params": Option("map", doc="values for the template's declared parameters"),
            },
        ),
    )
}


def get(name: str) -> Operation | None:
    return OPERATIONS.get(name)


def names() -> list[str]:
    return sorted(OPERATIONS)
