"""Get-VM and friends."""

from __future__ import annotations

from typing import Any

from hvauto.lab.estate import memory_in_use, vms_on

from . import CmdletError, LabCall, handles


def require_hyperv(call: LabCall) -> None:
    if not call.host.get("hyperv"):
        # What a host without the Hyper-V module says when a script calls Get-VM.
        raise CmdletError(
            "The term 'Get-VM' is not recognized as the name of a cmdlet, function, script file, or operable program.",
            category="ObjectNotFound",
            fqid="CommandNotFoundException",
            target="Get-VM",
            exception="System.Management.Automation.CommandNotFoundException",
        )


def vm_view(vm: dict[str, Any], now: float) -> dict[str, Any]:
    running = vm["state"] in ("Running", "Paused")
    return {
        "name": vm["name"],
        "id": vm["id"],
        "state": vm["state"],
        "cpu_count": vm["cpu_count"],
        "memory_startup_bytes": vm["memory_startup"],
        "memory_assigned_bytes": memory_in_use(vm),
        "uptime_seconds": int(now - vm.get("started_at", now)) if running else 0,
        "generation": vm["generation"],
        "version": vm["version"],
        "path": vm["path"],
        "clustered": vm["clustered"],
        "disks": [{"path": d["path"], "size_bytes": d["size"], "file_size_bytes": d["file_size"]} for d in vm["disks"]],
        "switches": [a["switch"] for a in vm["adapters"]],
    }


@handles("vm_list")
def vm_list(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    names = call.params.get("Name") or []
    wanted = {n.lower() for n in names}  # PowerShell -contains compares case-insensitively
    vms = [vm for vm in vms_on(call.estate, call.name) if not wanted or vm["name"].lower() in wanted]
    views = [vm_view(vm, call.now) for vm in sorted(vms, key=lambda v: v["name"].lower())]
    if call.version == "2012":
        for v in views:
            v["generation"] = 1  # generation 2 arrives in 2012 R2
    return {"vms": views}
