"""Live, shared-nothing and storage migration: Msvm_VirtualSystemMigrationService, Msvm_MigrationJob.

``MigrateVirtualSystemToHost`` answers 4096 and the reference of a job; what goes wrong after
that (the destination refusing the connection, missing delegation, an incompatible destination,
no room) ends the *job* in Exception with its error, as VMMS reports it, not the call. Only what
the service refuses outright (the VM already being moved, a bad parameter) is a 327xx return
value. A move that reaches the destination is preceded by a "Creating Remote Virtual Machine"
job (JobType 300) of the same VM: a check-type job that a poller must never take for the move.
The rules and their sources are listed in ``docs/fidelity.md``.

A move is a job (kind ``migration_job``, owned by the source host) that takes lab time in
proportion to what it copies: disk bytes (when the storage moves) plus memory (when the VM
runs), over the migration links of both hosts, shared by the moves using each at every moment
and recomputed as moves start and end (:func:`settle`). ``time_scale``
(lab meta, ``hvauto lab speed``) speeds lab time up.
Jobs are settled lazily by :func:`settle`, which runs at the start of every lab call inside
that call's transaction: a finished job is applied to the estate exactly once (the VM
changes host, its files move under the destination path; free space follows, since it is
derived), however many polls race for it. Hosts run at most ``MaximumVirtualMachineMigrations``
(``MaximumStorageMigrations`` for storage moves) at once; more are queued, as Hyper-V does.

Injected failure: a VM with ``lab_fail_migration`` (a percentage) fails when its move reaches
it (JobState 10), leaving a planned VM on the destination, once.
"""

from __future__ import annotations

import ipaddress
import ntpath
import uuid
from typing import Any

from hvauto import hyperv
from hvauto.lab.estate import (
    MIGRATION_SERVICE,
    SUPPORTED_VERSIONS,
    UPGRADED_ON_ARRIVAL,
    accepts_version,
    drive_of,
    memory_free,
    memory_in_use,
    vm_file_list,
    vms_on,
    volume_free,
)
from hvauto.lab.store import Estate
from hvauto.remote.base import Progress

from . import CmdletError, LabCall, before_every_call, handles
from .vms import require_hyperv

JS = hyperv.JobState
NEW, STARTING, RUNNING, COMPLETED, TERMINATED, KILLED, EXCEPTION = (
    JS.NEW, JS.STARTING, JS.RUNNING, JS.COMPLETED, JS.TERMINATED, JS.KILLED, JS.EXCEPTION)
ACTIVE = hyperv.ACTIVE_JOB_STATES
MT = hyperv.MigrationType
VIRTUAL_SYSTEM, STORAGE, VIRTUAL_SYSTEM_AND_STORAGE = MT.VIRTUAL_SYSTEM, MT.STORAGE, MT.VIRTUAL_SYSTEM_AND_STORAGE
#: Lab seconds the "Creating Remote Virtual Machine" job of a move runs.
REMOTE_VM_SECONDS = 2.0
#: From this percentage on a move is switching over and a RequestStateChange(Terminate) is refused with 4097
#: (lab rule: Msvm_MigrationJob.Cancellable is advisory, and a cancel "may still fail").
NOT_CANCELLABLE_FROM = 90
METHOD = "MigrateVirtualSystemToHost"

#: Lab seconds a job stays visible after it ends (CIM_ConcreteJob.TimeBeforeRemoval, 5 minutes).
TIME_BEFORE_REMOVAL = 300.0
#: Storage moves on one host copy between its own volumes.
LOCAL_COPY_BPS = 2 * 10**9

VM_FQID = "Microsoft.HyperV.PowerShell.Commands.MoveVM"


# -- lab time and bandwidth -----------------------------------------------------------------------------

def time_scale(est: Estate) -> float:
    try:
        return max(1e-6, float(est.meta("time_scale", "1.0") or "1.0"))
    except ValueError:
        return 1.0


def pair_key(a: str, b: str) -> str:
    x, y = sorted((a.lower(), b.lower()))
    return f"{x}/{y}"


# -- migration networks -------------------------------------------------------------------------------------

def host_addresses(est: Estate, host: str) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    """Every address of the host's adapters and vNICs, with its prefix."""
    out = []
    for kind in ("adapter", "vnic"):
        for iface in est.all(kind, host=host):
            for a in iface.get("addresses") or []:
                try:
                    out.append(ipaddress.ip_interface(a))
                except ValueError:
                    continue
    return out


def migration_networks(mig: dict[str, Any]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The host's migration networks (Get-VMMigrationNetwork), as networks; an unparsable entry is skipped."""
    nets = []
    for n in mig.get("networks") or []:
        try:
            nets.append(ipaddress.ip_network(n, strict=False))
        except ValueError:
            continue
    return nets


def listener_addresses(est: Estate, host: dict[str, Any]) -> list[str]:
    """``MigrationServiceListenerIPAddressList``: the host's addresses incoming migrations are accepted on.

    With migration off nothing listens; with ``UseAnyNetworkForMigration`` every address; otherwise only the
    addresses inside the host's migration networks (Get-VMMigrationNetwork).
    """
    mig = ((host.get("hyperv") or {}).get("migration") or {})
    if not mig.get("enabled"):
        return []
    addresses = host_addresses(est, host["name"])
    if mig.get("use_any_network"):
        return [str(a.ip) for a in addresses]
    nets = migration_networks(mig)
    return [str(a.ip) for a in addresses if any(a.ip.version == n.version and a.ip in n for n in nets)]


def reachable(est: Estate, source: str, address: str) -> bool:
    """The source has an address on the same subnet as ``address`` (the lab routes no migration traffic)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(a.ip.version == ip.version and ip in a.network for a in host_addresses(est, source))


def method_error(code: int, target: str) -> CmdletError:
    """A refused MigrateVirtualSystemToHost, as templates/_migration_wmi.ps1.j2 raises it."""
    meaning = hyperv.MIGRATION_METHOD_RESULTS.get(code, "an undocumented return value")
    return CmdletError(f"{METHOD} returned {code}: {meaning}",
                       category="PermissionDenied" if code == hyperv.METHOD_ACCESS_DENIED else "InvalidOperation",
                       fqid=hyperv.method_error_fqid(METHOD, code), target=target,
                       exception="System.InvalidOperationException")


# -- names --------------------------------------------------------------------------------------------------

def lab_host(est: Estate, name: str) -> dict[str, Any] | None:
    """A host by short name or FQDN, as DNS would resolve it."""
    short = name.strip().split(".")[0]
    host = est.get("host", short) if short else None
    if host is None:
        return None
    if "." in name and name.lower() != str(host["fqdn"]).lower():
        return None
    return host


def vm_by_id(est: Estate, host: str, vm_id: str) -> dict[str, Any] | None:
    """The VM with this VMId on this host (two hosts may each have one: a VMId is unique per host only)."""
    return next((vm for vm in vms_on(est, host) if str(vm["id"]).lower() == vm_id.lower()), None)


def get_vm_by_id(call: LabCall, vm_id: str) -> dict[str, Any]:
    vm = vm_by_id(call.estate, call.name, vm_id)
    if vm is None:
        raise CmdletError(f"Hyper-V was unable to find a virtual machine with id '{vm_id}'.",
                          category="InvalidArgument", fqid="InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM",
                          target=vm_id)
    return vm


def running(vm: dict[str, Any]) -> bool:
    return vm["state"] in ("Running", "Paused")


def moved_path(dest_path: str, path: str) -> str:
    return ntpath.join(dest_path, ntpath.basename(path))


# -- Hyper-V's checks -------------------------------------------------------------------------------------

def _connect_failure(source: dict[str, Any], dest_given: str, text: str) -> CmdletError:
    return CmdletError(
        f"Virtual machine migration operation failed at migration source.\n"
        f"Failed to establish a connection with host '{dest_given.upper()}': {text}",
        category="NotSpecified", fqid=f"Unspecified,{VM_FQID}", target=source["name"].upper())


def connection_error(est: Estate, source: dict[str, Any], dest_given: str, include_storage: bool,
                     addresses: list[str] | None = None) -> CmdletError | None:
    """What stops the source's VMMS from even talking to the destination's, in the order it meets it.

    ``addresses``: DestinationIPAddressList; empty, the service tries the destination's listener addresses.
    """
    dest = lab_host(est, dest_given)
    if dest is None:
        return _connect_failure(source, dest_given, "No such host is known. (0x80072AF9).")
    if dest["name"].lower() == source["name"].lower():
        return CmdletError("The operation cannot be performed because the source and destination host are the same.",
                           category="InvalidArgument", fqid=f"InvalidParameter,{VM_FQID}", target=dest_given)
    smig = (source.get("hyperv") or {}).get("migration") or {}
    if not smig.get("enabled"):
        return CmdletError(
            "Virtual machine migration operation failed at migration source.\n"
            f"Migration is not enabled on host '{source['name'].upper()}'. (Virtual machine migration is disabled.)",
            category="InvalidOperation", fqid=f"InvalidState,{VM_FQID}", target=source["name"].upper())
    dmig = (dest.get("hyperv") or {}).get("migration") or {}
    if not dmig.get("enabled"):
        # Nothing listens on the migration port (6600) when migration is off.
        return _connect_failure(source, dest_given, "No connection could be made because the target machine "
                                "actively refused it. (0x8007274D).")
    listening = listener_addresses(est, dest)
    asked = list(addresses or []) or listening
    if not [a for a in asked if a in listening and reachable(est, source["name"], a)]:
        # Nothing listens on an address the source can reach: outside the destination's migration networks, or
        # on a subnet the source has no address on.
        return _connect_failure(source, dest_given, "No connection could be made because the target machine "
                                "actively refused it. (0x8007274D).")
    if smig.get("auth_type") == "CredSSP" or dmig.get("auth_type") == "CredSSP":
        # CredSSP needs the operator logged on to the source: a move started remotely has no credentials to pass.
        return _connect_failure(source, dest_given, "The credentials supplied to the package were not recognized "
                                "(0x8009030D).")
    computer = est.get("computer", source["name"])
    allowed = {s.lower() for s in (computer or {}).get("allowed_to_delegate_to", [])}
    needed = [f"{MIGRATION_SERVICE}/{dest_given}"]
    if include_storage:
        needed.append(f"cifs/{dest_given}")
    # Every move hvauto starts arrives through a WinRM session, on every version: "Kerberos only" has no ticket to
    # delegate there; protocol transition ("use any authentication protocol") is what works [TC-KCD].
    protocol_ok = bool((computer or {}).get("trusted_to_auth_for_delegation"))
    if any(s.lower() not in allowed for s in needed) or not protocol_ok:
        # Kerberos constrained delegation missing (or "Kerberos only" on 2016+): no ticket for the destination.
        return _connect_failure(source, dest_given, "No credentials are available in the security package "
                                "(0x8009030E).")
    return None


def incompatibilities(est: Estate, vm: dict[str, Any], dest: dict[str, Any]) -> list[dict[str, Any]]:
    """The host check's incompatibilities (Msvm_Error; Compare-VM reports the same MessageId): what the destination lacks."""
    out: list[dict[str, Any]] = []
    switches = {s["name"].lower() for s in est.all("switch", host=dest["name"])}
    for adapter in vm.get("adapters") or []:
        sw = adapter.get("switch")
        if sw and sw.lower() not in switches:
            out.append({"message": f"Could not find Ethernet switch '{sw}'.", "message_id": 33012,
                        "source": "VMNetworkAdapter"})
    return out


#: A VM in these states carries processor state: only these are bound to the CPU vendor [WSD-PCM] [WSD-DPCM].
CPU_BOUND = ("Running", "Saved", "Paused")


def hardware_error(vm: dict[str, Any], source: dict[str, Any], dest: dict[str, Any]) -> CmdletError | None:
    vendor_bound = vm["state"] in CPU_BOUND and source.get("cpu_vendor") != dest.get("cpu_vendor")
    if not accepts_version(dest["os"], vm["version"]) or vendor_bound:
        return CmdletError(
            "The virtual machine cannot be moved to the destination computer. The hardware on the destination "
            "computer is not compatible with the hardware requirements of this virtual machine.",
            category="InvalidOperation", fqid=f"Unspecified,{VM_FQID}", target=vm["name"])
    if vm.get("passthrough_disks"):
        return CmdletError(
            f"Virtual machine migration operation for '{vm['name']}' failed at migration source "
            f"'{source['name'].upper()}'. The virtual machine is attached to a physical (pass-through) disk, which "
            "cannot be migrated.", category="InvalidOperation", fqid=f"Unspecified,{VM_FQID}", target=vm["name"])
    return None


def _failed_at_destination(vm: dict[str, Any], dest: dict[str, Any], text: str) -> CmdletError:
    return CmdletError(
        f"Virtual machine migration operation for '{vm['name']}' failed at migration destination "
        f"'{dest['name'].upper()}'. (Virtual machine ID {vm['id'].upper()})\n{text}",
        category="NotSpecified", fqid=f"Unspecified,{VM_FQID}", target=vm["name"])


def is_move(j: dict[str, Any]) -> bool:
    return int(j.get("job_type", 0)) in hyperv.MOVE_JOB_TYPES


def moving(est: Estate, vm_id: str) -> bool:
    """A move of the VM is under way (the service refuses another: 32775 invalid state)."""
    return any(is_move(j) and j["vm_id"].lower() == vm_id.lower() and j["state"] in ACTIVE
               for j in est.all("migration_job"))


def incoming(est: Estate, dest: str) -> list[dict[str, Any]]:
    return [j for j in est.all("migration_job")
            if is_move(j) and j["state"] in ACTIVE and j.get("dest", "").lower() == dest.lower()]


#: The files a move with storage copies.
COPIED = ("vhd", "parent", "checkpoint", "saved_state")


def files_on(est: Estate, host: str) -> set[str]:
    """Every file on the host's own drives the lab knows: its VMs' and the estate's other files."""
    out = {f["path"].lower() for vm in vms_on(est, host) for f in vm_file_list(vm) if f["kind"] in COPIED}
    return out | {str(f["path"]).lower() for f in est.all("file", host=host)}


def unc(path: str) -> tuple[str, str] | None:
    if not path.startswith("\\\\"):
        return None
    parts = [p for p in path[2:].split("\\") if p]
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def share_error(est: Estate, host: str, path: str) -> str | None:
    """Why ``host`` cannot open ``path`` on a share: no such server, no such share, or its computer account lacks
    Full Control on the share or on the folder (Hyper-V over SMB needs both) [hyperv-notes SMB]."""
    root = unc(path)
    if root is None:
        return None
    server = lab_host(est, root[0])
    if server is None:
        return "The network path was not found. (0x80070035)."
    share = est.get("share", f"{server['name']}/{root[1]}")
    if share is None:
        return "The network name cannot be found. (0x80070043)."
    computer = est.get("computer", host)
    sid = str((computer or {}).get("sid") or "")
    folder = est.get("folder", f"{server['name']}/{share['path']}") or {"acl": []}
    share_ok = any(a["sid"] == sid and a["type"] == "Allow" and a["right"] == "Full" for a in share["access"])
    folder_ok = any(a["sid"] == sid and a["type"] == "Allow" and "FullControl" in a["rights"]
                    and "InheritOnly" not in str(a.get("propagation") or "") for a in folder["acl"])
    if not (sid and share_ok and folder_ok):
        return "General access denied error (0x80070005)."
    return None


def resource_error(est: Estate, vm: dict[str, Any], source: dict[str, Any], dest: dict[str, Any], dest_path: str,
                   include_storage: bool) -> CmdletError | None:
    if est.get("planned_vm", f"{dest['name']}/{vm['id']}") is not None:
        return _failed_at_destination(vm, dest, "Cannot create a file when that file already exists. (0x800700B7). "
                                      "A planned virtual machine with the same identifier exists on the destination.")
    if vm_by_id(est, dest["name"], vm["id"]) is not None:
        # The destination already has a VM of this VMId: the planned VM cannot be created (unverified text).
        return _failed_at_destination(vm, dest, "Failed to create Planned Virtual Machine at migration destination: "
                                      "a virtual machine with the same identifier already exists. (0x800700B7).")
    pending = incoming(est, dest["name"])
    if running(vm):
        reserved = sum(int(j["memory_bytes"]) for j in pending)
        if memory_free(est, dest) - reserved < memory_in_use(vm):
            return _failed_at_destination(vm, dest, f"'{vm['name']}' could not initialize. Not enough memory in "
                                          f"the system to start the virtual machine {vm['name']}.")
    files = vm_file_list(vm)
    copied = [f for f in files if f["kind"] in COPIED]
    if include_storage:
        if dest_path.startswith("\\\\"):
            reason = share_error(est, dest["name"], dest_path)
            return _failed_at_destination(vm, dest, f"Failed to create folder '{dest_path}': {reason}") if reason else None
        letter = drive_of(dest_path)
        free = volume_free(est, dest["name"], letter) if letter else None
        if free is None:
            return _failed_at_destination(vm, dest, f"Failed to create folder '{dest_path}'. The system cannot find "
                                          "the path specified. (0x80070003).")
        there = files_on(est, dest["name"])
        for f in copied:
            target = moved_path(dest_path, f["path"])
            if f["kind"] != "saved_state" and target.lower() in there:
                # Msvm_VirtualSystemMigrationSettingData.AllowOverwriteExistingFile is off by default.
                return _failed_at_destination(vm, dest, f"Failed to copy file to '{target}': The file exists. "
                                              "(0x80070050).")
        reserved = sum(int(j["disk_bytes"]) for j in pending if drive_of(j.get("dest_path", "")) == letter)
        if free - reserved < sum(int(f["file_size"]) for f in copied):
            return _failed_at_destination(vm, dest, "There is not enough space on the disk. (0x80070070).")
        for f in files:
            if f["kind"] == "iso" and not f["path"].startswith("\\\\"):
                return _failed_at_destination(vm, dest, f"'{vm['name']}' failed to open attachment '{f['path']}'. "
                                              "Error: 'The system cannot find the path specified.' (0xC03A0014).")
    else:
        for f in files:
            reason = share_error(est, dest["name"], f["path"]) if f["path"].startswith("\\\\") else (
                "The system cannot find the path specified. (0x80070003).")
            if reason:
                return _failed_at_destination(vm, dest, f"'{vm['name']}' failed to open attachment '{f['path']}'. "
                                              f"Error: '{reason}'")
    return None


# -- jobs ----------------------------------------------------------------------------------------------------

def job_view(j: dict[str, Any], est: Estate, now: float) -> dict[str, Any]:
    scale = time_scale(est)
    if j["state"] == RUNNING:
        elapsed = (now - float(j["started_at"])) * scale
    elif j.get("finished_at") and j.get("started_at"):
        elapsed = (float(j["finished_at"]) - float(j["started_at"])) * scale
    else:
        elapsed = 0.0
    return {
        "instance_id": j["key"],
        "job_state": j["state"],
        "percent_complete": int(j.get("percent", 0)),
        "error_code": int(j.get("error_code", 0)),
        "error_description": j.get("error_description", ""),
        "destination_host": j.get("dest_given", ""),
        "migration_type": j["migration_type"],
        "job_type": int(j["job_type"]),
        "start_time": j.get("start_time"),
        "elapsed_seconds": int(elapsed),
    }


def jobs_for(est: Estate, host: str, vm_id: str, now: float) -> list[dict[str, Any]]:
    return [job_view(j, est, now) for j in est.all("migration_job", host=host) if j["vm_id"].lower() == vm_id.lower()]


def started_job(j: dict[str, Any]) -> dict[str, Any]:
    """The identity of a job as the method's ``Job`` out-parameter, read back, gives it."""
    return {"instance_id": j["key"], "job_type": int(j["job_type"]), "vm_id": j["vm_id"].upper(),
            "start_time": j.get("start_time")}


def _slots(j: dict[str, Any]) -> list[tuple[str, str]]:
    if not is_move(j):
        return []  # a check or planned-VM creation takes no migration slot
    if j["migration_type"] == STORAGE:
        return [(j["source"].lower(), "max_storage_migrations")]
    return [(j["source"].lower(), "max_vm_migrations"), (j["dest"].lower(), "max_vm_migrations")]


def _limit(est: Estate, host: str, kind: str) -> int:
    h = est.get("host", host) or {}
    return int((((h.get("hyperv") or {}).get("migration") or {}).get(kind)) or 2)


def _apply(est: Estate, j: dict[str, Any]) -> None:
    """The move is done: the estate changes, once (the job's state changes in the same transaction)."""
    vm = vm_by_id(est, j["source"], j["vm_id"])
    if vm is None:  # pragma: no cover - the VM cannot vanish while its job runs
        return
    if j["include_storage"]:
        vm["path"] = j["dest_path"]
        for d in vm["disks"]:
            node: dict[str, Any] | None = d
            while node:  # the disk and its parents: the whole chain moves
                node["path"] = moved_path(j["dest_path"], node["path"])
                node = node.get("parent")
        for c in vm.get("checkpoints") or []:
            for f in c.get("files") or []:
                f["path"] = moved_path(j["dest_path"], f["path"])
        if vm.get("smart_paging_path") and not str(vm["smart_paging_path"]).startswith("\\\\"):
            vm["smart_paging_path"] = j["dest_path"]
    if j["migration_type"] != STORAGE:
        vm["host"] = j["dest"]
        dest = est.get("host", j["dest"]) or {}
        # A cross-version move (2012 -> 2012 R2) upgrades the VM on arrival.
        vm["version"] = UPGRADED_ON_ARRIVAL.get(str(dest.get("os")), {}).get(vm["version"], vm["version"])
        est.delete("planned_vm", f"{j['dest']}/{j['vm_id']}")
    est.put("vm", vm["key"], vm, host=vm["host"])
    # A counter tests read to show each move is applied exactly once, however many polls race.
    est.set_meta("migrations_applied", str(int(est.meta("migrations_applied", "0") or "0") + 1))


def _fail(est: Estate, j: dict[str, Any]) -> None:
    vm = vm_by_id(est, j["source"], j["vm_id"]) or {"name": j["vm_name"], "id": j["vm_id"]}
    j["state"] = EXCEPTION
    j["error_code"] = 32768
    where = "source" if j["migration_type"] == STORAGE else "destination"
    host = j["source"] if j["migration_type"] == STORAGE else j["dest"]
    j["error_description"] = (
        f"Virtual machine migration operation for '{vm['name']}' failed at migration {where} '{host.upper()}'. "
        f"(Virtual machine ID {str(vm['id']).upper()})\nThe Virtual Machine Management Service encountered an error "
        "while transferring the virtual machine's storage: The specified network name is no longer available. "
        "(0x80070040).")
    if "lab_fail_migration" in vm:
        vm.pop("lab_fail_migration")
        est.put("vm", vm["key"], vm, host=vm["host"])


def migration_link_bps(est: Estate, host: str) -> float:
    """Bits per second of what carries the host's migration traffic: the uplinks under the vNIC (or the adapter)
    holding its address on a migration network; every Up NIC when it takes any network or has none there."""
    h = est.get("host", host) or {}
    mig = ((h.get("hyperv") or {}).get("migration")) or {}
    up = {a["name"].lower(): a for a in est.all("adapter", host=host) if a.get("status", "Up") == "Up"}

    def uplinks(names: list[str], teamed: bool) -> float:
        speeds = []
        for name in names:
            if name.lower() in up:
                speeds.append(float(up[name.lower()].get("link_speed_bps") or 0))
            else:
                team = est.get("team", f"{host}/{name}") or {}
                speeds.append(sum(float((up.get(m.lower()) or {}).get("link_speed_bps") or 0)
                                  for m in team.get("members") or []))
        return (sum(speeds) if teamed else max(speeds, default=0.0))

    nets = migration_networks(mig)

    def on_network(addresses: list[str]) -> bool:
        for a in addresses:
            try:
                ip = ipaddress.ip_interface(a).ip
            except ValueError:
                continue
            if any(ip.version == n.version and ip in n for n in nets):
                return True
        return False

    carriers = 0.0
    if nets and not mig.get("use_any_network"):
        for vnic in est.all("vnic", host=host):
            if on_network(list(vnic.get("addresses") or [])):
                sw = est.get("switch", f"{host}/{vnic['switch']}") or {}
                carriers += uplinks(list(sw.get("adapters") or []), bool(sw.get("embedded_teaming")) or
                                    any(est.get("team", f"{host}/{n}") for n in sw.get("adapters") or []))
        for nic in up.values():
            if on_network(list(nic.get("addresses") or [])):
                carriers += float(nic.get("link_speed_bps") or 0)
    if carriers:
        return carriers
    return sum(float(a.get("link_speed_bps") or 0) for a in up.values()) or 1e10


def _rates(est: Estate, running_moves: list[dict[str, Any]]) -> dict[str, float]:
    """Bytes per lab second of each running move: the links shared by the moves using them at this moment.

    A VM move takes an equal share of its source's and of its destination's migration link (and of a ``link``
    object between the two, when the estate has one), the smaller of those; a storage move an equal share of its
    host's local copy rate.
    """
    users: dict[str, int] = {}
    pairs: dict[str, int] = {}
    local: dict[str, int] = {}
    for j in running_moves:
        if j["migration_type"] == STORAGE:
            local[j["source"].lower()] = local.get(j["source"].lower(), 0) + 1
            continue
        for h in {j["source"].lower(), j["dest"].lower()}:
            users[h] = users.get(h, 0) + 1
        pk = pair_key(j["source"], j["dest"])
        pairs[pk] = pairs.get(pk, 0) + 1
    caps: dict[str, float] = {}
    out: dict[str, float] = {}
    for j in running_moves:
        if j["migration_type"] == STORAGE:
            out[j["key"]] = LOCAL_COPY_BPS / local[j["source"].lower()]
            continue
        shares = []
        for h in (j["source"].lower(), j["dest"].lower()):
            if h not in caps:
                caps[h] = migration_link_bps(est, h) / 8
            shares.append(caps[h] / users[h])
        link = est.get("link", pair_key(j["source"], j["dest"]))
        if link is not None:
            shares.append(float(link["bandwidth_bps"]) / 8 / pairs[pair_key(j["source"], j["dest"])])
        out[j["key"]] = min(shares)
    return out


def _start_queued(est: Estate, jobs: list[dict[str, Any]], at: float, changed: dict[str, dict[str, Any]],
                  busy: dict[tuple[str, str], int]) -> None:
    """Start queued jobs as slots free up, oldest first (at most MaximumVirtualMachineMigrations per host)."""
    for j in sorted((j for j in jobs if j["state"] == NEW), key=lambda x: float(x["queued_at"])):
        if float(j["queued_at"]) > at:
            continue  # not submitted yet at that moment
        if all(busy.get(s, 0) < _limit(est, s[0], s[1]) for s in _slots(j)):
            j["state"] = RUNNING
            j["started_at"] = at
            j["advanced_at"] = at
            j["bytes_done"] = 0.0
            for slot in _slots(j):
                busy[slot] = busy.get(slot, 0) + 1
            changed[j["key"]] = j


@before_every_call
def settle(call: LabCall) -> None:
    """Bring every migration job up to ``call.now``: progress, completion, failure, queue.

    Moves progress at the rate their links allow while they share them, recomputed whenever a move starts or
    ends: between two lab calls the moves' ends (and the queued moves they let start) are played in order.
    """
    est, now = call.estate, call.now
    jobs = est.all("migration_job")
    if not jobs:
        return
    scale = time_scale(est)
    changed: dict[str, dict[str, Any]] = {}
    for j in jobs:
        if j["state"] != RUNNING:
            if j["state"] not in ACTIVE and now - float(j.get("finished_at") or now) > TIME_BEFORE_REMOVAL / scale:
                est.delete("migration_job", j["key"])
            continue
        if j.get("fail_reason"):
            # It failed as it began (connecting, creating the planned VM): seen by the first look after the call.
            j["percent"] = 0
            j["state"] = EXCEPTION
            j["error_code"] = 32768
            j["error_description"] = j["fail_reason"]
            j["finished_at"] = float(j["started_at"])
            changed[j["key"]] = j
        elif not is_move(j):
            duration = float(j["duration"])
            elapsed = (now - float(j["started_at"])) * scale
            if elapsed >= duration:
                j["percent"] = 100
                j["state"] = COMPLETED
                j["finished_at"] = float(j["started_at"]) + duration / scale
            else:
                j["percent"] = 100 if duration <= 0 else min(100, int(elapsed * 100 / duration))
            changed[j["key"]] = j
    busy: dict[tuple[str, str], int] = {}
    for j in jobs:
        if j["state"] == RUNNING:
            for slot in _slots(j):
                busy[slot] = busy.get(slot, 0) + 1
    moves_running = [j for j in jobs if is_move(j) and j["state"] == RUNNING]
    t = min((float(j.get("advanced_at") or j["started_at"]) for j in moves_running), default=now)
    _start_queued(est, jobs, t, changed, busy)
    for _ in range(10_000):  # each turn ends at least one move; the bound only guards against a modelling bug
        moves_running = [j for j in jobs if is_move(j) and j["state"] == RUNNING]
        if not moves_running:
            break
        rates = _rates(est, moves_running)
        # When each reaches its end (or the percentage where an injected failure strikes), in wall seconds.
        ends: dict[str, float] = {}
        for j in moves_running:
            total = float(j["disk_bytes"]) + float(j["memory_bytes"])
            target = total * int(j["fail_at"]) / 100 if j.get("fail_at") is not None else total
            left = max(0.0, target - float(j.get("bytes_done") or 0))
            ends[j["key"]] = t + (left / rates[j["key"]] / scale if rates[j["key"]] > 0 else float("inf"))
        step_to = min(min(ends.values()), now)
        for j in moves_running:
            start = max(t, float(j.get("advanced_at") or t))
            j["bytes_done"] = float(j.get("bytes_done") or 0) + rates[j["key"]] * max(0.0, step_to - start) * scale
            j["advanced_at"] = step_to
            total = float(j["disk_bytes"]) + float(j["memory_bytes"])
            j["percent"] = 100 if total <= 0 else min(100, int(j["bytes_done"] * 100 / total))
            changed[j["key"]] = j
        finished = [j for j in moves_running if ends[j["key"]] <= step_to]
        for j in finished:
            j["finished_at"] = ends[j["key"]]
            for slot in _slots(j):
                busy[slot] -= 1
            if j.get("fail_at") is not None:
                j["percent"] = int(j["fail_at"])
                _fail(est, j)
            else:
                j["percent"] = 100
                j["state"] = COMPLETED
                _apply(est, j)
        t = step_to
        if not finished:
            break
        _start_queued(est, jobs, t, changed, busy)
    _start_queued(est, jobs, now, changed, busy)
    for j in changed.values():
        est.put("migration_job", j["key"], j, host=j["source"])
    # What a test reads to show the limits held: jobs running, and jobs submitted (running or queued) at once.
    running_now: dict[tuple[str, str], int] = {}
    submitted: dict[tuple[str, str], int] = {}
    for j in list(changed.values()) + [j for j in jobs if j["key"] not in changed]:
        for slot in _slots(j):
            if j["state"] == RUNNING:
                running_now[slot] = running_now.get(slot, 0) + 1
            if j["state"] in ACTIVE:
                submitted[slot] = submitted.get(slot, 0) + 1
    for prefix, counts in (("peak_", running_now), ("peak_submitted_", submitted)):
        for (host, kind), n in counts.items():
            key = f"{prefix}{kind}/{host}"
            if n > int(est.meta(key, "0") or "0"):
                est.set_meta(key, str(n))


def _new_job(call: LabCall, vm: dict[str, Any], *, dest: dict[str, Any] | None, dest_given: str, dest_path: str,
             include_storage: bool, fail_reason: str = "") -> dict[str, Any]:
    """A move's job; ``dest`` None: a storage move on this host. ``fail_reason``: it fails as it starts."""
    disk_bytes = sum(int(f["file_size"]) for f in vm_file_list(vm) if f["kind"] in COPIED) if include_storage else 0
    memory_bytes = memory_in_use(vm) if running(vm) and dest is not None else 0
    if dest is None and not dest_given:
        migration_type = STORAGE
    else:
        migration_type = VIRTUAL_SYSTEM_AND_STORAGE if include_storage else VIRTUAL_SYSTEM
    job = {
        "key": "{" + str(uuid.uuid4()).upper() + "}",
        "vm_id": vm["id"],
        "vm_name": vm["name"],
        "source": call.name,
        "dest": dest["name"] if dest is not None else (dest_given.split(".")[0] or call.name),
        "dest_given": dest_given,
        "dest_path": dest_path,
        "include_storage": include_storage,
        "migration_type": migration_type,
        "job_type": hyperv.JOB_TYPE_FOR_MIGRATION[migration_type],
        "disk_bytes": disk_bytes,
        "memory_bytes": memory_bytes,
        "state": NEW,
        "bytes_done": 0.0,
        "advanced_at": None,
        "percent": 0,
        "queued_at": call.now,
        "started_at": None,
        "start_time": None,
        "fail_at": vm.get("lab_fail_migration"),
        "fail_reason": fail_reason,
    }
    return job


def _remote_vm_job(call: LabCall, move: dict[str, Any]) -> dict[str, Any]:
    """The "Creating Remote Virtual Machine" job (300) a move to another host runs first: not the move."""
    return {**move, "key": "{" + str(uuid.uuid4()).upper() + "}", "job_type": hyperv.JobType.CREATING_REMOTE_VM,
            "disk_bytes": 0, "memory_bytes": 0, "duration": REMOTE_VM_SECONDS, "state": RUNNING,
            "started_at": call.now, "fail_at": None, "fail_reason": ""}


def _enqueue(call: LabCall, job: dict[str, Any]) -> None:
    from datetime import datetime, timezone

    job["start_time"] = datetime.fromtimestamp(call.now, tz=timezone.utc).isoformat()
    call.estate.put("migration_job", job["key"], job, host=call.name)
    if job["migration_type"] != STORAGE and not job["fail_reason"]:
        check = _remote_vm_job(call, job)
        call.estate.put("migration_job", check["key"], check, host=call.name)
    settle(call)  # starts it now when a slot is free, else it waits in the queue


# -- handlers -------------------------------------------------------------------------------------------------

def _migration_settings(h: dict[str, Any]) -> dict[str, Any]:
    m = h["hyperv"]["migration"]
    return {k: m[k] for k in ("enabled", "auth_type", "use_any_network", "networks", "max_vm_migrations",
                              "max_storage_migrations")}


def _check_job(call: LabCall, vm: dict[str, Any], dest_given: str, include: bool, *, failed: bool) -> None:
    """The job CheckVirtualSystemIsMigratable leaves behind (301/302), ended; it lingers like any job."""
    from datetime import datetime, timezone

    key = "{" + str(uuid.uuid4()).upper() + "}"
    call.estate.put("migration_job", key, {
        "key": key, "vm_id": vm["id"], "vm_name": vm["name"], "source": call.name,
        "dest": dest_given.split(".")[0], "dest_given": dest_given, "dest_path": "", "include_storage": include,
        "migration_type": VIRTUAL_SYSTEM_AND_STORAGE if include else VIRTUAL_SYSTEM,
        "job_type": hyperv.JobType.CHECKING_VM_AND_STORAGE if include else hyperv.JobType.CHECKING_VM,
        "disk_bytes": 0, "memory_bytes": 0, "bandwidth_bps": 1.0, "duration": 0.0,
        "state": EXCEPTION if failed else COMPLETED, "percent": 100, "error_code": 32768 if failed else 0,
        "queued_at": call.now, "started_at": call.now, "finished_at": call.now,
        "start_time": datetime.fromtimestamp(call.now, tz=timezone.utc).isoformat(), "fail_at": None,
        "fail_reason": ""}, host=call.name)


@handles("migrate_source_preflight")
def migrate_source_preflight(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    est, p = call.estate, call.params
    name = str(p["Name"])
    # -eq compares case-insensitively in PowerShell.
    found = [vm for vm in vms_on(est, call.name) if vm["name"].lower() == name.lower()]
    vms, jobs = [], []
    for vm in found:
        vms.append({
            "name": vm["name"], "id": vm["id"], "state": vm["state"], "version": vm["version"],
            "memory_startup_bytes": vm["memory_startup"], "memory_assigned_bytes": memory_in_use(vm),
            "dynamic_memory": bool(vm.get("memory_dynamic")),
            "processor_compatibility": bool(vm.get("processor_compatibility")),
            "clustered": vm["clustered"], "path": vm["path"],
            "disks": [{"path": d["path"], "size_bytes": d["size"], "file_size_bytes": d["file_size"]} for d in vm["disks"]],
            "passthrough_disks": [str(n) for n in vm.get("passthrough_disks") or []],
            "switches": [a["switch"] for a in vm["adapters"]],
            "files": [{"path": f["path"], "kind": f["kind"],
                       "size_bytes": int(f["file_size"]) if f["kind"] in COPIED else None}
                      for f in vm_file_list(vm)],
        })
        jobs.extend(jobs_for(est, call.name, vm["id"], call.now))
    check: dict[str, Any] = {"ran": False, "error": None, "incompatibilities": []}
    if len(found) == 1:
        include = bool(p.get("IncludeStorage"))
        err = connection_error(est, call.host, str(p["DestinationHost"]), include)
        if err is not None:
            # The check's job fails as the move would: its error, as the template raises it.
            check["error"] = {**err.record, "exception": "System.Management.Automation.RuntimeException",
                              "category": "OperationStopped", "fqid": str(err.record["message"]),
                              "target": ""}
        else:
            dest = lab_host(est, str(p["DestinationHost"]))
            assert dest is not None
            check["ran"] = True
            check["incompatibilities"] = [{**i, "source": f"Msvm_{i['source']}"} for i in
                                          incompatibilities(est, found[0], dest)]
        _check_job(call, found[0], str(p["DestinationHost"]), include, failed=err is not None or
                   bool(check["incompatibilities"]))
    return {
        "computer_name": call.name.upper(),
        "os_version": call.host["os_version"],
        "cpu_vendor": call.host.get("cpu_vendor", ""),
        "migration": _migration_settings(call.host),
        "vms": vms,
        "addresses": [str(a) for a in host_addresses(est, call.name)],
        "check": check,
        "jobs": jobs,
    }


@handles("migrate_dest_preflight")
def migrate_dest_preflight(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    est, p, h = call.estate, call.params, call.host
    name, vm_id = str(p["Name"]), str(p.get("VmId") or "")
    path = str(p.get("Path") or "") or str(h["hyperv"]["vm_path"])
    info: dict[str, Any] = {"given": path, "unc": False, "drive_exists": False, "exists": False, "free_bytes": None,
                            "files": []}
    if path:
        if path.startswith("\\\\"):
            info.update(unc=True, drive_exists=True)
        else:
            free = volume_free(est, call.name, drive_of(path)) if drive_of(path) else None
            if free is not None:
                info.update(drive_exists=True, free_bytes=free)
                prefix = path.rstrip("\\").lower()
                under = sorted(f for f in files_on(est, call.name) if f.startswith(prefix + "\\"))
                info["exists"] = prefix.lower() in {h["hyperv"]["vm_path"].lower(), f"{drive_of(path).lower()}:"} or any(
                    vm["path"].lower().startswith(prefix) for vm in vms_on(est, call.name)) or bool(under)
                info["files"] = under
    here = [
        {"name": vm["name"], "id": vm["id"], "state": vm["state"], "path": vm["path"],
         "disks": [d["path"] for d in vm["disks"]]}
        for vm in vms_on(est, call.name)
        if vm["name"].lower() == name.lower() or (vm_id and vm["id"].lower() == vm_id.lower())
    ]
    planned = []
    if vm_id:
        pv = est.get("planned_vm", f"{call.name}/{vm_id}")
        if pv is not None:
            planned.append({"id": pv["id"], "name": pv["name"]})
    return {
        "computer_name": call.name.upper(),
        "fqdn": h["fqdn"],
        "os_version": h["os_version"],
        "cpu_vendor": h.get("cpu_vendor", ""),
        "memory_free_bytes": memory_free(est, h),
        "vm_path": h["hyperv"]["vm_path"],
        "migration": _migration_settings(h),
        "listener_addresses": listener_addresses(est, h),
        "switches": [s["name"] for s in est.all("switch", host=call.name)],
        "supported_versions": SUPPORTED_VERSIONS[h["os"]],
        "path": info,
        "vms": here,
        "planned": planned,
    }


@handles("migrate_start")
def migrate_start(call: LabCall) -> dict[str, Any]:
    """MigrateVirtualSystemToHost (VirtualSystem or VirtualSystemAndStorage): 4096 and the job's reference."""
    require_hyperv(call)
    est, p = call.estate, call.params
    vm = get_vm_by_id(call, str(p["VmId"]))
    dest_given = str(p["DestinationHost"])
    include = bool(p.get("IncludeStorage"))
    dest_path = str(p.get("DestinationStoragePath") or "")
    addresses = [str(a) for a in p.get("ListenerAddress") or []]
    if moving(est, vm["id"]):
        raise method_error(32775, str(p["VmId"]))
    if include and not dest_path:
        raise method_error(32773, str(p["VmId"]))  # a relocation with no folder: HostResource would be empty
    dest = lab_host(est, dest_given)
    if dest is not None and dest["name"].lower() == call.name.lower():
        raise method_error(32773, str(p["VmId"]))
    # Everything from here happens inside the job, after the method has returned.
    err = connection_error(est, call.host, dest_given, include, addresses)
    if err is None and dest is not None:
        report = incompatibilities(est, vm, dest)
        err = (_failed_at_destination(vm, dest, report[0]["message"]) if report else
               hardware_error(vm, call.host, dest) or resource_error(est, vm, call.host, dest, dest_path, include))
    job = _new_job(call, vm, dest=dest, dest_given=dest_given, dest_path=dest_path, include_storage=include,
                   fail_reason=str(err.record["message"]) if err is not None else "")
    if err is None and dest is not None:
        est.put("planned_vm", f"{dest['name']}/{vm['id']}",
                {"key": f"{dest['name']}/{vm['id']}", "host": dest["name"], "id": vm["id"], "name": vm["name"],
                 "source": call.name}, host=dest["name"])
    _enqueue(call, job)
    return {"return_value": hyperv.METHOD_JOB_STARTED, "job": started_job(job)}


@handles("storage_move_start")
def storage_move_start(call: LabCall) -> dict[str, Any]:
    """MigrateVirtualSystemToHost with MigrationType Storage and no destination host."""
    require_hyperv(call)
    est, p = call.estate, call.params
    vm = get_vm_by_id(call, str(p["VmId"]))
    dest_path = str(p["DestinationStoragePath"])
    if moving(est, vm["id"]):
        raise method_error(32775, str(p["VmId"]))
    reason = ""
    if not dest_path.startswith("\\\\"):
        letter = drive_of(dest_path)
        free = volume_free(est, call.name, letter) if letter else None
        same = sum(int(d["file_size"]) for d in vm["disks"] if drive_of(d["path"]) == letter)
        if free is None:
            reason = f"Failed to create folder '{dest_path}'. The system cannot find the path specified. (0x80070003)."
        elif free + same < sum(int(d["file_size"]) for d in vm["disks"]):
            reason = "There is not enough space on the disk. (0x80070070)."
    if reason:
        reason = (f"Storage migration for virtual machine '{vm['name']}' ({vm['id'].upper()}) failed with error "
                  f"'{reason}'")
    job = _new_job(call, vm, dest=None, dest_given="", dest_path=dest_path, include_storage=True, fail_reason=reason)
    _enqueue(call, job)
    return {"return_value": hyperv.METHOD_JOB_STARTED, "job": started_job(job)}


@handles("migrate_status")
def migrate_status(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    est, vm_id = call.estate, str(call.params["VmId"])
    vm = vm_by_id(est, call.name, vm_id)
    here = None
    if vm is not None:
        here = {"name": vm["name"], "id": vm["id"], "state": vm["state"], "path": vm["path"],
                "disks": [d["path"] for d in vm["disks"]]}
    jobs = jobs_for(est, call.name, vm_id, call.now)
    for j in jobs:
        if j["job_state"] in ACTIVE:
            call.report(Progress(activity=f"Moving {here['name'] if here else vm_id}", status="Running",
                                 percent=j["percent_complete"], operation="Msvm_MigrationJob"))
    return {"vm": here, "jobs": jobs}


@handles("migrate_cancel")
def migrate_cancel(call: LabCall) -> dict[str, Any]:
    """RequestStateChange(Terminate) on each move job of the VM still under way; check jobs are left alone."""
    require_hyperv(call)
    est, vm_id = call.estate, str(call.params["VmId"])
    cancelled, refused = [], []
    for j in est.all("migration_job", host=call.name):
        if j["vm_id"].lower() != vm_id.lower() or j["state"] not in ACTIVE or not is_move(j):
            continue
        if j["state"] == RUNNING and int(j.get("percent", 0)) >= NOT_CANCELLABLE_FROM:
            refused.append({"instance_id": j["key"], "return_value": 4097})  # invalid state transition
            continue
        j["state"] = TERMINATED
        j["finished_at"] = call.now
        j["error_description"] = "The operation was cancelled."
        est.put("migration_job", j["key"], j, host=j["source"])
        cancelled.append(j["key"])
    return {"cancelled": cancelled, "refused": refused, "jobs": jobs_for(est, call.name, vm_id, call.now)}


@handles("migrate_cleanup")
def migrate_cleanup(call: LabCall) -> dict[str, Any]:
    """DestroySystem on the planned VM; 32775 (invalid state) while a move into it still runs."""
    require_hyperv(call)
    est, vm_id = call.estate, str(call.params["VmId"])
    removed, failed = [], []
    key = f"{call.name}/{vm_id}"
    pv = est.get("planned_vm", key)
    if pv is not None:
        busy = any(is_move(j) and j["vm_id"].lower() == vm_id.lower() and j["state"] in ACTIVE
                   and j["dest"].lower() == call.name.lower() for j in est.all("migration_job"))
        if busy:
            failed.append({"id": pv["id"], "name": pv["name"], "return_value": 32775})
        else:
            est.delete("planned_vm", key)
            removed.append({"id": pv["id"], "name": pv["name"]})
    return {"removed": removed, "failed": failed}


__all__ = ["settle"]


@handles("migrate_cluster_start")
def migrate_cluster_start(call: LabCall) -> dict[str, Any]:
    """Move-ClusterVirtualMachineRole -MigrationType Live: the VM's storage is on a CSV both nodes see."""
    est, p = call.estate, call.params
    vm_id, node = str(p["VmId"]), str(p["Node"])
    cluster = call.host.get("cluster")
    if not cluster:
        raise CmdletError("The term 'Move-ClusterVirtualMachineRole' is not recognized as the name of a cmdlet, "
                          "function, script file, or operable program.", category="ObjectNotFound",
                          fqid="CommandNotFoundException", target="Move-ClusterVirtualMachineRole",
                          exception="System.Management.Automation.CommandNotFoundException")
    vm = vm_by_id(est, call.name, vm_id)
    if vm is None or not vm.get("clustered"):
        raise CmdletError(f"No matching clustered virtual machine was found for VMId '{vm_id}'.",
                          category="ObjectNotFound", fqid="ClusterObjectNotFound,Microsoft.FailoverClusters."
                          "PowerShell.MoveClusterVirtualMachineRoleCommand", target=vm_id)
    dest = lab_host(est, node)
    if dest is None or dest.get("cluster") != cluster:
        raise CmdletError(f"The node '{node}' is not a member of cluster '{cluster}'.", category="InvalidArgument",
                          fqid="InvalidNode,Microsoft.FailoverClusters.PowerShell.MoveClusterVirtualMachineRoleCommand",
                          target=node)
    err = hardware_error(vm, call.host, dest)
    if err is None and running(vm):
        reserved = sum(int(j["memory_bytes"]) for j in incoming(est, dest["name"]))
        if memory_free(est, dest) - reserved < int(vm["memory_startup"]):
            err = _failed_at_destination(vm, dest, f"'{vm['name']}' could not initialize. Not enough memory in "
                                         f"the system to start the virtual machine {vm['name']}.")
    if err is not None:
        raise err
    job = _new_job(call, vm, dest=dest, dest_given=dest["name"], dest_path="", include_storage=False)
    _enqueue(call, job)
    return {"started": True, "group": vm["name"], "owner_node": call.name.upper(),
            "jobs": jobs_for(est, call.name, vm["id"], call.now)}
