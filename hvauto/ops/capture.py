"""``hvauto lab capture``: read an estate, read-only, into the lab's estate format.

Every host is read over its own session, concurrently: ``doctor_host`` (OS, memory, processors,
drives, migration settings, VMs), on a Hyper-V host ``fabric_get`` (adapters, switches, host
vNICs) and one ``vm_show`` per VM name (disks with their parents, checkpoints, memory, DVD), on
a file server ``smb_share_list`` and one ``smb_share_get`` per share (both ACLs, by account), and
on the AD host one ``ad_computer_get`` (delegation). Nothing is written to any host, and no
secret is read. The result is a document of ``hvauto/schemas/estate.schema.json``: ``hvauto lab
init --estate FILE`` builds a twin of the estate to rehearse an evacuation or a runbook on.

What the format cannot hold is said in the document's ``notes``: the lab's domain is always
``lab.test`` (accounts are written ``LAB\\NAME``), and hosts' IDs and MACs are kept where the
format has room for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hvauto import versions
from hvauto.errors import HvautoError, UsageError
from hvauto.ops import ad as ad_ops
from hvauto.session import Session

GiB = 1024**3
_FOLDER_RIGHTS = {"FullControl": "FullControl", "Modify, Synchronize": "Modify",
                  "ReadAndExecute, Synchronize": "ReadAndExecute"}


class Size(int):
    """A size in bytes that the estate file shows as ``60 GiB`` when it is a whole number of a unit."""


def _size(n: int | None) -> int:
    return Size(int(n or 0))


def _size_yaml(dumper: Any, value: Size) -> Any:
    n = int(value)
    for unit, factor in (("TiB", 1024**4), ("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if n and n % factor == 0:
            return dumper.represent_str(f"{n // factor} {unit}")
    return dumper.represent_int(n)


def _read_host(session: Session, host: str) -> dict[str, Any]:
    cfg = session.host(host)
    out: dict[str, Any] = {"facts": session.run(cfg.name, "doctor_host", version=session.os_version(cfg.name)).data}
    if "hyperv" in cfg.roles and out["facts"].get("hyperv") is not None:
        out["fabric"] = session.run(cfg.name, "fabric_get").data
        names = sorted({str(v["name"]) for v in out["facts"]["hyperv"]["vms"]})
        out["vms"] = [vm for n in names for vm in session.run(cfg.name, "vm_show", {"Name": n}).data["vms"]]
    if "fileserver" in cfg.roles:
        accounts = [f"{session.inventory.netbios}\\{h}$" for h in session.inventory.hosts]
        shares = session.run(cfg.name, "smb_share_list").data["shares"]
        out["shares"] = [(s, session.run(cfg.name, "smb_share_get", {"Name": s["name"], "Path": "",
                                                                      "Account": accounts}).data) for s in shares]
    return out


def _account(name: str, netbios: str) -> str:
    """``CONTOSO\\HV1$`` as the lab's ``LAB\\HV1$``; a well-known account stays as it is."""
    if "\\" in name:
        domain, _, rest = name.partition("\\")
        if domain.upper() not in ("NT AUTHORITY", "BUILTIN") and domain.upper() == netbios.upper():
            return f"LAB\\{rest}"
    return name


def _vm(vm: dict[str, Any], files_on: Callable[[str, int], None]) -> dict[str, Any]:
    mem = vm["memory"]
    memory: dict[str, Any] = {"startup": _size(mem["startup_bytes"])}
    if mem["dynamic"]:
        memory.update(dynamic=True, minimum=_size(mem["minimum_bytes"]), maximum=_size(mem["maximum_bytes"]))
        if vm["state"] in ("Running", "Paused"):
            memory["assigned"] = _size(mem["assigned_bytes"])
    disks = []
    for d in vm["disks"]:
        disk: dict[str, Any] = {"path": d["path"], "size": _size(d["size_bytes"]), "used": _size(d["file_size_bytes"])}
        files_on(d["path"], _size(d["file_size_bytes"]))
        parent: dict[str, Any] | None = None
        for p in reversed(d["parents"]):
            parent = {"path": p["path"], "used": _size(p["file_size_bytes"]), **({"parent": parent} if parent else {})}
            files_on(p["path"], _size(p["file_size_bytes"]))
        if parent:
            disk["parent"] = parent
        disks.append(disk)
    out: dict[str, Any] = {"name": vm["name"], "id": vm["id"], "state": vm["state"], "cpus": int(vm["cpu_count"]),
                           "generation": int(vm["generation"]), "version": vm["version"], "path": vm["path"],
                           "memory": memory, "disks": disks,
                           "adapters": [{"name": a["name"], "switch": a["switch"] or None} for a in vm["adapters"]]}
    if vm["clustered"]:
        out["clustered"] = True
    if vm["processor_compatibility"]:
        out["processor_compatibility"] = True
    if vm["checkpoints"]:
        out["checkpoints"] = [{"name": c["name"]} for c in vm["checkpoints"]]
    if vm["dvd"]:
        out["iso"] = vm["dvd"][0]
    if vm.get("smart_paging_path") and vm["smart_paging_path"] != vm["path"]:
        out["smart_paging_path"] = vm["smart_paging_path"]
    return out


def _host(session: Session, name: str, read: dict[str, Any], rid: int | None) -> dict[str, Any]:
    cfg = session.host(name)
    facts = read["facts"]
    os_key = versions.from_kernel_version(str(facts["os_version"])) or session.known_version(name) or "2022"
    h: dict[str, Any] = {"name": cfg.name, "os": os_key, "roles": list(cfg.roles),
                         "memory": _size(facts["memory_total_bytes"]),
                         "logical_processors": int(facts["logical_processors"]),
                         "cpu_vendor": facts["cpu_vendor"] if facts["cpu_vendor"] in ("GenuineIntel", "AuthenticAMD")
                         else "GenuineIntel"}
    if rid is not None:
        h["rid"] = rid
    if not cfg.os:
        h["inventory_os"] = False
    on_drive: dict[str, int] = {}

    def files_on(path: str, used: int) -> None:
        if len(path) > 1 and path[1] == ":":
            on_drive[path[0].upper()] = on_drive.get(path[0].upper(), 0) + used

    vms = [_vm(vm, files_on) for vm in read.get("vms") or []]
    running = sum(_size(v["memory"]["assigned_bytes"]) for v in read.get("vms") or []
                  if v["state"] in ("Running", "Paused"))
    h["memory_reserved"] = max(0, _size(facts["memory_total_bytes"]) - _size(facts["memory_free_bytes"]) - running)
    h["drives"] = [{"letter": v["letter"], "size": _size(v["size_bytes"]),
                    "used": max(0, _size(v["size_bytes"]) - _size(v["free_bytes"]) - on_drive.get(v["letter"], 0))}
                   for v in facts.get("volumes") or []]
    fabric = read.get("fabric")
    if fabric is not None:
        h["nics"] = [{"name": a["name"], "speed_gbps": _size(a["link_speed_bps"]) / 10**9, "driver": a["driver"],
                      "mac": a["mac"], "status": a["status"] if a["status"] in ("Up", "Disconnected", "Disabled")
                      else "Up", **({"addresses": list(a["addresses"])} if a.get("addresses") else {})}
                     for a in fabric["adapters"]]
        h["switches"] = [{"name": s["name"], "type": s["type"], "adapters": list(s["adapters"]),
                          "embedded_teaming": bool(s["embedded_teaming"]), "bandwidth_mode": s["bandwidth_mode"],
                          "management_os": bool(s["allow_management_os"])} for s in fabric["switches"]]
        h["vnics"] = [{"name": v["name"], "switch": v["switch"], "addresses": list(v["addresses"]),
                       **({"gateway": v["gateway"]} if v.get("gateway") else {}),
                       **({"vlan": v["vlan"]} if v.get("vlan") is not None else {}),
                       **({"weight": v["weight"]} if v.get("weight") is not None else {})} for v in fabric["vnics"]]
    hv = facts.get("hyperv")
    if hv is not None:
        mig = hv["migration"]
        migration: dict[str, Any] = {"enabled": bool(mig["enabled"]), "auth": mig["auth_type"],
                                     "networks": list(mig["networks"]), "use_any_network": bool(mig["use_any_network"]),
                                     "max_vm_migrations": int(mig["max_vm_migrations"]),
                                     "max_storage_migrations": int(mig["max_storage_migrations"])}
        if hv.get("performance_option"):
            migration["performance"] = hv["performance_option"]
        h["hyperv"] = {"vm_path": hv["vm_path"], "vhd_path": hv["vhd_path"], "migration": migration}
        h["vms"] = vms
    shares = []
    for s, state in read.get("shares") or []:
        netbios = session.inventory.netbios
        access = [{"account": _account(a["account"], netbios), "right": a["right"],
                   **({"type": a["type"]} if a["type"] != "Allow" else {})}
                  for a in state.get("share_access") or [] if a.get("account")]
        folder = [{"account": _account(a["account"], netbios), "rights": _FOLDER_RIGHTS.get(a["rights"], "FullControl"),
                   **({"type": a["type"]} if a["type"] != "Allow" else {})}
                  for a in (state.get("folder") or {}).get("acl") or [] if not a["inherited"] and a.get("account")]
        shares.append({"name": s["name"], "path": s["path"], "access": access, "folder_access": folder,
                       **({"continuously_available": True} if s["continuously_available"] else {}),
                       **({"encrypt_data": True} if s["encrypt_data"] else {})})
    if shares:
        h["shares"] = shares
    if facts.get("clock_skew_seconds"):
        h["clock_skew_seconds"] = facts["clock_skew_seconds"]
    return h


def capture(session: Session, hosts: list[str] | None = None) -> dict[str, Any]:
    """The estate of ``hosts`` (default: the whole inventory) as an estate document; every host read at once."""
    inv = session.inventory
    targets = inv.resolve(hosts) if hosts else list(inv.hosts)
    if not targets:
        raise UsageError("nothing to capture: the inventory has no hosts")
    group = session.fan_out(targets, lambda h: _read_host(session, h))
    group.raise_if_failed()
    reads = group.values()
    dc = ad_ops.ad_host(session)
    computers: dict[str, ad_ops.ADComputer] = {}
    if dc is not None:
        try:
            computers = ad_ops.get_computers(session, targets, ad_host=dc)
        except HvautoError:
            computers = {}

    def rid_of(name: str) -> int | None:
        c = computers.get(name.lower())
        tail = c.sid.rsplit("-", 1)[-1] if c and c.found and c.sid else ""
        return int(tail) if tail.isdigit() and int(tail) >= 1000 else None

    doc: dict[str, Any] = {"hosts": [_host(session, h, reads[h], rid_of(h)) for h in targets]}
    found = [(h, computers[h.lower()]) for h in targets if h.lower() in computers and computers[h.lower()].found]
    if found:
        doc["computers"] = [{"name": h, **({"any_protocol": True} if c.trusted_to_auth_for_delegation else {}),
                             **({"delegate_to": list(c.allowed_to_delegate_to)} if c.allowed_to_delegate_to else {})}
                            for h, c in found]
    return doc


def to_yaml(doc: dict[str, Any], source: str) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(Size, _size_yaml)

    head = (f"# Captured by `hvauto lab capture` from {source}: read-only, no secrets.\n"
            "# Load it with `hvauto lab init DIR --estate THIS-FILE` (format: hvauto/schemas/estate.schema.json).\n"
            "# The lab's domain is always lab.test: accounts of the inventory's domain are written LAB\\NAME.\n")
    return head + yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=110)


__all__ = ["capture", "to_yaml"]
