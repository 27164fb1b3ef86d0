"""vm_show: one VM in detail, as Get-VM and its companions report it."""

from __future__ import annotations

import hashlib
from typing import Any

from hvauto.lab.estate import vms_on

from . import LabCall, handles
from .vms import require_hyperv

#: The integration services Get-VMIntegrationService lists on a 2012 R2+ host (Guest Service Interface off by default).
SERVICES = ["Guest Service Interface", "Heartbeat", "Key-Value Pair Exchange", "Shutdown", "Time Synchronization",
            "VSS"]


def _mac(vm_id: str, i: int) -> str:
    """A stable dynamic MAC in Hyper-V's 00-15-5D range, as Get-VMNetworkAdapter writes it (no separators)."""
    tail = hashlib.sha256(f"{vm_id}/{i}".encode()).hexdigest()[:6].upper()
    return f"00155D{tail}"


def _chain(disk: dict[str, Any]) -> list[dict[str, Any]]:
    out, parent = [], disk.get("parent")
    while parent:
        out.append({"path": parent["path"], "file_size_bytes": parent.get("file_size")})
        parent = parent.get("parent")
    return out


def _detail(vm: dict[str, Any], now: float, version: str) -> dict[str, Any]:
    running = vm["state"] in ("Running", "Paused")
    startup = int(vm["memory_startup"])
    dynamic = bool(vm.get("memory_dynamic"))
    assigned = int(vm.get("memory_assigned", startup)) if running else 0
    disks = [{"path": d["path"], "type": "Differencing" if d.get("parent") else d.get("type", "Dynamic"),
              "size_bytes": d["size"], "file_size_bytes": d["file_size"], "parents": _chain(d)}
             for d in vm["disks"]]
    checkpoints, previous = [], ""
    for c in vm.get("checkpoints") or []:
        checkpoints.append({"name": c["name"], "created": str(c.get("created") or "2026-01-01T00:00:00.0000000Z"),
                            "parent": previous})
        previous = c["name"]
    addresses = list(vm.get("addresses") or [])
    adapters = [{"name": a.get("name", "Network Adapter"), "switch": a["switch"], "vlan": a.get("vlan"),
                 "mac": a.get("mac") or _mac(vm["id"], i),
                 "addresses": (addresses if i == 0 and running else [])} for i, a in enumerate(vm["adapters"])]
    services = [{"name": s, "enabled": s != "Guest Service Interface",
                 "status": ("OK" if running and s != "Guest Service Interface" else "")} for s in SERVICES]
    return {
        "name": vm["name"],
        "id": vm["id"],
        "state": vm["state"],
        "uptime_seconds": int(now - vm.get("started_at", now)) if running else 0,
        # Generation 2 arrives in 2012 R2: every VM on a 2012 host is generation 1.
        "generation": 1 if version == "2012" else int(vm["generation"]),
        "version": vm["version"],
        "path": vm["path"],
        "clustered": bool(vm["clustered"]),
        "cpu_count": int(vm["cpu_count"]),
        "processor_compatibility": bool(vm.get("processor_compatibility")),
        "memory": {"startup_bytes": startup, "assigned_bytes": assigned, "dynamic": dynamic,
                   "minimum_bytes": int(vm.get("memory_minimum", startup)) if dynamic else startup,
                   "maximum_bytes": int(vm.get("memory_maximum", startup)) if dynamic else startup},
        "smart_paging_path": str(vm.get("smart_paging_path") or vm["path"]),
        "adapters": adapters,
        "disks": disks,
        "checkpoints": checkpoints,
        "dvd": [vm["iso"]] if vm.get("iso") else [],
        "integration_services": services,
    }


@handles("vm_show")
def vm_show(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    name = str(call.params["Name"])
    found = [vm for vm in vms_on(call.estate, call.name) if vm["name"].lower() == name.lower()]
    return {"vms": [_detail(vm, call.now, call.version) for vm in found]}
