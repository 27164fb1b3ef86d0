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

import importlib
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
    #: The function takes ``on_progress`` (long jobs: migrations): the run shows their progress.
    progress: bool = False

    @property
    def fans_out(self) -> bool:
        return self.host_option is not None

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
            "migrate", "hvauto.ops.migrate:migrate",
            "Move a VM to another host, shared-nothing (default) or live (hvauto migrate).",
            {
                "vm": Option("str", required=True, doc="the VM (exact name)"),
                "dest": Option("host", required=True, doc="destination host"),
                "from": Option("host", param="source", doc="source host (else every Hyper-V host is asked)"),
                "live": Option("bool", doc="live migration: the VM's storage stays on its share"),
                "storage_path": Option("str", doc="destination folder for the VM's files"),
                "poll_interval": Option("number", doc="seconds between progress polls"),
            },
            host_option=None, adapter=_migrating, progress=True,
        ),
        Operation(
            "migrate.cancel", "hvauto.ops.migrate:cancel",
            "End a VM's running migration and remove the planned VM it left (hvauto migrate --cancel).",
            {
                "vm": Option("str", required=True, doc="the VM (exact name)"),
                "from": Option("host", param="source", doc="source host (else every Hyper-V host is asked)"),
            },
            host_option=None,
        ),
        Operation(
            "storage.move", "hvauto.ops.storage:move",
            "Move a VM's storage on its host (hvauto storage move).",
            {
                "vm": Option("str", required=True, doc="the VM (exact name)"),
                "path": Option("str", required=True, doc="destination folder for all of the VM's files"),
                "host": Option("host", doc="the VM's host (else every Hyper-V host is asked)"),
                "poll_interval": Option("number", doc="seconds between progress polls"),
            },
            host_option=None, adapter=_migrating, progress=True,
        ),
        Operation(
            "evacuate", "hvauto.ops.evacuate:evacuate",
            "Move every VM off each host, within the migration limits (hvauto evacuate).",
            {
                "to": Option("host[]", doc="destination hosts (default: every other Hyper-V host)"),
                "max_parallel": Option("int", doc="at most N moves at once"),
                "poll_interval": Option("number", doc="seconds between progress polls"),
            },
            adapter=_evacuate, progress=True,
        ),
        Operation(
            "smb.share", "hvauto.ops.smb:create",
            "Create an SMB share for VM storage or bring it in line (hvauto smb share create).",
            {
                "name": Option("str", required=True, doc="the share's name"),
                "server": Option("host", required=True, doc="the file server"),
                "path": Option("str", required=True, doc="the folder's local path on the server"),
                "hosts": Option("host[]", required=True, doc="Hyper-V hosts (or groups) granted Full"),
                "group": Option("str", doc="an AD group of the hosts, granted Full too"),
                "admins": Option("str[]", doc="admin accounts or groups"),
                "continuously_available": Option("bool"),
                "encrypt": Option("bool", doc="require SMB encryption"),
                "prune": Option("bool", doc="remove principals that are not asked for"),
                "no_delegation": Option("bool", doc="do not add cifs/SERVER delegation for the hosts"),
            },
            host_option=None,
        ),
        Operation(
            "smb.grant", "hvauto.ops.smb:grant", "Add hosts to an existing share (hvauto smb share grant).",
            {
                "name": Option("str", required=True), "server": Option("host", required=True),
                "hosts": Option("host[]", required=True), "no_delegation": Option("bool"),
            },
            host_option=None,
        ),
        Operation(
            "smb.revoke", "hvauto.ops.smb:revoke", "Take hosts off a share (hvauto smb share revoke).",
            {"name": Option("str", required=True), "server": Option("host", required=True),
             "hosts": Option("host[]", required=True)},
            host_option=None,
        ),
        Operation(
            "smb.remove", "hvauto.ops.smb:remove", "Remove a share, never its folder (hvauto smb share remove).",
            {"name": Option("str", required=True), "server": Option("host", required=True),
             "force": Option("bool", doc="remove even while VM files are on it")},
            host_option=None,
        ),
        Operation(
            "smb.show", "hvauto.ops.smb:show", "A share's access, folder ACL and sessions (hvauto smb share show).",
            {"name": Option("str", required=True), "server": Option("host", required=True)},
            host_option=None, changes=False,
        ),
        Operation(
            "delegation.grant", "hvauto.ops.delegation:grant",
            "Constrained delegation for migration and SMB (hvauto delegation grant).",
            {
                "source": Option("host", doc="the host whose account delegates"),
                "to": Option("host[]", doc="destination hosts"),
                "services": Option("str[]", doc="migration, cifs (default: both)"),
                "mesh": Option("str", doc="every ordered pair of this inventory group"),
            },
            host_option=None,
        ),
        Operation(
            "delegation.revoke", "hvauto.ops.delegation:revoke", "Remove delegation entries (hvauto delegation revoke).",
            {"source": Option("host", required=True), "to": Option("host[]", required=True),
             "services": Option("str[]")},
            host_option=None,
        ),
        Operation(
            "delegation.show", "hvauto.ops.delegation:show", "A host's delegation entries (hvauto delegation show).",
            {}, changes=False,
        ),
        Operation(
            "host.migration", "hvauto.ops.hostsettings:migration",
            "Live-migration settings, only those given (hvauto host migration).",
            {
                "enable": Option("bool", doc="enable (true) or disable (false) live migration"),
                "auth": Option("str", choices=("kerberos", "credssp"), doc="authentication for live migration"),
                "networks": Option("str[]", doc="migration networks (CIDR); only these are used"),
                "use_any_network": Option("bool", doc="let live migration use any network"),
                "performance": Option("str", choices=("tcpip", "compression", "smb"), doc="transport (2012 R2+)"),
                "max_vm": Option("int", doc="simultaneous live migrations"),
                "max_storage": Option("int", doc="simultaneous storage migrations"),
            },
            adapter=_each_host,
        ),
        Operation(
            "fabric.apply", "hvauto.ops.fabric:apply",
            "Bring each host's network fabric to a spec: switch, team, vNICs, VLANs (hvauto fabric apply).",
            {
                "spec": Option("path", required=True, doc="the fabric spec (YAML), relative to the runbook"),
                "force": Option("bool", doc="allow re-creating a switch that has VMs attached"),
            },
        ),
        Operation(
            "fabric.plan", "hvauto.ops.fabric:plan", "What fabric.apply would change on each host (hvauto fabric plan).",
            {"spec": Option("path", required=True), "force": Option("bool")},
            changes=False,
        ),
        Operation(
            "switch.list", "hvauto.ops.switches:list_on", "Each host's virtual switches (hvauto switch list).",
            {}, changes=False, adapter=_switch_list,
        ),
        Operation(
            "switch.create", "hvauto.ops.switches:create",
            "A virtual switch, unless one of that name and type exists (hvauto switch create).",
            {
                "name": Option("str", required=True, doc="switch name (exact)"),
                "type": Option("str", choices=("external", "internal", "private")),
                "adapter": Option("str[]", doc="physical adapter(s) (external; several for SET on 2016+)"),
                "management_os": Option("bool", doc="share the uplink with the host (external)"),
                "bandwidth_mode": Option("str", choices=("absolute", "weight", "none", "default")),
            },
        ),
        Operation(
            "switch.remove", "hvauto.ops.switches:remove",
            "Remove a virtual switch; refused while VMs are attached unless force (hvauto switch remove).",
            {"name": Option("str", required=True), "force": Option("bool", doc="remove even with VMs attached")},
        ),
        Operation(
            "assert", "hvauto.runbook.builtin:check",
            "Stop a host here unless a condition holds, e.g. that: \"{{ facts.hosts[host].vm_count == 0 }}\".",
            {"that": Option("bool", required=True, doc="a condition, rendered per host"),
             "message": Option("str", doc="what it means when it does not hold")},
            changes=False,
        ),
        Operation(
            "report", "hvauto.runbook.builtin:report",
            "A line for the run's summary, rendered per host (no remote call).",
            {"message": Option("str", required=True)}, changes=False,
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
