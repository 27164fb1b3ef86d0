"""The host network design as code: a declarative spec, validated, planned per host, applied safely.

A spec (YAML, schema ``hvauto/schemas/fabric.schema.json``) declares one virtual switch and its
uplinks, the teaming (SET on 2016+, an LBFO team under the switch on 2012/2012 R2), the host
vNICs per role with QoS weights, VLANs and per-host addresses, the default-flow weight and the
live-migration networks. The flow, per host:

1. :func:`load_spec` checks the design before any host is contacted (schema, then the rules in
   hyperv-notes: weights, live migration off the management network, iSCSI on its own adapters,
   a management address for every host); every problem at once, with file, key and reason.
2. :func:`plan` reads each host in one round trip (``fabric_get``) and computes what would change,
   in the order it would run: team, switch, host vNICs (management first), weights (decreases
   first), VLANs, addresses, then the lock-out guard, and only then anything that removes an old
   path. A change that re-creates a switch is always listed as such and is refused while VMs are
   attached unless ``force``; a plan that leaves a host without a management address is refused.
3. :func:`apply` refuses the whole group when any host has a blocking problem (nothing changed),
   runs ``fabric_apply`` with the plan as explicit parameter lists, then reads the host again and
   checks that nothing is left to change.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvauto import schemas, versions, yamldoc
from hvauto.errors import PreflightError, Problem, ValidationError, VerifyError
from hvauto.ops import hosts_to_change
from hvauto.results import Change, HostResult, Report
from hvauto.session import Session

SCHEMA = "fabric.schema.json"
#: The phases of fabric_apply, in the order the script runs them (the lock-out guard sits between
#: add-address and remove-address).
APPLY_ORDER = ("create-team", "recreate-switch", "create-switch", "set-members", "move-vnic", "add-vnic",
               "set-weight", "set-default-flow-weight", "set-vlan", "add-address", "remove-address", "remove-vnic",
               "restrict-migration", "add-migration-network", "remove-migration-network")
ROLES_FIRST = ("management", "cluster", "live_migration", "storage", "other")
LBFO_2022 = ("from Windows Server 2022 a virtual switch can no longer be bound to an LBFO team "
             "(LBFO under Hyper-V is deprecated); use Switch Embedded Teaming (teaming: set or auto)")


# -- the spec ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VnicSpec:
    name: str
    role: str
    weight: int | None = None
    vlan: int | None = None
    subnet: str | None = None
    gateway: str | None = None


@dataclass(frozen=True)
class HostSpec:
    adapters: list[str] | None = None
    iscsi_adapters: list[str] | None = None
    addresses: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FabricSpec:
    path: str
    switch: str
    adapters: list[str]
    teaming: str = "auto"
    team_name: str | None = None
    bandwidth_mode: str = "Weight"
    management_os: bool = False
    default_flow_weight: int | None = None
    vnics: list[VnicSpec] = field(default_factory=list)
    migration_networks: list[str] | None = None
    iscsi_adapters: list[str] = field(default_factory=list)
    prune_vnics: bool = False
    hosts: dict[str, HostSpec] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def host(self, name: str) -> HostSpec:
        for key, value in self.hosts.items():
            if key.lower() == name.lower():
                return value
        return HostSpec()

    def adapters_for(self, host: str) -> list[str]:
        return list(self.host(host).adapters or self.adapters)

    def iscsi_for(self, host: str) -> list[str]:
        own = self.host(host).iscsi_adapters
        return list(own if own is not None else self.iscsi_adapters)

    def address(self, host: str, vnic: str) -> str | None:
        for key, value in self.host(host).addresses.items():
            if key.lower() == vnic.lower():
                return value
        return None

    @property
    def management(self) -> VnicSpec | None:
        return next((v for v in self.vnics if v.role == "management"), None)

    @property
    def team(self) -> str:
        return self.team_name or f"{self.switch}-Team"

    def ordered_vnics(self) -> list[VnicSpec]:
        """Management first: its address must be up before anything can take an old path away."""
        return sorted(self.vnics, key=lambda v: ROLES_FIRST.index(v.role))


def _net(text: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return None


def _iface(text: str) -> ipaddress.IPv4Interface | None:
    try:
        return ipaddress.IPv4Interface(text)
    except ValueError:
        return None


def _design_problems(doc: dict[str, Any], targets: list[str]) -> tuple[list[str], list[str]]:
    """The design rules (hyperv-notes, NIC design): errors and warnings, as 'key: reason'."""
    errors: list[str] = []
    warnings: list[str] = []
    switch = doc["switch"]
    vnics: list[dict[str, Any]] = list(doc.get("vnics") or [])
    hosts: dict[str, dict[str, Any]] = dict(doc.get("hosts") or {})
    mode = switch.get("bandwidth_mode", "Weight")
    teaming = switch.get("teaming", "auto")

    names = [str(v["name"]).lower() for v in vnics]
    for i, v in enumerate(vnics):
        if names.count(str(v["name"]).lower()) > 1 and names.index(str(v["name"]).lower()) != i:
            errors.append(f"vnics[{i}].name: {v['name']!r} is used twice (host vNIC names are unique on a host)")

    for i, v in enumerate(vnics):
        net = _net(v["subnet"]) if v.get("subnet") else None
        if v.get("subnet") and net is None:
            errors.append(f"vnics[{i}].subnet: {v['subnet']!r} is not an IPv4 subnet")
        if v.get("gateway"):
            try:
                gateway = ipaddress.IPv4Address(v["gateway"])
            except ValueError:
                errors.append(f"vnics[{i}].gateway: {v['gateway']!r} is not an IPv4 address")
            else:
                if net is not None and gateway not in net:
                    errors.append(f"vnics[{i}].gateway: {gateway} is outside {v['name']}'s subnet {net}")

    # QoS weights.
    weights = [int(v["weight"]) for v in vnics if v.get("weight") is not None]
    dfw = switch.get("default_flow_weight")
    total = sum(weights) + (int(dfw) if dfw is not None else 0)
    if total > 100:
        parts = [f"{v['name']} {v['weight']}" for v in vnics if v.get("weight") is not None]
        if dfw is not None:
            parts.append(f"default flow {dfw}")
        errors.append(f"vnics: the minimum-bandwidth weights add up to {total} ({', '.join(parts)}); "
                      "they must sum to at most 100")
    for i, v in enumerate(vnics):
        if v["role"] in ("management", "cluster") and v.get("weight") is not None and int(v["weight"]) < 5:
            errors.append(f"vnics[{i}].weight: {v['role']} traffic ({v['name']}) needs a weight of at least 5 "
                          f"(got {v['weight']}): starved heartbeats or management cause failovers and lock-outs")
        if v.get("weight") is not None and mode != "Weight":
            errors.append(f"vnics[{i}].weight: weights need switch.bandwidth_mode Weight (the switch is {mode}; "
                          "the mode cannot be changed after the switch exists)")
        if v.get("weight") is None and mode == "Weight" and v["role"] in ("management", "cluster", "live_migration"):
            warnings.append(f"vnics[{i}]: {v['name']} ({v['role']}) has no weight: under contention it gets "
                            "only what the default flow leaves")
    if dfw is not None and mode != "Weight":
        errors.append(f"switch.default_flow_weight: needs switch.bandwidth_mode Weight (got {mode})")
    if mode == "Weight" and dfw is None and vnics:
        warnings.append("switch.default_flow_weight: not set; VM traffic has no reserved share")

    # Live migration off the management network.
    mgmt = [(i, v) for i, v in enumerate(vnics) if v["role"] == "management"]
    lms = [(i, v) for i, v in enumerate(vnics) if v["role"] == "live_migration"]
    if len(mgmt) > 1:
        errors.append(f"vnics[{mgmt[1][0]}].role: only one management vNIC per host ({mgmt[0][1]['name']} "
                      f"and {mgmt[1][1]['name']})")
    mgmt_nets: list[ipaddress.IPv4Network] = []
    if mgmt:
        mv = mgmt[0][1]
        if mv.get("subnet") and _net(mv["subnet"]):
            mgmt_nets.append(_net(mv["subnet"]))  # type: ignore[arg-type]
        for h in hosts.values():
            addr = {k.lower(): a for k, a in (h.get("addresses") or {}).items()}.get(str(mv["name"]).lower())
            if addr and _iface(addr):
                mgmt_nets.append(_iface(addr).network)  # type: ignore[union-attr]
        for i, lm in lms:
            if mv.get("vlan") is not None and lm.get("vlan") == mv.get("vlan"):
                errors.append(f"vnics[{i}].vlan: live migration ({lm['name']}) shares VLAN {lm['vlan']} with "
                              f"management ({mv['name']}): live-migration traffic is unencrypted memory; keep it "
                              "off the management network")
            if lm.get("subnet") and _net(lm["subnet"]) in mgmt_nets:
                errors.append(f"vnics[{i}].subnet: live migration ({lm['name']}) is on the management subnet "
                              f"{lm['subnet']}; keep it off the management network")
            for hname, h in hosts.items():
                addr = {k.lower(): a for k, a in (h.get("addresses") or {}).items()}.get(str(lm["name"]).lower())
                lm_iface = _iface(addr) if addr else None
                if lm_iface is not None and any(lm_iface.ip in m for m in mgmt_nets):
                    errors.append(f"hosts.{hname}.addresses.{lm['name']}: {addr} is on the management network; "
                                  "keep live migration off it")
    for j, cidr in enumerate(doc.get("migration_networks") or []):
        net = _net(cidr)
        if net is None:
            errors.append(f"migration_networks[{j}]: {cidr!r} is not an IPv4 subnet")
            continue
        for m in mgmt_nets:
            if net.overlaps(m):
                errors.append(f"migration_networks[{j}]: {cidr} overlaps the management network {m}: live "
                              "migration must not run on the management network")
                break
    if doc.get("migration_networks") and not lms:
        warnings.append("migration_networks: no live_migration vNIC in the spec; make sure the hosts have "
                        "addresses in these subnets")

    # iSCSI on its own adapters, never teamed.
    iscsi_global = list((doc.get("storage") or {}).get("iscsi_adapters") or [])
    for hname, h in [("", {}), *hosts.items()]:
        uplinks = [a.lower() for a in (h.get("adapters") or switch["adapters"])]
        iscsi = h.get("iscsi_adapters") if h.get("iscsi_adapters") is not None else iscsi_global
        for a in iscsi or []:
            if a.lower() in uplinks:
                key = f"hosts.{hname}.iscsi_adapters" if hname else "storage.iscsi_adapters"
                errors.append(f"{key}: {a} is also a switch uplink: iSCSI belongs on its own adapters with MPIO, "
                              "never in a team or under a virtual switch")
    for i, v in enumerate(vnics):
        if v["role"] == "storage":
            warnings.append(f"vnics[{i}]: {v['name']} carries storage through the switch; iSCSI wants dedicated "
                            "adapters with MPIO (SMB over a converged vNIC is fine)")

    # Teaming shape.
    adapters = list(switch["adapters"])
    if teaming == "none":
        for hname, h in [("", {}), *hosts.items()]:
            count = len(h.get("adapters") or adapters)
            if count > 1:
                key = f"hosts.{hname}.adapters" if hname else "switch.adapters"
                errors.append(f"{key}: teaming none takes one adapter (got {count})")
    elif len(adapters) == 1 and teaming in ("set", "lbfo"):
        warnings.append("switch.adapters: a team of one adapter has no redundancy")

    # Addresses.
    known = {str(v["name"]).lower(): v for v in vnics}
    seen: dict[str, str] = {}
    for hname, h in hosts.items():
        for vname, addr in (h.get("addresses") or {}).items():
            key = f"hosts.{hname}.addresses.{vname}"
            spec_v = known.get(vname.lower())
            if spec_v is None:
                errors.append(f"{key}: no vNIC named {vname!r} in vnics")
                continue
            iface = _iface(addr)
            if iface is None:
                errors.append(f"{key}: {addr!r} is not an IPv4 address with prefix (10.0.10.21/24)")
                continue
            if spec_v.get("subnet") and _net(spec_v["subnet"]) and iface.ip not in _net(spec_v["subnet"]):  # type: ignore[operator]
                errors.append(f"{key}: {addr} is outside {vname}'s subnet {spec_v['subnet']}")
            ip = str(iface.ip)
            if ip in seen:
                errors.append(f"{key}: {ip} is also given to {seen[ip]}")
            seen[ip] = f"hosts.{hname}.addresses.{vname}"
    if mgmt:
        mv = mgmt[0][1]
        for host in targets:
            h = next((v for k, v in hosts.items() if k.lower() == host.lower()), {})
            addrs = {k.lower(): a for k, a in (h.get("addresses") or {}).items()}
            if str(mv["name"]).lower() not in addrs:
                errors.append(f"hosts.{host}.addresses.{mv['name']}: missing: the management vNIC needs an address "
                              f"on every host the spec targets, or {host} is left without a management address")
    return errors, warnings


def _line_of_problem(lines: dict[yamldoc.Key, int], problem: str) -> int:
    """The line of the key a design problem starts with (``vnics[1].vlan: ...``)."""
    key: list[str | int] = []
    for name, index in re.findall(r"\.?([^.\[\]:\s]+)|\[(\d+)\]", problem.split(": ", 1)[0]):
        key.append(int(index) if index else name)
    return yamldoc.line_of(lines, tuple(key))


def load_spec(path: str | Path, *, hosts: list[str] | None = None) -> FabricSpec:
    """Read and validate a spec (no remote call); ValidationError lists every problem with key and reason."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError([f"{where}: cannot read: {exc.strerror or exc}"], what="fabric spec") from None
    except UnicodeDecodeError:
        raise ValidationError([f"{where}: cannot read: not UTF-8 text"], what="fabric spec") from None
    doc, lines = yamldoc.load(text, where, what="fabric spec")
    found = schemas.validate(schemas.load(SCHEMA), doc)
    if found:
        raise ValidationError([f"{where}:{yamldoc.line_of(lines, key)}: {schemas.dotted(key)}: {why}"
                               for key, why in sorted(found, key=lambda p: yamldoc.line_of(lines, p[0]))],
                              what="fabric spec")
    assert isinstance(doc, dict)
    errors, warnings = _design_problems(doc, list(hosts or []))
    if errors:
        raise ValidationError([f"{where}:{_line_of_problem(lines, e)}: {e}" for e in errors], what="fabric spec")
    sw = doc["switch"]
    return FabricSpec(
        path=where,
        switch=str(sw["name"]),
        adapters=list(sw["adapters"]),
        teaming=str(sw.get("teaming", "auto")),
        team_name=sw.get("team_name"),
        bandwidth_mode=str(sw.get("bandwidth_mode", "Weight")),
        management_os=bool(sw.get("management_os", False)),
        default_flow_weight=sw.get("default_flow_weight"),
        vnics=[VnicSpec(name=str(v["name"]), role=str(v["role"]), weight=v.get("weight"), vlan=v.get("vlan"),
                        subnet=v.get("subnet"), gateway=v.get("gateway")) for v in doc.get("vnics") or []],
        migration_networks=[str(_net(n)) for n in doc["migration_networks"]]
        if doc.get("migration_networks") is not None else None,
        iscsi_adapters=list((doc.get("storage") or {}).get("iscsi_adapters") or []),
        prune_vnics=bool(doc.get("prune_vnics", False)),
        hosts={str(k): HostSpec(adapters=v.get("adapters"), iscsi_adapters=v.get("iscsi_adapters"),
                                addresses=dict(v.get("addresses") or {})) for k, v in (doc.get("hosts") or {}).items()},
        warnings=[f"{where}:{_line_of_problem(lines, w)}: {w}" for w in warnings],
    )


# -- the plan ---------------------------------------------------------------------------------------------

@dataclass
class HostPlan(HostResult):
    """One host's changes (planned; after apply, made and verified: the same list), problems, and
    the values ``fabric_apply`` runs with; ``steps`` is the host's own log of what it did."""

    version: str = ""
    teaming: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _find(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((i for i in items if _same(str(i["name"]), name)), None)


def _mode(value: str) -> str:
    # New-VMSwitch -MinimumBandwidthMode Default means Absolute on a switch without SR-IOV.
    return "Absolute" if value == "Default" else value


def compute_plan(spec: FabricSpec, host: str, version: str, state: dict[str, Any], *, force: bool = False) -> HostPlan:
    """What ``fabric_apply`` must do on one host to match the spec (pure: state in, plan out)."""
    adapters = spec.adapters_for(host)
    teaming = spec.teaming
    if teaming == "auto":
        if len(adapters) == 1:
            teaming = "none"
        else:
            teaming = "set" if versions.at_least(version, "2016") else "lbfo"
    plan = HostPlan(host=host, version=version, teaming=teaming)
    label = versions.label(version)

    def block(check: str, message: str, fix: str = "") -> None:
        plan.problems.append(Problem(check=check, message=message, host=host, fix=fix))

    def warn(check: str, message: str, fix: str = "") -> None:
        plan.problems.append(Problem(check=check, message=message, host=host, fix=fix, blocking=False))

    def change(action: str, target: str, detail: str = "", disruptive: bool = False) -> None:
        plan.changes.append(Change(action, target, detail, disruptive))

    nics: list[dict[str, Any]] = list(state.get("adapters") or [])
    teams: list[dict[str, Any]] = list(state.get("teams") or [])
    switches: list[dict[str, Any]] = list(state.get("switches") or [])
    vnics: list[dict[str, Any]] = list(state.get("vnics") or [])
    vm_adapters: list[dict[str, Any]] = list(state.get("vm_adapters") or [])

    def bound_to(adapter: str) -> str | None:
        for sw in switches:
            if any(_same(a, adapter) for a in sw.get("adapters") or []):
                return f"switch {sw['name']}"
        for t in teams:
            if any(_same(m, adapter) for m in t.get("members") or []):
                return f"team {t['name']}"
        return None

    # Teaming against the version.
    if teaming == "set" and not versions.at_least(version, "2016"):
        block("teaming", f"Switch Embedded Teaming needs Windows Server 2016 or later; {host} runs {label}",
              "use teaming: auto (an LBFO team under the switch on 2012/2012 R2)")
    if teaming == "lbfo" and versions.at_least(version, "2022"):
        block("teaming", f"an LBFO team under the switch is refused on {label}: {LBFO_2022}",
              "set switch.teaming to set (or auto)")
    elif teaming == "lbfo" and versions.at_least(version, "2016"):
        warn("teaming", f"LBFO under a virtual switch is deprecated on {label} and refused from 2022",
             "prefer teaming: set")

    # The adapters: present, up, free, alike.
    uplink_nics = []
    for a in adapters:
        nic = _find(nics, a)
        if nic is None:
            block("adapters", f"adapter {a} not found (physical adapters: {', '.join(n['name'] for n in nics) or 'none'})",
                  f"name the adapters per host under hosts.{host}.adapters")
            continue
        uplink_nics.append(nic)
        if str(nic.get("status")) != "Up":
            warn("adapters", f"adapter {a} is {nic.get('status')}", "check the cable and the switch port")
    if teaming == "set" and len(uplink_nics) > 1:
        kinds = {(str(n.get("driver")), int(n.get("link_speed_bps") or 0)) for n in uplink_nics}
        if len(kinds) > 1:
            detail = ", ".join(f"{n['name']} ({n.get('driver')}, {int(n.get('link_speed_bps') or 0) // 10**9} Gbps)"
                               for n in uplink_nics)
            block("set-members", f"SET members must be identical adapters (make, model, speed): {detail}",
                  "pick identical adapters for the switch")
    for a in spec.iscsi_for(host):
        if _find(nics, a) is None:
            block("iscsi", f"iSCSI adapter {a} not found")
            continue
        b = bound_to(a)
        if b:
            block("iscsi", f"iSCSI adapter {a} is bound to {b}: iSCSI belongs on its own adapters with MPIO, not teamed",
                  f"free {a} from {b}")

    # The switch (and the LBFO team under it).
    existing = _find(switches, spec.switch)
    team_nic = spec.team
    uplinks = {"set": adapters, "lbfo": [team_nic], "none": adapters[:1]}[teaming]
    recreate: list[str] = []
    set_members: list[str] = []
    if existing is not None:
        if existing.get("type") != "External":
            recreate.append(f"type {existing.get('type')} -> External")
        if _mode(str(existing.get("bandwidth_mode"))) != _mode(spec.bandwidth_mode):
            recreate.append(f"bandwidth mode {existing.get('bandwidth_mode')} -> {spec.bandwidth_mode} "
                            "(fixed when a switch is created)")
        if bool(existing.get("embedded_teaming")) != (teaming == "set"):
            recreate.append("teaming " + ("SET -> " if existing.get("embedded_teaming") else "no SET -> ")
                            + ("SET" if teaming == "set" else teaming.upper()))
        elif teaming == "set":
            have = sorted(a.lower() for a in existing.get("adapters") or [])
            if have != sorted(a.lower() for a in adapters):
                set_members = list(adapters)
        elif [a.lower() for a in existing.get("adapters") or []] != [u.lower() for u in uplinks]:
            recreate.append(f"uplink {', '.join(existing.get('adapters') or []) or '(none)'} -> {', '.join(uplinks)}")
    old_uplinks = {a.lower() for a in (existing or {}).get("adapters") or []} if (existing and recreate) else set()

    def free_or_block(a: str, why: str) -> None:
        b = bound_to(a)
        mine = existing is not None and b == f"switch {existing['name']}"
        if b and not (mine and (recreate or teaming == "set")) and a.lower() not in old_uplinks:
            block("adapters", f"adapter {a} is already bound to {b}; {why}",
                  f"choose free adapters, or remove {b} first")

    if teaming == "lbfo":
        team = _find(teams, team_nic)
        if team is None:
            for a in adapters:
                free_or_block(a, f"it cannot join LBFO team {team_nic}")
            change("create-team", team_nic, f"LBFO, switch independent: {', '.join(adapters)}")
            plan.params.update(TeamName=team_nic, TeamMembers=adapters)
        elif sorted(m.lower() for m in team.get("members") or []) != sorted(a.lower() for a in adapters):
            block("team", f"LBFO team {team_nic} has members {', '.join(team.get('members') or [])}; the spec wants "
                          f"{', '.join(adapters)}", "change the team members by hand, or name another team")
        elif existing is None:
            free_or_block(team_nic, f"switch {spec.switch} needs the team's interface")
    if existing is None:
        if teaming != "lbfo":
            for a in uplinks:
                free_or_block(a, f"it cannot be an uplink of switch {spec.switch}")
        shape = {"set": "SET", "lbfo": f"on LBFO team {team_nic}", "none": "single uplink"}[teaming]
        change("create-switch", spec.switch, f"{shape}: {', '.join(adapters)}; {spec.bandwidth_mode} mode; "
                                             f"management OS {'on' if spec.management_os else 'off'}")
    elif recreate:
        attached = sorted({a["vm"] for a in vm_adapters if _same(str(a.get("switch") or ""), spec.switch)})
        why = "; ".join(recreate)
        if attached and not force:
            block("recreate-switch",
                  f"switch {spec.switch} would have to be re-created ({why}) and VMs are attached: "
                  f"{', '.join(attached)}",
                  "move or disconnect those VMs, or pass --force to re-create it anyway (they lose network meanwhile)")
        change("recreate-switch", spec.switch, f"remove and create again: {why}"
               + (f"; VMs disconnected: {', '.join(attached)}" if attached else ""), disruptive=True)
        plan.params["RemoveSwitch"] = str(existing["name"])
    if existing is None or recreate:
        plan.params.update(SwitchName=spec.switch, CreateSwitch=True, SwitchAdapters=uplinks,
                           EmbeddedTeaming=teaming == "set", BandwidthMode=spec.bandwidth_mode,
                           AllowManagementOS=spec.management_os)
    else:
        plan.params["SwitchName"] = str(existing["name"])
        if set_members:
            for a in set_members:
                free_or_block(a, f"it cannot join switch {spec.switch}")
            change("set-members", spec.switch, f"{', '.join(existing.get('adapters') or [])} -> {', '.join(set_members)}")
            plan.params["SetTeamMembers"] = set_members

    # Host vNICs. Those on a re-created switch go with it.
    fresh = existing is None or bool(recreate)
    lost = {v["name"].lower() for v in vnics if recreate and _same(str(v["switch"]), spec.switch)}
    current = {v["name"].lower(): v for v in vnics if v["name"].lower() not in lost}
    if fresh and spec.management_os:
        current[spec.switch.lower()] = {"name": spec.switch, "switch": spec.switch, "weight": None, "vlan": None,
                                        "addresses": [], "gateway": None}
    remove_vnic: list[str] = []
    add_vnic: list[str] = []
    weights: list[tuple[str, int, int]] = []
    vlans: list[tuple[str, int]] = []
    ips: list[tuple[str, str, int, str]] = []
    drops: list[tuple[str, str]] = []
    in_use = {a.split("/")[0]: i["name"] for i in [*nics, *vnics] for a in i.get("addresses") or []}
    for v in spec.ordered_vnics():
        cur = current.get(v.name.lower())
        if cur is not None and not _same(str(cur["switch"]), spec.switch):
            if v.role == "management":
                block("management", f"host vNIC {v.name} is on switch {cur['switch']}, not {spec.switch}: hvauto does "
                                    "not move a management vNIC in place (the path would drop mid-change)",
                      "give the new management vNIC another name; prune the old one in a later run")
                continue
            remove_vnic.append(str(cur["name"]))
            change("move-vnic", v.name, f"from switch {cur['switch']} to {spec.switch} (removed and added again)",
                   disruptive=True)
            lost.add(v.name.lower())
            cur = None
        if cur is None:
            add_vnic.append(v.name)
            change("add-vnic", v.name, f"{v.role} on {spec.switch}")
            cur = {"name": v.name, "switch": spec.switch, "weight": None, "vlan": None, "addresses": []}
        if v.weight is not None and cur.get("weight") != v.weight:
            old = int(cur.get("weight") or 0)
            weights.append((v.name, v.weight, old))
            change("set-weight", v.name, f"{cur.get('weight') if cur.get('weight') is not None else '-'} -> {v.weight}")
        want_vlan = v.vlan or 0
        if int(cur.get("vlan") or 0) != want_vlan:
            vlans.append((v.name, want_vlan))
            change("set-vlan", v.name, f"{cur.get('vlan') or 'untagged'} -> {want_vlan or 'untagged'}")
        addr = spec.address(host, v.name)
        if addr:
            want = ipaddress.IPv4Interface(addr)
            have = [ipaddress.IPv4Interface(a) for a in cur.get("addresses") or [] if _iface(a)]
            if want not in have:
                other = in_use.get(str(want.ip))
                if other is not None and not _same(other, v.name):
                    block("address", f"{want.ip} is already in use on {other}", "pick another address")
                ips.append((v.name, str(want.ip), want.network.prefixlen, v.gateway or ""))
                change("add-address", v.name, f"{want.with_prefixlen}" + (f" via {v.gateway}" if v.gateway else ""))
            for h in have:
                if h != want:
                    drops.append((v.name, str(h.ip)))
                    change("remove-address", v.name, f"{h.with_prefixlen} (after the management check)",
                           disruptive=True)
    spec_names = {v.name.lower() for v in spec.vnics}
    prune: list[str] = []
    if spec.prune_vnics:
        for hv in vnics:
            if (hv["name"].lower() not in spec_names and hv["name"].lower() not in lost
                    and _same(str(hv["switch"]), spec.switch)):
                prune.append(str(hv["name"]))
                change("remove-vnic", str(hv["name"]), "not in the spec (after the management check)", disruptive=True)
                lost.add(hv["name"].lower())
    else:
        for hv in vnics:
            if hv["name"].lower() not in spec_names and hv["name"].lower() not in lost \
                    and _same(str(hv["switch"]), spec.switch) and not _same(str(hv["name"]), spec.switch):
                warn("vnics", f"host vNIC {hv['name']} on {spec.switch} is not in the spec; left alone",
                     "set prune_vnics: true to remove it")

    dfw = spec.default_flow_weight
    if dfw is not None and (fresh or int((existing or {}).get("default_flow_weight") or 0) != dfw):
        plan.params["DefaultFlowWeight"] = dfw
        change("set-default-flow-weight", spec.switch,
               f"{'-' if fresh else (existing or {}).get('default_flow_weight')} -> {dfw}")

    # Migration networks.
    if spec.migration_networks is not None:
        mig = state.get("migration") or {}
        have_nets = {str(_net(n)) for n in mig.get("networks") or [] if _net(n)}
        want_nets = set(spec.migration_networks)
        add_nets = [n for n in spec.migration_networks if n not in have_nets]
        remove_nets = sorted(have_nets - want_nets)
        if mig.get("use_any_network", True):
            plan.params["RestrictMigration"] = True
            change("restrict-migration", "live migration", "UseAnyNetworkForMigration -> false")
        for n in add_nets:
            change("add-migration-network", n)
        for n in remove_nets:
            change("remove-migration-network", n)
        if add_nets:
            plan.params["MigrationAdd"] = add_nets
        if remove_nets:
            plan.params["MigrationRemove"] = remove_nets

    # The management path: never leave the host without one; the new one comes up before an old one goes.
    def mgmt_paths(interfaces: list[dict[str, Any]]) -> list[str]:
        return [f"{i['name']} ({', '.join(i.get('addresses') or [])})" for i in interfaces
                if i.get("gateway") and i.get("addresses")]

    dropped = {(n.lower(), ip) for n, ip in drops}
    before = [*nics, *vnics]
    after = [i for i in before if i["name"].lower() not in lost
             and any((i["name"].lower(), a.split("/")[0]) not in dropped for a in i.get("addresses") or [])]
    mv = spec.management
    new_mgmt = spec.address(host, mv.name) if mv is not None else None
    if not mgmt_paths(after) and not (new_mgmt and mv is not None and mv.gateway):
        if new_mgmt and mv is not None:
            block("management", f"after this plan {host} would have no default gateway: the management vNIC "
                                f"{mv.name} has no gateway in the spec and the current path "
                                f"({', '.join(mgmt_paths(before)) or 'none'}) goes",
                  f"set vnics[{mv.name}].gateway")
        else:
            block("management", f"after this plan {host} would have no management address (today: "
                                f"{', '.join(mgmt_paths(before)) or 'none'})",
                  "add a management vNIC with an address for this host, or keep the current path")
    if recreate:
        cut = [p for p in mgmt_paths([i for i in vnics if i["name"].lower() in lost and _same(str(i["switch"]),
                                                                                              spec.switch)])]
        others = mgmt_paths([i for i in before if i["name"].lower() not in lost])
        if cut and not others:
            block("management", f"re-creating switch {spec.switch} removes the management path {', '.join(cut)} "
                                "before a new one can come up: the host would be unreachable",
                  "move management to another adapter or switch first, or make this change from the console")

    if weights:
        # Decreases first, so the running sum never passes 100 on the way.
        weights.sort(key=lambda w: (w[1] - w[2] > 0, w[0].lower()))
        plan.params["Weights"] = [{"Vnic": w[0], "Weight": w[1]} for w in weights]
    # List the changes in the order fabric_apply makes them.
    weight_rank = {w[0].lower(): i for i, w in enumerate(weights)}
    plan.changes.sort(key=lambda c: (APPLY_ORDER.index(c.action),
                                     weight_rank.get(c.target.lower(), 0) if c.action == "set-weight" else 0))
    if remove_vnic:
        plan.params["RemoveVnic"] = remove_vnic
    if add_vnic:
        plan.params["AddVnic"] = add_vnic
    if vlans:
        plan.params["Vlans"] = [{"Vnic": v[0], "VlanId": v[1]} for v in vlans]
    if ips:
        plan.params["Addresses"] = [{"Vnic": i[0], "Address": i[1], "Prefix": i[2], "Gateway": i[3]} for i in ips]
    if new_mgmt and mv is not None and plan.changes:
        plan.params.update(ManagementVnic=mv.name, ManagementAddress=str(ipaddress.IPv4Interface(new_mgmt).ip))
    if drops:
        plan.params["DropAddresses"] = [{"Vnic": d[0], "Address": d[1]} for d in drops]
    if prune:
        plan.params["PruneVnic"] = prune
    return plan


# -- the group ------------------------------------------------------------------------------------------

@dataclass
class FabricReport(Report[HostPlan]):
    """Per-host plans (:class:`HostPlan`; a host that could not be read or applied carries its error)."""

    spec: str = ""
    action: str = "plan"
    applied: bool = False


def _switch_name_problems(states: dict[str, dict[str, Any]], spec: FabricSpec) -> list[Problem]:
    """VM-facing switch names must match across the group: else Compare-VM reports 33012 on a move."""
    out: list[Problem] = []
    if len(states) < 2:
        return out
    names_by_host = {h: {str(s["name"]).lower() for s in st.get("switches") or []} | {spec.switch.lower()}
                     for h, st in states.items()}
    for host, st in states.items():
        used = sorted({str(a["switch"]) for a in st.get("vm_adapters") or [] if a.get("switch")}, key=str.lower)
        for name in used:
            missing = [h for h in states if name.lower() not in names_by_host[h]]
            if missing:
                out.append(Problem(
                    check="switch-names", host=host, blocking=False, source="hvauto", message_id=33012,
                    message=f"VMs on {host} use switch {name!r}, which {', '.join(missing)} lack(s): a live migration "
                            "there fails with Compare-VM 33012 (\"Could not find Ethernet switch\")",
                    fix=f"give the VM switch the same name on every host of the group (rename on {', '.join(missing)})"))
    return out


def _targets(session: Session, host: str | list[str]) -> list[str]:
    return session.inventory.resolve([host] if isinstance(host, str) else list(host))


def plan(session: Session, *, host: str | list[str], spec: str | Path, force: bool = False,
         raise_failures: bool = True) -> FabricReport:
    """Validate the spec (no remote call), read every host once, and compute each host's plan.

    A host that cannot be read fails the call (HostsFailedError, every host's outcome inside) unless
    ``raise_failures`` is false: then its error is in ``report.errors`` and ``report.raise_if_failed()``
    raises later (the CLI prints the other hosts' plans first).
    """
    targets = _targets(session, host)
    fabric = load_spec(spec, hosts=targets)
    report = FabricReport(spec=fabric.path, action="plan", warnings=list(fabric.warnings), what_if=True)
    known = {n.lower() for n in session.inventory.hosts}
    for key in fabric.hosts:
        if key.lower() not in known:
            report.warnings.append(f"{fabric.path}: hosts.{key}: not a host in the inventory; its settings are unused")
    states: dict[str, dict[str, Any]] = {}

    def one(h: str) -> HostPlan:
        version = session.os_version(h)
        state = session.run(h, "fabric_get").data
        states[h] = state
        return compute_plan(fabric, h, version, state, force=force)

    report.add(session.fan_out(targets, one), HostPlan)
    for hp in report.hosts.values():
        report.problems.extend(hp.problems)
    report.problems.extend(_switch_name_problems(states, fabric))
    if raise_failures:
        report.raise_if_failed()
    return report


def apply(session: Session, *, host: str | list[str], spec: str | Path, force: bool = False,
          what_if: bool = False, raise_failures: bool = True) -> FabricReport:
    """Plan, refuse on any blocking problem (nothing changed anywhere), apply per host, verify.

    A failed host fails the call unless ``raise_failures`` is false (see :func:`plan`).
    """
    hosts_to_change(session.inventory, [host] if isinstance(host, str) else list(host))
    report = plan(session, host=host, spec=spec, force=force)
    report.action = "apply"
    report.what_if = what_if
    report.raise_if_failed()
    blocking = [p for p in report.problems if p.blocking]
    if blocking:
        raise PreflightError(report.problems, what="fabric apply")
    if what_if or not report.changed:
        return report
    fabric = load_spec(spec, hosts=list(report.hosts))

    def one(h: str) -> HostPlan:
        hp = report.hosts[h]
        if not hp.changed:
            return hp
        result = session.run(h, "fabric_apply", hp.params)
        hp.steps = list((result.data or {}).get("steps") or [])
        after = compute_plan(fabric, h, hp.version, session.run(h, "fabric_get").data, force=force)
        if after.changed:
            left = "; ".join(f"{c.action} {c.target}" for c in after.changes)
            raise VerifyError(f"{h}: verify: the host still differs from the spec after apply: {left}")
        return hp

    group = session.fan_out(list(report.hosts), one)
    for h, outcome in group.outcomes.items():
        if not outcome.ok:
            report.hosts[h].error = outcome.error
    report.applied = True
    if raise_failures:
        report.raise_if_failed()
    return report
