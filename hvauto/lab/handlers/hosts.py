"""Host facts as Get-CimInstance, Get-VMHost and Get-VMMigrationNetwork report them."""

from __future__ import annotations

from typing import Any

from hvauto.lab.estate import SUPPORTED_VERSIONS, memory_free, vms_on

from . import LabCall, handles


@handles("host_facts")
def host_facts(call: LabCall) -> dict[str, Any]:
    h = call.host
    hyperv = None
    if h.get("hyperv"):
        hv = h["hyperv"]
        mig = dict(hv["migration"])
        if h["os"] == "2012":
            mig["performance_option"] = None
        hyperv = {
            "vm_count": len(vms_on(call.estate, h["name"])),
            "vm_path": hv["vm_path"],
            "vhd_path": hv["vhd_path"],
            "supported_versions": SUPPORTED_VERSIONS[h["os"]],
            "migration": mig,
        }
    return {
        "computer_name": h["name"].upper(),
        "domain": h["domain"],
        "fqdn": h["fqdn"],
        "os": {"caption": h["caption"], "version": h["os_version"], "build": h["os_version"].split(".")[-1]},
        "ps_version": h["ps_version"],
        "memory": {"total_bytes": h["memory_total"], "free_bytes": memory_free(call.estate, h)},
        "logical_processors": h["logical_processors"],
        "hyperv": hyperv,
    }
