"""doctor_host: one host's readiness facts, as the real script reads them."""

from __future__ import annotations

import time
from typing import Any

from hvauto.lab.estate import SUPPORTED_VERSIONS, memory_free, vms_on, volume_free

from . import LabCall, handles
from .migration import listener_addresses
from .vms import vm_view

#: WinRM's defaults on Windows Server 2012 and later (MaxShellsPerUser, MaxConcurrentOperationsPerUser).
WINRM_DEFAULTS = {"max_shells_per_user": 30, "max_concurrent_operations_per_user": 1500}


@handles("doctor_host")
def doctor_host(call: LabCall) -> dict[str, Any]:
    h = call.host
    hyperv = None
    if h.get("hyperv"):
        hv = h["hyperv"]
        mig = {k: v for k, v in dict(hv["migration"]).items() if k != "performance_option"}
        vms = []
        for vm in sorted(vms_on(call.estate, h["name"]), key=lambda v: str(v["name"]).lower()):
            view = vm_view(vm, call.now)
            vms.append({"name": view["name"], "id": view["id"], "state": view["state"], "version": view["version"],
                        "path": view["path"], "clustered": view["clustered"],
                        "memory_startup_bytes": view["memory_startup_bytes"],
                        "memory_assigned_bytes": view["memory_assigned_bytes"],
                        "disks": [d["path"] for d in view["disks"]], "switches": view["switches"]})
        hyperv = {
            "vm_path": hv["vm_path"],
            "vhd_path": hv["vhd_path"],
            "performance_option": None if h["os"] == "2012" else hv["migration"].get("performance_option"),
            "migration": mig,
            "listener_addresses": listener_addresses(call.estate, h),
            "switches": [s["name"] for s in call.estate.all("switch", host=call.name)],
            "supported_versions": SUPPORTED_VERSIONS[h["os"]],
            "vms": vms,
        }
    quotas = {**WINRM_DEFAULTS, **(h.get("winrm") or {})}
    return {
        "computer_name": h["name"].upper(),
        "fqdn": h["fqdn"],
        "os_version": h["os_version"],
        "ps_version": h["ps_version"],
        # The host's own clock: the machine's, shifted by the skew the estate gives the host.
        "utc_now_ms": int((time.time() + float(h.get("clock_skew_seconds") or 0)) * 1000),
        "cpu_vendor": h.get("cpu_vendor", ""),
        "memory_free_bytes": memory_free(call.estate, h),
        "memory_total_bytes": int(h["memory_total"]),
        "logical_processors": int(h["logical_processors"]),
        "volumes": [{"letter": v["letter"], "size_bytes": int(v["size"]),
                     "free_bytes": int(volume_free(call.estate, h["name"], v["letter"]) or 0)}
                    for v in sorted(call.estate.all("volume", host=h["name"]), key=lambda v: str(v["letter"]))],
        # Credential Guard runs only from 2016 on; the estate says where it is on.
        "credential_guard": bool(h.get("credential_guard")) and h["os"] not in ("2012", "2012r2"),
        "winrm": {"max_shells_per_user": quotas["max_shells_per_user"],
                  "max_concurrent_operations_per_user": quotas["max_concurrent_operations_per_user"]},
        "hyperv": hyperv,
    }
