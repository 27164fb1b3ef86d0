"""Preflight: every Hyper-V prerequisite of a move, each host read over its own session.

One round trip per host, concurrently: the source (VM, disks, switches, migration settings, running
jobs and ``CheckVirtualSystemIsMigratable``), the destination (settings, listener addresses, switches,
versions, memory, space, leftovers) and AD (delegation). :func:`evaluate` is pure: the same facts give
the same problems, each with its fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hvauto import versions
from hvauto.errors import (
    AmbiguousError,
    NotFoundError,
    Problem,
)
from hvauto.ops import ad as ad_ops
from hvauto.ops.migrate.model import ACTIVE_STATES, HOST_CHECK, LIVE, MIN_OS_FOR_VERSION, MOVABLE_STATES, SHARED_NOTHING
from hvauto.ops.migrate.steps import dest_preflight_params, source_preflight_params
from hvauto.ops.migrate.watch import moves
from hvauto.session import Session


@dataclass
class Preflight:
    source: dict[str, Any]
    dest: dict[str, Any]
    computers: dict[str, ad_ops.ADComputer] | None
    problems: list[Problem]
    vm: dict[str, Any] | None = None
    active_job: dict[str, Any] | None = None


def _host_fix(host: str, networks: list[str], *, enable: bool) -> str:
    subnet = networks[0] if networks else "<migration subnet>"
    return f"hvauto host migration {host} {'--enable ' if enable else ''}--auth kerberos --networks {subnet}"


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"


def evaluate(*, vm_name: str, mode: str, source: str, dest: str, storage_path: str | None,
             src: dict[str, Any], dst: dict[str, Any], computers: dict[str, ad_ops.ADComputer] | None,
             source_os: str, dest_fqdn: str) -> tuple[list[Problem], dict[str, Any] | None]:
    """Turn the three reads into every problem at once, each with its cause and its fix."""
    problems: list[Problem] = []

    def add(check: str, host: str, message: str, fix: str, *, blocking: bool = True, source_: str = "hvauto",
            message_id: int | None = None) -> None:
        problems.append(Problem(check=check, message=message, host=host, fix=fix, blocking=blocking, source=source_,
                                message_id=message_id))

    vms = src.get("vms") or []
    if not vms:
        raise NotFoundError(f"VM {vm_name!r} is not on {source}")
    if len(vms) > 1:
        raise AmbiguousError(f"{source} has {len(vms)} VMs named {vm_name!r}", hint="rename one (Rename-VM) first")
    vm = vms[0]
    smig, dmig = src["migration"], dst["migration"]
    networks = list(smig.get("networks") or []) or list(dmig.get("networks") or [])

    # -- source
    if vm["state"] not in MOVABLE_STATES:
        add("vm.state", source, f"{vm_name} is {vm['state']}: a VM in transition cannot be moved",
            f"wait until {vm_name} is Running or Off, then run the command again")
    if vm.get("clustered") and mode == SHARED_NOTHING:
        add("vm.clustered", source, f"{vm_name} is a clustered role: its storage is on a CSV",
            f"hvauto migrate --live {vm_name} {dest}")
    if vm.get("passthrough_disks"):
        add("vm.passthrough", source, f"{vm_name} has pass-through disk(s) {', '.join(vm['passthrough_disks'])}, "
            "which cannot be migrated", f"Remove-VMHardDiskDrive the pass-through disk on {source} (copy its data to a VHDX)")
    if not smig.get("enabled"):
        add("source.migration", source, f"live migration is disabled on {source}", _host_fix(source, networks, enable=True))
    if str(smig.get("auth_type")) == "CredSSP":
        add("source.auth", source, f"{source} authenticates migrations with CredSSP, which needs an interactive logon "
            "on the source (and fails under Credential Guard on 2025)", _host_fix(source, networks, enable=False))
    if mode == LIVE and not vm.get("clustered"):
        local = [d["path"] for d in vm.get("disks") or [] if not str(d["path"]).startswith("\\\\")]
        if local:
            add("vm.storage", source, f"{vm_name}'s disks are on {source}'s own storage ({', '.join(local)}): a live "
                "move without storage needs them on a share", f"hvauto migrate --shared-nothing {vm_name} {dest}")

    # -- destination
    if not dmig.get("enabled"):
        add("dest.migration", dest, f"live migration is disabled on {dest}: nothing listens for incoming moves",
            _host_fix(dest, networks, enable=True))
    if str(dmig.get("auth_type")) == "CredSSP":
        add("dest.auth", dest, f"{dest} authenticates migrations with CredSSP; use Kerberos with constrained "
            "delegation", _host_fix(dest, networks, enable=False))
    if dmig.get("enabled") and not dmig.get("use_any_network") and not dst.get("listener_addresses"):
        add("dest.listener", dest, f"{dest} has no address on its migration networks "
            f"({', '.join(dmig.get('networks') or []) or 'none listed'}): nothing listens for incoming moves",
            f"hvauto host migration {dest} --networks SUBNET (a subnet {dest} and {source} both have an address on)")
    if dmig.get("enabled") and dmig.get("use_any_network"):
        add("dest.networks", dest, f"{dest} accepts live migration on any network, the management network included "
            "(live-migration traffic is not encrypted)", _host_fix(dest, networks, enable=False), blocking=False)
    compare = src.get("check") or {}
    by_id = {int(i.get("message_id") or 0): i for i in compare.get("incompatibilities") or []}
    dest_switches = {s.lower() for s in dst.get("switches") or []}
    for sw in dict.fromkeys(vm.get("switches") or []):
        if sw and sw.lower() not in dest_switches:
            add("dest.switch", dest, f"{dest} has no virtual switch named {sw!r}, which {vm_name} is connected to "
                "(the host's check: Could not find Ethernet switch)",
                f"hvauto switch create {dest} {sw} ... (a switch of the same name, on the same network)",
                message_id=33012 if 33012 in by_id else None, source_=HOST_CHECK if 33012 in by_id else "hvauto")
    if vm["version"] not in (dst.get("supported_versions") or []):
        need = MIN_OS_FOR_VERSION.get(str(vm["version"]))
        add("dest.config_version", dest, f"{vm_name} has configuration version {vm['version']}; {dest} supports only "
            f"{', '.join(dst.get('supported_versions') or [])}",
            "a configuration version cannot be lowered: move it to a host that runs "
            f"{versions.label(need) if need else 'a newer Windows Server'} or later")
    if src.get("cpu_vendor") and dst.get("cpu_vendor") and src["cpu_vendor"] != dst["cpu_vendor"]:
        add("dest.cpu", dest, f"{source} has {src['cpu_vendor']} processors and {dest} has {dst['cpu_vendor']}: live "
            "migration cannot cross CPU vendors", f"shut {vm_name} down and export/import it instead")
    if vm["state"] in ("Running", "Paused") and int(dst.get("memory_free_bytes") or 0) < int(vm["memory_startup_bytes"]):
        add("dest.memory", dest, f"{dest} has {_gib(int(dst['memory_free_bytes']))} of memory free; {vm_name} needs "
            f"{_gib(int(vm['memory_startup_bytes']))}", f"free memory on {dest}, or stop {vm_name} and move it while off")
    disk_bytes = sum(int(d.get("file_size_bytes") or 0) for d in vm.get("disks") or [])
    path = dst.get("path") or {}
    if mode == SHARED_NOTHING and storage_path:
        if not path.get("drive_exists"):
            add("dest.path", dest, f"{dest} has no drive for {storage_path}",
                f"choose a --storage-path on a volume {dest} has (its default is {dst.get('vm_path')})")
        elif path.get("free_bytes") is not None and int(path["free_bytes"]) < disk_bytes:
            add("dest.space", dest, f"{storage_path} has {_gib(int(path['free_bytes']))} free; {vm_name}'s disks "
                f"need {_gib(disk_bytes)}", f"free space on {dest} or choose another --storage-path")
    if dst.get("planned"):
        add("dest.planned_vm", dest, f"a failed or cancelled move left a planned VM of {vm_name} on {dest}",
            f"hvauto migrate --cancel {vm_name}")
    for mid, item in by_id.items():
        if mid == 33012:
            continue
        add("host-check", dest, str(item.get("message")), f"see the message (reported by {HOST_CHECK} on the source)",
            source_=HOST_CHECK, message_id=mid or None)
    # -- Active Directory: constrained delegation on the source's computer account
    if mode == LIVE and vm.get("clustered"):
        pass  # the cluster service moves its roles itself: no constrained delegation involved
    elif computers is None:
        add("delegation", source, "no AD host in the inventory: constrained delegation was not checked",
            "add the domain controller with roles = [\"ad\"] to the inventory", blocking=False)
    else:
        comp = computers.get(source.lower())
        fix = f"hvauto delegation grant {source} --to {dest}"
        if comp is None or not comp.found:
            add("delegation", source, f"{source} has no computer account in AD", f"join {source} to the domain")
        else:
            spns = ad_ops.migration_spns(dest, dest_fqdn)
            if mode == LIVE:
                # The storage stays put: only the migration service itself needs the ticket.
                spns = [s for s in spns if not s.lower().startswith("cifs/")]
            missing = [s for s in spns if not comp.delegates_to(s)]
            if missing:
                add("delegation", source, f"{source} may not delegate to {dest} for: {', '.join(missing)} "
                    "(Kerberos constrained delegation on the source's computer account)", fix)
            if versions.index(source_os) >= versions.index("2016") and not comp.trusted_to_auth_for_delegation:
                add("delegation.protocol_transition", source, f"{source}'s delegation is \"Kerberos only\"; a move "
                    "started remotely needs \"use any authentication protocol\" (TrustedToAuthForDelegation)", fix)
    # Last, so that it can tell whether the problems above explain it.
    if compare.get("error") and not (mode == LIVE and vm.get("clustered")):
        rec = compare["error"]
        explained = any(p.blocking for p in problems)
        add("host-check", source, f"{HOST_CHECK} could not check the move: {rec.get('message')}",
            f"fix the problems listed here; {HOST_CHECK} then runs" if explained else
            f"check that {dest} is reachable from {source} on the migration network",
            source_=HOST_CHECK)

    return problems, vm


def preflight(session: Session, *, vm: str, vm_id: str, source: str, dest: str, storage_path: str | None,
              mode: str, dest_facts: dict[str, Any] | None = None) -> Preflight:
    """The three reads, concurrently (one round trip per host), then every problem at once.

    ``dest_facts``: the destination's answer already read (for its default VM path); it is not asked again.
    """
    dest_cfg = session.host(dest)
    dest_given = dest_cfg.fqdn
    ad_host = ad_ops.ad_host(session)
    steps: dict[str, Callable[[], Any]] = {
        source: lambda: session.run(source, "migrate_source_preflight",
                                    source_preflight_params(vm, dest_given, storage_path, mode)).data,
    }
    if dest_facts is None:
        steps[dest] = lambda: session.run(dest, "migrate_dest_preflight",
                                          dest_preflight_params(vm, vm_id, storage_path)).data
    if ad_host is not None:
        steps[ad_host] = lambda: ad_ops.get_computers(session, [source], ad_host=ad_host)
    group = session.fan_out(list(steps), lambda h: steps[session.host(h).name]())
    group.raise_if_failed()
    values = group.values()
    src = values[session.host(source).name]
    dst = dest_facts if dest_facts is not None else values[dest_cfg.name]
    computers = values.get(session.host(ad_host).name) if ad_host is not None else None
    problems, found = evaluate(vm_name=vm, mode=mode, source=source, dest=dest, storage_path=storage_path, src=src,
                               dst=dst, computers=computers, source_os=session.os_version(source),
                               dest_fqdn=dest_given)
    active = next((j for j in moves(list(src.get("jobs") or [])) if int(j["job_state"]) in ACTIVE_STATES), None)
    return Preflight(source=src, dest=dst, computers=computers, problems=problems, vm=found, active_job=active)
