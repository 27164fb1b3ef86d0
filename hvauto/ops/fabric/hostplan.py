"""One host's plan: what ``fabric_get`` read, compared with the spec, in the order ``fabric_apply`` runs it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import Problem
from hvauto.ops.fabric.iscsi import ISCSI_ORDER, plan_iscsi
from hvauto.ops.fabric.rules import LBFO_2022, _iface, _net
from hvauto.ops.fabric.spec import FabricSpec
from hvauto.results import Change, HostResult

#: The phases of fabric_apply, in the order the script runs them (the lock-out guard sits between
#: add-address and remove-address).
APPLY_ORDER = ("create-team", "recreate-switch", "create-switch", "set-members", "move-vnic", "add-vnic",
               "set-weight", "set-default-flow-weight", "set-vlan", "add-address", "remove-address", "remove-vnic",
               "restrict-migration", "add-migration-network", "remove-migration-network", *ISCSI_ORDER)


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

    plan_iscsi(spec, host, state, plan.params, change, warn)
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
