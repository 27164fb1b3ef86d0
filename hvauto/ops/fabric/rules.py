"""The design rules of a converged fabric (hyperv-notes, NIC design), checked on the spec alone: errors and warnings."""

from __future__ import annotations

import ipaddress
from typing import Any

LBFO_2022 = ("from Windows Server 2022 a virtual switch can no longer be bound to an LBFO team "
             "(LBFO under Hyper-V is deprecated); use Switch Embedded Teaming (teaming: set or auto)")


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
    iscsi_doc = (doc.get("storage") or {}).get("iscsi")
    if iscsi_doc:
        portals = [ipaddress.ip_address(p) for p in iscsi_doc["portals"]]
        named = [t for t in targets if any(k.lower() == t.lower() for k in hosts)] or list(hosts)
        if not named:
            errors.append("storage.iscsi: no host under hosts: gives its initiator addresses (hosts.NAME.iscsi_addresses)")
        for hname in named:
            h = next(v for k, v in hosts.items() if k.lower() == hname.lower())
            iscsi = h.get("iscsi_adapters") if h.get("iscsi_adapters") is not None else iscsi_global
            if not iscsi:
                errors.append(f"hosts.{hname}: storage.iscsi needs iSCSI adapters (storage.iscsi_adapters)")
                continue
            given = {k.lower(): v for k, v in (h.get("iscsi_addresses") or {}).items()}
            paths = 0
            for a in iscsi:
                cidr = given.get(a.lower())
                if cidr is None:
                    errors.append(f"hosts.{hname}.iscsi_addresses: no initiator address for {a}")
                    continue
                subnet = ipaddress.ip_interface(cidr).network
                reach = [p for p in portals if p in subnet]
                if not reach:
                    errors.append(f"hosts.{hname}.iscsi_addresses.{a}: {cidr} reaches no portal "
                                  f"({', '.join(str(p) for p in portals)})")
                paths += len(reach)
            unknown = sorted(k for k in given if k not in {a.lower() for a in iscsi})
            for k in unknown:
                errors.append(f"hosts.{hname}.iscsi_addresses.{k}: not one of the host's iSCSI adapters")
            if paths == 1:
                warnings.append(f"hosts.{hname}: one iSCSI path only: MPIO has nothing to fail over to")
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
