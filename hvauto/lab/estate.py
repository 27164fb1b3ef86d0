"""The lab's default estate (domain ``lab.test``) and the rules that derive state from it.

Every object is a JSON document with a ``key`` (unique within its kind) and, when it
lives on a host, a ``host``. Derived figures (free memory, free disk) are computed from
the VMs, never stored, so they cannot drift.
"""

from __future__ import annotations

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

#: VM configuration versions each release can run (Get-VMHostSupportedVersion).
SUPPORTED_VERSIONS: dict[str, list[str]] = {
    "2012": ["4.0"],
    "2012r2": ["5.0"],
    "2016": ["5.0", "6.2", "7.0", "7.1", "8.0"],
    "2019": ["5.0", "6.2", "7.0", "7.1", "8.0", "8.1", "8.2", "8.3", "9.0"],
    "2022": ["5.0", "6.2", "7.0", "7.1", "8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0"],
    "2025": ["5.0", "6.2", "7.0", "7.1", "8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0",
             "11.0", "12.0"],
}

MIGRATION_SERVICE = "Microsoft Virtual System Migration Service"


def _guid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{seed}.{DOMAIN}"))


def _host(name: str, os: str, roles: list[str], memory_gib: int, cpus: int, *,
          hyperv: dict[str, Any] | None = None, rid: int) -> dict[str, Any]:
    build, caption, ps = OS_INFO[os]
    return {
        "key": name,
        "host": name,
        "name": name,
        "fqdn": f"{name}.{DOMAIN}",
        "domain": DOMAIN,
        "os": os,
        "os_version": build,
        "caption": caption,
        "ps_version": ps,
        "roles": roles,
        "memory_total": memory_gib * GiB,
        "memory_reserved": 8 * GiB,
        "logical_processors": cpus,
        "cpu_vendor": "GenuineIntel",
        "sid": f"{DOMAIN_SID}-{rid}",
        "hyperv": hyperv,
    }


def _hyperv(*, enabled: bool, auth: str, networks: list[str], os: str) -> dict[str, Any]:
    return {
        "vm_path": r"D:\Hyper-V",
        "vhd_path": r"D:\Hyper-V\Virtual Hard Disks",
        "migration": {
            "enabled": enabled,
            "auth_type": auth,
            "use_any_network": not networks,
            "networks": networks,
            "max_vm_migrations": 2,
            "max_storage_migrations": 2,
            "performance_option": None if os == "2012" else "Compression",
        },
    }


def _vm(host: str, name: str, state: str, memory_gib: int, disk_gib: int, *, used_gib: int,
        switch: str, version: str, cpus: int = 2) -> dict[str, Any]:
    vm_id = _guid(f"vm-{name}")
    path = rf"D:\Hyper-V\{name}"
    return {
        "key": vm_id,
        "host": host,
        "id": vm_id,
        "name": name,
        "state": state,
        "cpu_count": cpus,
        "memory_startup": memory_gib * GiB,
        "generation": 2,
        "version": version,
        "path": path,
        "clustered": False,
        "passthrough_disks": [],
        "disks": [
            {
                "path": rf"{path}\Virtual Hard Disks\{name}.vhdx",
                "size": disk_gib * GiB,
                "file_size": used_gib * GiB,
            }
        ],
        "adapters": [{"name": "Network Adapter", "switch": switch}],
    }


def _switch(host: str, name: str, adapters: list[str]) -> dict[str, Any]:
    return {
        "key": f"{host}/{name}",
        "host": host,
        "name": name,
        "id": _guid(f"switch-{host}-{name}"),
        "type": "External",
        "adapters": adapters,
        "embedded_teaming": False,
        "bandwidth_mode": "Absolute",
        "allow_management_os": True,
    }


def _vnic(host: str, name: str, switch: str, addresses: list[str], gateway: str | None = None) -> dict[str, Any]:
    """A host (management OS) vNIC, "vEthernet (NAME)"; teams are kind "team" (none by default)."""
    return {"key": f"{host}/{name}", "host": host, "name": name, "switch": switch, "weight": None, "vlan": None,
            "addresses": addresses, "gateway": gateway}


def _nics(host: str, count: int, speed_gbps: int, driver: str) -> list[dict[str, Any]]:
    tag = uuid.uuid5(uuid.NAMESPACE_DNS, host).bytes[0]
    return [
        {
            "key": f"{host}/NIC{i}",
            "host": host,
            "name": f"NIC{i}",
            "link_speed_bps": speed_gbps * 10**9,
            "driver": driver,
            "mac": f"00-15-5D-{tag:02X}-00-{i:02X}",
            "status": "Up",
        }
        for i in range(1, count + 1)
    ]


def _volume(host: str, letter: str, size: int, used_other: int) -> dict[str, Any]:
    return {"key": f"{host}/{letter}", "host": host, "letter": letter, "size": size, "used_other": used_other}


def _computer(name: str, os: str, rid: int, *, delegate_to: list[str] | None = None,
              any_protocol: bool = False) -> dict[str, Any]:
    return {
        "key": name,
        "name": name,
        "sam": f"{name}$",
        "dns": f"{name}.{DOMAIN}",
        "sid": f"{DOMAIN_SID}-{rid}",
        "os": os,
        "allowed_to_delegate_to": delegate_to or [],
        "trusted_to_auth_for_delegation": any_protocol,
    }


def _spns(service: str, host: str) -> list[str]:
    return [f"{service}/{host}", f"{service}/{host}.{DOMAIN}"]


def default_estate() -> dict[str, list[dict[str, Any]]]:
    """The estate ``hvauto lab init`` creates (and ``hvauto lab reset`` restores)."""
    hosts = [
        _host("dc01", "2022", ["ad"], 16, 4, rid=1000),
        _host("fs01", "2022", ["fileserver"], 32, 8, rid=1101),
        _host("hostA", "2022", ["hyperv"], 256, 48, rid=1102,
              hyperv=_hyperv(enabled=True, auth="Kerberos", networks=["10.0.50.0/24"], os="2022")),
        _host("hostB", "2022", ["hyperv"], 384, 64, rid=1103,
              hyperv=_hyperv(enabled=True, auth="Kerberos", networks=["10.0.50.0/24"], os="2022")),
        _host("hv12", "2012r2", ["hyperv"], 128, 24, rid=1104,
              hyperv=_hyperv(enabled=False, auth="CredSSP", networks=[], os="2012r2")),
    ]
    vms = [
        _vm("hostA", "vm01", "Running", 4, 60, used_gib=22, switch="External", version="10.0"),
        _vm("hostA", "vm02", "Off", 2, 40, used_gib=9, switch="External", version="10.0"),
        _vm("hostA", "web01", "Running", 8, 80, used_gib=31, switch="External", version="9.0", cpus=4),
    ]
    switches = [
        _switch("hostA", "External", ["NIC1"]),
        _switch("hostB", "External", ["NIC1"]),
        _switch("hv12", "Ext2012", ["NIC1"]),
    ]
    # Each External switch shares its adapter with the management OS: the host's management
    # address (and default gateway) sits on the switch's default vNIC. A second vNIC carries the
    # host's address on the migration network 10.0.50.0/24: a host accepts live migration only on
    # addresses inside the networks it lists (Set-VMHost -UseAnyNetworkForMigration $false), so
    # without one there its MigrationServiceListenerIPAddressList is empty and every move to it refused.
    vnics = [
        _vnic("hostA", "External", "External", ["10.0.0.21/24"], "10.0.0.1"),
        _vnic("hostA", "LiveMigration", "External", ["10.0.50.21/24"]),
        _vnic("hostB", "External", "External", ["10.0.0.22/24"], "10.0.0.1"),
        _vnic("hostB", "LiveMigration", "External", ["10.0.50.22/24"]),
        _vnic("hv12", "Ext2012", "Ext2012", ["10.0.0.12/24"], "10.0.0.1"),
        _vnic("hv12", "LiveMigration", "Ext2012", ["10.0.50.12/24"]),
    ]
    adapters = [
        *_nics("hostA", 4, 10, "Mellanox ConnectX-4 Lx"),
        *_nics("hostB", 4, 10, "Mellanox ConnectX-4 Lx"),
        *_nics("hv12", 4, 10, "Intel(R) Ethernet 10G X520"),
    ]
    volumes = [
        _volume("fs01", "C", 200 * GiB, 60 * GiB),
        _volume("fs01", "D", 4 * TiB, 2 * TiB),
        _volume("hostA", "C", 200 * GiB, 40 * GiB),
        _volume("hostA", "D", 2 * TiB, 600 * GiB),
        _volume("hostB", "C", 200 * GiB, 40 * GiB),
        _volume("hostB", "D", 4 * TiB, 300 * GiB),
        _volume("hv12", "C", 200 * GiB, 50 * GiB),
        _volume("hv12", "D", 1 * TiB, 400 * GiB),
    ]
    computers = [
        _computer("dc01", "2022", 1000),
        _computer("fs01", "2022", 1101),
        _computer("hostA", "2022", 1102, any_protocol=True,
                  delegate_to=[*_spns(MIGRATION_SERVICE, "hostB"), *_spns("cifs", "hostB")]),
        _computer("hostB", "2022", 1103),
        _computer("hv12", "2012r2", 1104),
    ]
    groups = [
        {"key": "Domain Admins", "name": "Domain Admins", "sid": f"{DOMAIN_SID}-512", "members": ["Administrator"]},
        {"key": "Hyper-V Admins", "name": "Hyper-V Admins", "sid": f"{DOMAIN_SID}-1201", "members": []},
    ]
    return {
        "host": hosts,
        "vm": vms,
        "switch": switches,
        "vnic": vnics,
        "adapter": adapters,
        "volume": volumes,
        "computer": computers,
        "group": groups,
    }


# -- derived state -------------------------------------------------------------------------------------

def vms_on(est: Estate, host: str) -> list[dict[str, Any]]:
    return est.all("vm", host=host)


def memory_free(est: Estate, host: dict[str, Any]) -> int:
    used = sum(int(vm["memory_startup"]) for vm in vms_on(est, host["name"]) if vm["state"] in ("Running", "Paused"))
    return max(0, int(host["memory_total"]) - int(host["memory_reserved"]) - used)


def drive_of(path: str) -> str:
    return path[:1].upper() if len(path) > 1 and path[1] == ":" else ""


def volume_free(est: Estate, host: str, letter: str) -> int | None:
    vol = est.get("volume", f"{host}/{letter.upper()}")
    if vol is None:
        return None
    size, other = int(vol["size"]), int(vol["used_other"])
    used = sum(
        int(d["file_size"])
        for vm in vms_on(est, host)
        for d in vm["disks"]
        if drive_of(d["path"]) == letter.upper()
    )
    return max(0, size - other - used)
