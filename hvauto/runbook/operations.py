"""The operation registry: what a runbook step may name, and how the engine calls it.

Each entry maps a step's operation name (``vm.list``, ``migrate`` ...) to the plain function in
:mod:`hvauto.ops` that the CLI command calls too, as ``"module:function"`` (imported only when a
step runs, so validating a runbook or ``hvauto --help`` imports no operation code), and to that
CLI command (``cli="smb share create"``). The operation's options, which the validator and
``hvauto runbook schema`` use, are the command's own parameters, read from its Typer signature
(:mod:`hvauto.cli.params`): declared once, there. Options are named as the CLI command's
(``--max-parallel`` is ``max_parallel``, ``--from`` is ``from``), and differ from them only by
these rules, applied in :meth:`Operation.options`:

* ``--output``, ``--render`` and ``--what-if`` are not options (a run has ``--check``);
* an operation that fans out over hosts leaves out the command's ``HOST``/``HOSTS`` argument: the
  step's ``hosts`` (or the runbook's ``target``) gives them;
* options named ``dest``, ``from``, ``host``, ``server``, ``source`` take a host, ``hosts`` and ``to``
  a host or a list of them (checked against the inventory);
* an option whose name is a Python keyword (``from``) reaches the function as the command's own
  parameter name (``source``);
* ``cli_skip`` / ``cli_only`` leave out or pick parameters (``migrate``'s modes), and ``cli_override``
  changes what the command cannot say (``dest`` is optional on the command line, for ``--cancel``).

Operations with no CLI command (``assert``, ``report``, ``powershell``) declare their options.

Most operations act on one host at a time: ``host_option`` names the option that receives each
target host, and the engine fans the step out over its hosts. An operation with
``host_option=None`` (a migration names its VM and destination itself) runs once per step.

Adding an operation is one entry in :data:`OPERATIONS`.
"""

from __future__ import annotations

import dataclasses
import importlib
import keyword
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hvauto.results import to_jsonable
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
    #: The function's keyword when it differs from the option's name (``from`` -> ``source``).
    param: str | None = None


#: Options that take a host, or a host or a list of hosts (see the module docstring).
HOST_OPTIONS = frozenset({"dest", "from", "host", "server", "source"})
HOST_LIST_OPTIONS = frozenset({"hosts", "to"})
#: CLI options that are never runbook options.
CLI_ONLY = frozenset({"output", "render", "what_if"})


@dataclass(frozen=True)
class Operation:
    name: str
    func: str
    summary: str
    #: The CLI command whose parameters are this operation's options (``"smb share create"``).
    cli: str | None = None
    #: Options of an operation without a CLI command, or added to the command's.
    declared: Mapping[str, Option] = field(default_factory=dict)
    #: CLI parameters (by runbook name) that are not options of this operation.
    cli_skip: tuple[str, ...] = ()
    #: Only these CLI parameters (by runbook name) are options of this operation.
    cli_only: tuple[str, ...] | None = None
    #: Changes to an option read from the CLI (``{"dest": {"required": True}}``).
    cli_override: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The option that receives each target host; None: called once for the whole step.
    host_option: str | None = "host"
    #: True when the function takes a list of hosts (called with a one-host list per target).
    host_list: bool = False
    #: False for read-only operations: they run as they are in --check mode.
    changes: bool = True
    #: Calls the function when its signature is not ``fn(session, *, **options, what_if=)``.
    adapter: Adapter | None = None
    #: The function takes ``on_progress`` (long jobs: migrations): the run shows their progress.
    progress: bool = False

    @property
    def fans_out(self) -> bool:
        return self.host_option is not None

    @property
    def options(self) -> Mapping[str, Option]:
        """The step's options: the CLI command's parameters by the rules above, then ``declared``."""
        return _options(self)

    def function(self) -> Callable[..., Any]:
        module, _, attr = self.func.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        if not callable(fn):  # pragma: no cover - a registry typo, caught by the registry test
            raise TypeError(f"{self.func} is not callable")
        return fn  # type: ignore[no-any-return]

    def invoke(self, session: Session, host: str | None, options: Mapping[str, Any], *, what_if: bool,
               on_progress: Callable[[Any], None] | None = None) -> dict[str, Any]:
        """Call the operation for one host (or once) and return its result as JSON-able data."""
        kwargs = {(self.options[k].param or k) if k in self.options else k: v
                  for k, v in options.items() if v is not None}
        if self.progress and on_progress is not None:
            kwargs["on_progress"] = on_progress
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


_OPTIONS: dict[str, Mapping[str, Option]] = {}


def _options(op: Operation) -> Mapping[str, Option]:
    if op.name in _OPTIONS:
        return _OPTIONS[op.name]
    out: dict[str, Option] = {}
    if op.cli is not None:
        from hvauto.cli.params import params

        for p in params(op.cli):
            if p.name in CLI_ONLY or p.name in op.cli_skip or (op.cli_only is not None and p.name not in op.cli_only):
                continue
            if op.fans_out and p.positional and p.name in ("host", "hosts"):
                continue
            kind = p.type
            if p.name in HOST_LIST_OPTIONS:
                kind = "host[]"
            elif p.name in HOST_OPTIONS and kind == "str":
                kind = "host"
            opt = Option(kind, required=p.required, doc=p.doc.rstrip("."), choices=p.choices,
                         param=p.python_name if keyword.iskeyword(p.name) else None)
            out[p.name] = dataclasses.replace(opt, **op.cli_override.get(p.name, {}))
    found = _OPTIONS[op.name] = {**out, **op.declared}
    return found


def clear_cache() -> None:
    """Forget the options read from the CLI (a test that changes a command calls this)."""
    _OPTIONS.clear()
    from hvauto.cli import params

    params._root.cache_clear()


def as_result(value: Any) -> dict[str, Any]:
    """An operation's return value as a dict with ``changed`` (False when it does not say)."""
    data = to_jsonable(value)
    if not isinstance(data, dict):
        data = {"value": data}
    data["changed"] = bool(data.get("changed", False))
    return data


# -- adapters for the functions that predate the keyword-only convention ---------------------------

def _vm_list(fn: Callable[..., Any], session: Session, kw: dict[str, Any], what_if: bool) -> Any:
    return {"vms": fn(session, kw["host"], list(kw.get("name") or []))}


def _poll(kw: dict[str, Any]) -> dict[str, Any]:
    """Migrations poll their job; HVAUTO_POLL_INTERVAL sets the pace as it does for the CLI."""
    if "poll_interval" not in kw:
        kw = {**kw, "poll_interval": float(os.environ.get("HVAUTO_POLL_INTERVAL") or 1.0)}
    return kw


def _migrating(fn: Callable[..., Any], session: Session, kw: dict[str, Any], what_if: bool) -> Any:
    return fn(session, **_poll(kw), what_if=what_if)


def _evacuate(fn: Callable[..., Any], session: Session, kw: dict[str, Any], what_if: bool) -> Any:
    result = fn(session, **_poll(kw), what_if=what_if)
    # Some VMs stayed (or, in check mode, cannot be placed): the step failed on this host.
    result.raise_if_failed()
    return result


def _each_host(fn: Callable[..., Any], session: Session, kw: dict[str, Any], what_if: bool) -> Any:
    """For functions that take a host or a group and report per host: this host's failure fails the step."""
    report = fn(session, **kw, what_if=what_if)
    report.raise_if_failed()
    return report


def _switch_list(fn: Callable[..., Any], session: Session, kw: dict[str, Any], what_if: bool) -> Any:
    return {"switches": fn(session, kw["host"])}


def _host_facts(fn: Callable[..., Any], session: Session, kw: dict[str, Any], what_if: bool) -> Any:
    return fn(session, kw["host"])


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("vm.list", "hvauto.ops.vms:list_on", "List the VMs on each host (hvauto vm list).",
                  cli="vm list", changes=False, adapter=_vm_list),
        Operation("host.facts", "hvauto.ops.hosts:facts",
                  "A host's OS, PowerShell, memory and migration settings (hvauto host show).",
                  cli="host show", changes=False, adapter=_host_facts),
        Operation("migrate", "hvauto.ops.migrate:migrate",
                  "Move a VM to another host, shared-nothing (default) or live (hvauto migrate).",
                  cli="migrate", cli_skip=("shared_nothing", "cancel", "watch"),
                  cli_override={"dest": {"required": True}},
                  host_option=None, adapter=_migrating, progress=True),
        Operation("migrate.cancel", "hvauto.ops.migrate:cancel",
                  "End a VM's running migration and remove the planned VM it left (hvauto migrate --cancel).",
                  cli="migrate", cli_only=("vm", "from"), host_option=None),
        Operation("storage.move", "hvauto.ops.storage:move", "Move a VM's storage on its host (hvauto storage move).",
                  cli="storage move", host_option=None, adapter=_migrating, progress=True),
        Operation("evacuate", "hvauto.ops.evacuate:evacuate",
                  "Move every VM off each host, within the migration limits (hvauto evacuate).",
                  cli="evacuate", adapter=_evacuate, progress=True),
        Operation("smb.share", "hvauto.ops.smb:create",
                  "Create an SMB share for VM storage or bring it in line (hvauto smb share create).",
                  cli="smb share create", host_option=None),
        Operation("smb.grant", "hvauto.ops.smb:grant", "Add hosts to an existing share (hvauto smb share grant).",
                  cli="smb share grant", host_option=None),
        Operation("smb.revoke", "hvauto.ops.smb:revoke", "Take hosts off a share (hvauto smb share revoke).",
                  cli="smb share revoke", host_option=None),
        Operation("smb.remove", "hvauto.ops.smb:remove", "Remove a share, never its folder (hvauto smb share remove).",
                  cli="smb share remove", host_option=None),
        Operation("smb.show", "hvauto.ops.smb:show", "A share's access, folder ACL and sessions (hvauto smb share show).",
                  cli="smb share show", host_option=None, changes=False),
        Operation("delegation.grant", "hvauto.ops.delegation:grant",
                  "Constrained delegation for migration and SMB (hvauto delegation grant).",
                  cli="delegation grant", host_option=None),
        Operation("delegation.revoke", "hvauto.ops.delegation:revoke",
                  "Remove delegation entries (hvauto delegation revoke).",
                  cli="delegation revoke", cli_override={"to": {"required": True}}, host_option=None),
        Operation("delegation.show", "hvauto.ops.delegation:show", "A host's delegation entries (hvauto delegation show).",
                  cli="delegation show", changes=False),
        Operation("host.migration", "hvauto.ops.hostsettings:migration",
                  "Live-migration settings, only those given (hvauto host migration).",
                  # The command line takes CIDR,CIDR; a runbook gives a list too.
                  cli="host migration", cli_override={"networks": {"type": "str[]"}}, adapter=_each_host),
        Operation("fabric.apply", "hvauto.ops.fabric:apply",
                  "Bring each host's network fabric to a spec: switch, team, vNICs, VLANs (hvauto fabric apply).",
                  cli="fabric apply"),
        Operation("fabric.plan", "hvauto.ops.fabric:plan", "What fabric.apply would change on each host (hvauto fabric plan).",
                  cli="fabric plan", changes=False),
        Operation("switch.list", "hvauto.ops.switches:list_on", "Each host's virtual switches (hvauto switch list).",
                  cli="switch list", changes=False, adapter=_switch_list),
        Operation("switch.create", "hvauto.ops.switches:create",
                  "A virtual switch, unless one of that name and type exists (hvauto switch create).",
                  cli="switch create"),
        Operation("switch.remove", "hvauto.ops.switches:remove",
                  "Remove a virtual switch; refused while VMs are attached unless force (hvauto switch remove).",
                  cli="switch remove"),
        Operation(
            "assert", "hvauto.runbook.builtin:check",
            "Stop a host here unless a condition holds, e.g. that: \"{{ facts.hosts[host].vm_count == 0 }}\".",
            declared={"that": Option("bool", required=True, doc="a condition, rendered per host"),
                      "message": Option("str", doc="what it means when it does not hold")},
            changes=False,
        ),
        Operation(
            "report", "hvauto.runbook.builtin:report",
            "A line for the run's summary, rendered per host (no remote call).",
            declared={"message": Option("str", required=True)}, changes=False,
        ),
        Operation(
            "powershell", "hvauto.runbook.custom:run_template",
            "Run your own .ps1.j2 template (values bound as parameters, one JSON result).",
            declared={
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
