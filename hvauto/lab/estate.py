"""The lab's domain (``lab.test``), Windows' facts per release, and the rules that derive state from the estate.

The estate itself is data: ``hvauto/lab/estates/default.yaml`` (see :mod:`hvauto.lab.estatefile`).
Every object is a JSON document with a ``key`` (unique within its kind) and, when it lives on a
host, a ``host``. Derived figures (free memory, free disk) are computed from
the VMs, never stored, so they cannot drift.
"""

from __future__ import annotations

import ntpath
import uuid
from typing import Any

from .store import Estate

GiB = 1024**3
TiB = 1024**4
DOMAIN = "lab.test"
NETBIOS = "LAB"
DOMAIN_SID = "S-1-5-21-3623811015-3361044348-30300820"

#: Kernel version, caption and PowerShell per release, as a real host reports them.
OS_INFO: dict[str, tuple[str, str, str]] = {
    "2012": ("6.2.9200", "Microsoft Windows Server 2012 Datacenter", "3.0"),
    "2012r2": ("6.3.9600", "Microsoft Windows Server 2012 R2 Datacenter", "4.0"),
    "2016": ("10.0.14393", "Microsoft Windows Server 2016 Datacenter", "5.1.14393.0"),
    "2019": ("10.0.17763", "Microsoft Windows Server 2019 Datacenter", "5.1.17763.1"),
    "2022": ("10.0.20348", "Microsoft Windows Server 2022 Datacenter", "5.1.20348.1"),
    "2025": ("10.0.26100", "Microsoft Windows Server 2025 Datacenter", "5.1.26100.1"),
}

#: VM configuration versions each release can run (Get-VMHostSupportedVersion), Microsoft's table [WSD-Ver];
#: 2012's 4.0 from [BOOK-MWS16]. 2022 and 2025 run nothing below 8.0.
SUPPORTED_VERSIONS: dict[str, list[str]] = {
    "2012": ["4.0"],
    "2012r2": ["5.0"],
    "2016": ["5.0", "6.2", "7.0", "7.1", "8.0"],
    "2019": ["5.0", "6.2", "7.0", "7.1", "8.0", "8.1", "8.2", "8.3", "9.0"],
    "2022": ["8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0"],
    "2025": ["8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0", "11.0", "12.0"],
}
#: Versions a release accepts in an incoming live migration besides those it runs, and what the VM becomes:
#: 2012 R2 takes a 2012 VM (4.0) and upgrades it to 5.0 ("cross release live migration") [KB2956020] [BOOK-MWS16].
UPGRADED_ON_ARRIVAL: dict[str, dict[str, str]] = {"2012r2": {"4.0": "5.0"}}


def accepts_version(dest_os: str, version: str) -> bool:
    """The destination runs the VM's configuration version, or takes it in a supported cross-version move."""
    return version in SUPPORTED_VERSIONS[dest_os] or version in UPGRADED_ON_ARRIVAL.get(dest_os, {})


MIGRATION_SERVICE = "Microsoft Virtual System Migration Service"


def _guid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{seed}.{DOMAIN}"))


# -- derived state -------------------------------------------------------------------------------------

def vms_on(est: Estate, host: str) -> list[dict[str, Any]]:
    return est.all("vm", host=host)


def memory_in_use(vm: dict[str, Any]) -> int:
    """What a VM holds of its host's memory: nothing when it is not running; with Dynamic Memory what is
    assigned now (``MemoryAssigned``), else its startup memory."""
    if vm["state"] not in ("Running", "Paused"):
        return 0
    if vm.get("memory_dynamic"):
        return int(vm.get("memory_assigned") or vm["memory_startup"])
    return int(vm["memory_startup"])


def memory_free(est: Estate, host: dict[str, Any]) -> int:
    used = sum(memory_in_use(vm) for vm in vms_on(est, host["name"]))
    return max(0, int(host["memory_total"]) - int(host["memory_reserved"]) - used)


def drive_of(path: str) -> str:
    return path[:1].upper() if len(path) > 1 and path[1] == ":" else ""


def volume_free(est: Estate, host: str, letter: str) -> int | None:
    vol = est.get("volume", f"{host}/{letter.upper()}")
    if vol is None:
        return None
    size, other = int(vol["size"]), int(vol["used_other"])
    used = sum(int(f["file_size"]) for vm in vms_on(est, host) for f in vm_file_list(vm)
               if drive_of(f["path"]) == letter.upper())
    used += sum(int(f["file_size"]) for f in est.all("file", host=host) if drive_of(f["path"]) == letter.upper())
    return max(0, size - other - used)


def disk_chain(disk: dict[str, Any]) -> list[dict[str, Any]]:
    """A disk and its parents, child first: each ``{path, file_size}``."""
    out = [{"path": disk["path"], "file_size": int(disk.get("file_size") or 0)}]
    parent = disk.get("parent")
    while parent:
        out.append({"path": parent["path"], "file_size": int(parent.get("file_size") or 0)})
        parent = parent.get("parent")
    return out


def vm_file_list(vm: dict[str, Any]) -> list[dict[str, Any]]:
    """Every file of a lab VM, ``{path, file_size, kind}``: config, VHDs and parents, checkpoints, saved state,
    smart paging folder and ISO (the ISO's size is not the VM's: 0)."""
    out = [{"path": vm["path"], "file_size": 0, "kind": "configuration"}]
    for d in vm.get("disks") or []:
        for i, f in enumerate(disk_chain(d)):
            out.append({**f, "kind": "vhd" if i == 0 else "parent"})
    for c in vm.get("checkpoints") or []:
        for f in c.get("files") or []:
            out.append({"path": f["path"], "file_size": int(f["file_size"]), "kind": "checkpoint"})
    saved = vm.get("saved_state")
    if saved is None and vm.get("state") == "Saved":
        saved = int(vm.get("memory_assigned") or vm["memory_startup"])
    if saved:
        out.append({"path": ntpath.join(vm["path"], "Virtual Machines", f"{vm['id'].upper()}.vmrs"),
                    "file_size": int(saved), "kind": "saved_state"})
    # Smart paging (used only while the VM restarts) defaults to the VM's folder.
    out.append({"path": vm.get("smart_paging_path") or vm["path"], "file_size": 0, "kind": "smart_paging"})
    if vm.get("iso"):
        out.append({"path": vm["iso"], "file_size": 0, "kind": "iso"})
    return out


def vm_files(vm: dict[str, Any]) -> list[str]:
    return [f["path"] for f in vm_file_list(vm)]
