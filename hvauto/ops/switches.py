"""Virtual switches, the simple cases: list, create (external, internal, private), remove.

Converged designs (teams, host vNICs, weights) belong to :mod:`hvauto.ops.fabric`; this module
creates or removes one switch, idempotently, and refuses to cut VMs or the management path off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import PreflightError, Problem, UsageError, ValidationError
from hvauto.ops import host_to_change
from hvauto.results import Change, HostResult
from hvauto.session import GroupResult, Session
from hvauto.steps import Step, ph

TYPES = {"external": "External", "internal": "Internal", "private": "Private"}
MODES = {"absolute": "Absolute", "weight": "Weight", "none": "None", "default": "Default"}


@dataclass(frozen=True)
class Switch:
    host: str
    name: str
    id: str
    type: str
    adapters: list[str]
    embedded_teaming: bool
    bandwidth_mode: str
    allow_management_os: bool
    vms: list[str] = field(default_factory=list)

    @classmethod
    def from_result(cls, host: str, d: dict[str, Any]) -> Switch:
        return cls(host=host, name=str(d["name"]), id=str(d["id"]), type=str(d["type"]),
                   adapters=[str(a) for a in d.get("adapters") or []], embedded_teaming=bool(d["embedded_teaming"]),
                   bandwidth_mode=str(d["bandwidth_mode"]), allow_management_os=bool(d["allow_management_os"]),
                   vms=[str(v) for v in d.get("vms") or []])


@dataclass
class SwitchChange(HostResult):
    """The host's result: its one change (none when already so), and a line for people."""

    name: str = ""
    message: str = ""


def list_on(session: Session, host: str) -> list[Switch]:
    data = session.run(host, "switch_list").data
    return [Switch.from_result(session.host(host).name, s) for s in data["switches"]]


def list_steps(session: Session, hosts: list[str]) -> list[Step]:
    return [Step(session.host(h).name, "switch_list", {}, "read the host's virtual switches") for h in hosts]


def list_many(session: Session, hosts: list[str]) -> GroupResult:
    return session.fan_out(hosts, lambda h: list_on(session, h))


def _check_create(name: str, type: str, adapters: list[str], bandwidth_mode: str) -> None:
    problems = []
    if type.lower() not in TYPES:
        problems.append(f"--type: {type!r} is not one of {', '.join(TYPES)}")
    if bandwidth_mode.lower() not in MODES:
        problems.append(f"--bandwidth-mode: {bandwidth_mode!r} is not one of {', '.join(MODES)}")
    if type.lower() == "external" and not adapters:
        problems.append("--adapter: an external switch needs at least one physical adapter")
    if type.lower() in ("internal", "private") and adapters:
        problems.append(f"--adapter: a {type.lower()} switch has no physical adapter")
    if len(adapters) > 8:
        problems.append("--adapter: a Switch Embedded Team takes at most 8 adapters")
    if not name.strip() or any(c in name for c in "*?[]") or not name.isprintable():
        problems.append(f"NAME: {name!r} is not a usable switch name (no wildcard or control characters)")
    if problems:
        raise ValidationError(problems, what="switch")


def create_params(*, name: str, type: str = "external", adapter: list[str] | None = None, management_os: bool = True,
                  bandwidth_mode: str = "absolute") -> dict[str, Any]:
    """The values switch_create is run with (validated: no remote call)."""
    adapters = list(adapter or [])
    _check_create(name, type, adapters, bandwidth_mode)
    kind, mode = TYPES[type.lower()], MODES[bandwidth_mode.lower()]
    params: dict[str, Any] = {"Name": name, "BandwidthMode": mode}
    if kind == "External":
        params.update(NetAdapterName=adapters, AllowManagementOS=management_os)
    else:
        params["SwitchType"] = kind
    return params


def _check_sets(cfg_name: str, version: str | None, adapters: list[str]) -> None:
    if len(adapters) > 1 and version is not None and not versions.at_least(version, "2016"):
        raise UsageError(f"{cfg_name} runs {versions.label(version)}: several adapters under one switch need Switch "
                         "Embedded Teaming (2016+); use `hvauto fabric apply` with an LBFO team spec")


def create_steps(session: Session, *, host: str, name: str, type: str = "external", adapter: list[str] | None = None,
                 management_os: bool = True, bandwidth_mode: str = "absolute") -> list[Step]:
    """``switch create --render``: the read, then the create (taken only when no such switch exists)."""
    params = create_params(name=name, type=type, adapter=adapter, management_os=management_os,
                           bandwidth_mode=bandwidth_mode)
    cfg = host_to_change(session.inventory, host)
    _check_sets(cfg.name, session.known_version(cfg.name), list(adapter or []))
    return [Step(cfg.name, "switch_list", {}, "read the host's switches"),
            Step(cfg.name, "switch_create", params, f"create switch {name}",
                 when=f"when the host has no switch named {name}")]


def remove_steps(session: Session, *, host: str, name: str) -> list[Step]:
    """``switch remove --render``: the read (VMs attached, management path), then the removal."""
    if not name.strip():
        raise ValidationError(["NAME: the switch name is empty"], what="switch")
    cfg = host_to_change(session.inventory, host)
    return [Step(cfg.name, "fabric_get", {}, "read switches, host vNICs, addresses and attached VMs"),
            Step(cfg.name, "switch_remove", {"Name": ph(f"name of switch {name} as the host spells it")},
                 f"remove switch {name}", when="when it exists, no VM is attached (or --force) and it is not "
                 "the only management path")]


def create(session: Session, *, host: str, name: str, type: str = "external", adapter: list[str] | None = None,
           management_os: bool = True, bandwidth_mode: str = "absolute", what_if: bool = False) -> SwitchChange:
    """Create a switch unless one of that name and type exists (then say so; change nothing)."""
    adapters = list(adapter or [])
    _check_create(name, type, adapters, bandwidth_mode)
    cfg = host_to_change(session.inventory, host)
    kind = TYPES[type.lower()]
    _check_sets(cfg.name, session.known_version(cfg.name), adapters)
    data = session.run(cfg.name, "switch_list").data
    found = [Switch.from_result(cfg.name, s) for s in data["switches"]]
    existing = next((s for s in found if s.name.lower() == name.lower()), None)
    physical = [str(a) for a in data.get("physical_adapters") or []]
    unknown = [a for a in adapters if a.lower() not in {p.lower() for p in physical}]
    bound = {a.lower(): s.name for s in found for a in s.adapters}
    taken = [f"{a} (bound to switch {bound[a.lower()]})" for a in adapters if a.lower() in bound]
    if existing is None and (unknown or taken):
        problems = [Problem("adapters", f"{cfg.name} has no physical adapter {a}", host=cfg.name,
                            fix=f"name one of {', '.join(physical) or '(none)'}") for a in unknown]
        problems += [Problem("adapters", f"adapter {t} is in use", host=cfg.name,
                             fix="pick a free adapter, or change the switch with `hvauto fabric apply`") for t in taken]
        raise PreflightError(problems, what=f"switch create {name}")
    if existing is not None:
        if existing.type != kind:
            raise UsageError(f"{cfg.name}: switch {existing.name!r} exists as {existing.type}, not {kind}; "
                             "remove it first or use `hvauto fabric apply`")
        return SwitchChange(cfg.name, name=existing.name, message=f"switch {existing.name} already exists")
    _check_sets(cfg.name, session.os_version(cfg.name), adapters)
    what = f"{kind} switch {name}" + (f" on {', '.join(adapters)}" if adapters else "")
    changes = [Change("create", f"switch {name}", f"{kind}" + (f" on {', '.join(adapters)}" if adapters else ""))]
    if what_if:
        return SwitchChange(cfg.name, changes, name=name, message=f"would create {what}")
    session.run(cfg.name, "switch_create", create_params(name=name, type=type, adapter=adapters,
                                                         management_os=management_os, bandwidth_mode=bandwidth_mode))
    return SwitchChange(cfg.name, changes, name=name, message=f"created {what}")


def remove(session: Session, *, host: str, name: str, force: bool = False, what_if: bool = False) -> SwitchChange:
    """Remove a switch; refused while VMs are attached (unless force) or when it carries the only management path."""
    if not name.strip():
        raise ValidationError(["NAME: the switch name is empty"], what="switch")
    cfg = host_to_change(session.inventory, host)
    state = session.run(cfg.name, "fabric_get").data
    sw = next((s for s in state["switches"] if str(s["name"]).lower() == name.lower()), None)
    if sw is None:
        return SwitchChange(cfg.name, name=name, message=f"no switch named {name}; nothing to remove")
    problems: list[Problem] = []
    attached = sorted({a["vm"] for a in state.get("vm_adapters") or [] if str(a.get("switch")).lower() == name.lower()})
    if attached and not force:
        problems.append(Problem(check="vms", host=cfg.name,
                                message=f"VMs are attached to switch {sw['name']}: {', '.join(attached)}",
                                fix="move or disconnect them, or pass --force (they lose network)"))
    gone = [v for v in state.get("vnics") or [] if str(v["switch"]).lower() == name.lower()]
    paths = [i for i in [*state.get("adapters", []), *state.get("vnics", [])] if i.get("gateway") and i.get("addresses")]
    left = [i for i in paths if i not in gone]
    cut = [i for i in paths if i in gone]
    if cut and not left:
        problems.append(Problem(check="management", host=cfg.name,
                                message=f"switch {sw['name']} carries the management path "
                                        f"({', '.join(a for i in cut for a in i['addresses'])}): removing it leaves "
                                        f"{cfg.name} unreachable",
                                fix="bring up another management path first (hvauto fabric apply)"))
    if problems:
        raise PreflightError(problems, what="switch remove")
    changes = [Change("remove", f"switch {sw['name']}", f"VMs disconnected: {', '.join(attached)}" if attached else "",
                      disruptive=bool(attached))]
    if what_if:
        return SwitchChange(cfg.name, changes, name=sw["name"], message=f"would remove switch {sw['name']}")
    session.run(cfg.name, "switch_remove", {"Name": str(sw["name"])})
    extra = f"; VMs disconnected: {', '.join(attached)}" if attached else ""
    return SwitchChange(cfg.name, changes, name=sw["name"], message=f"removed switch {sw['name']}{extra}")
