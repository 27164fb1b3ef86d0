"""Move a VM to another host: locate, preflight, start, watch, verify.

* **Locate** the VM on every Hyper-V host at once (or on ``--from`` and the destination).
* **Preflight** in one round trip per host, concurrently: the source (VM, disks, switches,
  migration settings, running jobs and the migration service's own check,
  ``CheckVirtualSystemIsMigratable``), the destination (settings, listener addresses, switches,
  versions, memory, space, leftovers) and AD (delegation). Every problem is reported at once
  with its fix; any blocking one stops the move before anything changes.
* **Start** the move with ``MigrateVirtualSystemToHost`` on the source, passing the listener
  addresses read from the destination over its own session; **watch** the job it returned with
  short polls of ``Msvm_MigrationJob`` (move jobs only, never a check). A lost answer is never
  answered by a second start: the operation re-inspects and resumes watching.
* **Verify** the VM on the destination, in its prior state, with its disks under the
  destination path, and gone from the source.
"""

from __future__ import annotations

import ntpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hvauto import hyperv, versions
from hvauto.errors import (
    AmbiguousError,
    ErrorRecord,
    HvautoError,
    NotFoundError,
    PreflightError,
    Problem,
    RemoteScriptError,
    TransportError,
    ValidationError,
    VerifyError,
)
from hvauto.ops import ad as ad_ops
from hvauto.ops import vms as vm_ops
from hvauto.results import Change
from hvauto.session import Session

SHARED_NOTHING = "shared-nothing"
LIVE = "live"
#: A clustered VM's live move: Move-ClusterVirtualMachineRole; its storage stays on the CSV.
CLUSTER_LIVE = "cluster-live"
STORAGE = "storage"

# CIM_ConcreteJob.JobState (11 Service is still under way; 32768 "completed with warnings" is a success)
ACTIVE_STATES = hyperv.ACTIVE_JOB_STATES
SUCCESS_STATES = hyperv.SUCCESS_JOB_STATES
COMPLETED, TERMINATED, KILLED, EXCEPTION = (hyperv.JobState.COMPLETED, hyperv.JobState.TERMINATED,
                                            hyperv.JobState.KILLED, hyperv.JobState.EXCEPTION)
JOB_STATE_NAMES = hyperv.JOB_STATE_NAMES
MOVABLE_STATES = ("Running", "Off", "Saved", "Paused")
#: The source's own compatibility check (Msvm_VirtualSystemMigrationService), as problems name it.
HOST_CHECK = "CheckVirtualSystemIsMigratable"

#: The oldest Windows Server that runs each VM configuration version (Get-VMHostSupportedVersion).
MIN_OS_FOR_VERSION = {"4.0": "2012", "5.0": "2012r2", "6.2": "2016", "7.0": "2016", "7.1": "2016", "8.0": "2016",
                      "8.1": "2019", "8.2": "2019", "8.3": "2019", "9.0": "2019", "9.1": "2022", "9.2": "2022",
                      "9.3": "2022", "10.0": "2022", "11.0": "2025", "12.0": "2025"}


# -- results ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MoveProgress:
    """One observation of a running move (what the progress bar and the JSON lines show)."""

    vm: str
    source: str
    dest: str
    percent: int
    state: str
    elapsed_seconds: float
    bytes_total: int


ProgressFn = Callable[[MoveProgress], None]


@dataclass
class MigrationResult:
    vm: str
    vm_id: str
    mode: str
    #: None when the VM was found already on ``dest`` (nothing moved, no source to name).
    source: str | None
    dest: str
    storage_path: str | None
    #: Whether the VM moved, or in what-if whether it would (the same ``changes`` either way).
    changed: bool
    already_done: bool = False
    what_if: bool = False
    resumed: bool = False
    changes: list[Change] = field(default_factory=list)
    #: How: the steps of the move, for people.
    plan: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    state: str = ""
    job_id: str = ""
    elapsed_seconds: float = 0.0
    bytes_moved: int = 0
    verified: list[str] = field(default_factory=list)
    cleaned_planned_vm: bool = False

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]


@dataclass
class StartedMove:
    """What the CLI needs to offer cancel/watch when the user interrupts a running move."""

    vm: str
    vm_id: str
    source: str
    dest: str


@dataclass
class Located:
    host: str
    vm: vm_ops.VM


# -- validation and location -------------------------------------------------------------------------------

def is_windows_path(path: str) -> bool:
    if path.startswith("\\\\"):
        parts = [p for p in path[2:].split("\\") if p]
        return len(parts) >= 2
    return len(path) >= 3 and path[0].isalpha() and path[1] == ":" and path[2] == "\\"


def validate(session: Session, *, vm: str, dest: str | None, source: str | None, storage_path: str | None) -> None:
    """Every input problem at once, before any remote call."""
    problems: list[str] = []
    if not vm.strip():
        problems.append("VM name is empty")
    hyperv = {h.lower() for h in session.inventory.with_role("hyperv")}
    for label, host in (("destination", dest), ("--from", source)):
        if host is None:
            continue
        try:
            name = session.host(host).name
        except HvautoError as exc:
            problems.append(f"{label}: {exc.message}")
            continue
        if name.lower() not in hyperv:
            problems.append(f"{label}: {name} is not a Hyper-V host (no 'hyperv' role in the inventory)")
    if dest and source and dest.lower() == source.lower():
        problems.append("the destination is the source")
    if storage_path is not None and not is_windows_path(storage_path):
        problems.append(f"--storage-path {storage_path!r} is not an absolute Windows path (D:\\VMs\\vm01 or "
                        "\\\\server\\share\\vm01)")
    if problems:
        raise ValidationError(problems)


def locate(session: Session, vm: str, *, hosts: list[str] | None = None) -> list[Located]:
    """Where the VM is: every Hyper-V host asked at once. Unreachable hosts fail the search only if it finds nothing."""
    targets = hosts or session.inventory.with_role("hyperv")
    group = vm_ops.list_many(session, targets, [vm])
    found = [Located(h, v) for h, vs in group.values().items() for v in vs if v.name.lower() == vm.lower()]
    if not found:
        group.raise_if_failed()
    return found


def locate_one(session: Session, vm: str, *, hosts: list[str] | None = None) -> Located:
    found = locate(session, vm, hosts=hosts)
    if not found:
        where = ", ".join(hosts or session.inventory.with_role("hyperv"))
        raise NotFoundError(f"VM {vm!r} was not found on {where}", hint="`hvauto vm list` shows every VM")
    if len(found) > 1:
        raise AmbiguousError(f"VM {vm!r} is on more than one host: {', '.join(f.host for f in found)}",
                             hint="pass --from HOST to say which one")
    return found[0]


# -- preflight ---------------------------------------------------------------------------------------------

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
    include = mode == SHARED_NOTHING
    ad_host = ad_ops.ad_host(session)
    steps: dict[str, Callable[[], Any]] = {
        source: lambda: session.run(source, "migrate_source_preflight", {
            "Name": vm, "DestinationHost": dest_given, "DestinationStoragePath": storage_path or "",
            "IncludeStorage": include}).data,
    }
    if dest_facts is None:
        steps[dest] = lambda: session.run(dest, "migrate_dest_preflight",
                                          {"Name": vm, "VmId": vm_id, "Path": storage_path or ""}).data
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


# -- watching --------------------------------------------------------------------------------------------

def moves(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the jobs that move something (305-307): never a check or a planned-VM creation (300-304)."""
    return [j for j in jobs if int(j.get("job_type") or 0) in hyperv.MOVE_JOB_TYPES]


def pick_job(jobs: list[dict[str, Any]], instance_id: str = "") -> dict[str, Any] | None:
    """The move to follow: the job ``instance_id`` names (the one migrate_start started), else a running move.

    When the named job has gone (removed five minutes after it ended) no other job stands in for it: the
    caller decides from where the VM now is.
    """
    jobs = moves(jobs)
    if instance_id:
        for j in jobs:
            if j["instance_id"] == instance_id:
                return j
    active = [j for j in jobs if int(j["job_state"]) in ACTIVE_STATES]
    if active:
        return active[0]
    if instance_id:
        return None
    return max(jobs, key=lambda j: str(j.get("start_time") or ""), default=None)


def watch(session: Session, *, source: str, vm: str, vm_id: str, dest: str, instance_id: str = "",
          bytes_total: int = 0, on_progress: ProgressFn | None = None, poll_interval: float = 1.0,
          max_lost_polls: int = 60, sleep: Callable[[float], None] = time.sleep,
          should_stop: Callable[[], bool] | None = None) -> dict[str, Any] | None:
    """Poll the source's Msvm_MigrationJob with short reads until the job ends; return its last state.

    A transient fault is retried by the session; if the host stays unreachable the loop keeps
    re-inspecting (never re-starting) for ``max_lost_polls`` polls before it gives up.
    ``should_stop`` ends the watching (KeyboardInterrupt), never the move.
    """
    started = time.monotonic()
    lost = 0
    while True:
        if should_stop is not None and should_stop():
            raise KeyboardInterrupt
        try:
            status = session.run(source, "migrate_status", {"VmId": vm_id}).data
            lost = 0
        except TransportError as exc:
            if not exc.transient or lost >= max_lost_polls:
                exc.hint = (f"the move may still be running on {source}: `hvauto migrate --watch {vm}` to watch it, "
                            f"`hvauto migrate --cancel {vm}` to cancel it")
                raise
            lost += 1
            sleep(poll_interval)
            continue
        job = pick_job(list(status.get("jobs") or []), instance_id)
        if job is None:
            return None
        state = int(job["job_state"])
        if on_progress is not None:
            on_progress(MoveProgress(vm=vm, source=source, dest=dest, percent=int(job["percent_complete"]),
                                     state=JOB_STATE_NAMES.get(state, str(state)),
                                     elapsed_seconds=time.monotonic() - started, bytes_total=bytes_total))
        if state not in ACTIVE_STATES:
            return job
        sleep(poll_interval)


def cleanup_planned(session: Session, hosts: list[str], vm_id: str) -> list[str]:
    """Remove a planned VM of ``vm_id`` from each host that has one; the hosts it was removed from."""
    group = session.fan_out(hosts, lambda h: session.run(h, "migrate_cleanup", {"VmId": vm_id}).data)
    group.raise_if_failed()
    return [h for h, d in group.values().items() if d.get("removed")]


# -- the move ------------------------------------------------------------------------------------------------

def _on_dest_done(loc: Located, *, dest: str, storage_path: str | None, mode: str) -> bool:
    disks = [d.path for d in loc.vm.disks]
    if mode == SHARED_NOTHING:
        if storage_path:
            return all(_under(p, storage_path) for p in disks)
        return all(not p.startswith("\\\\") for p in disks)
    return True


def _under(path: str, folder: str) -> bool:
    return ntpath.normcase(path).startswith(ntpath.normcase(folder.rstrip("\\")) + "\\")


def migrate(
    session: Session,
    *,
    vm: str,
    dest: str,
    source: str | None = None,
    storage_path: str | None = None,
    live: bool = False,
    what_if: bool = False,
    on_progress: ProgressFn | None = None,
    on_started: Callable[[StartedMove], None] | None = None,
    poll_interval: float = 1.0,
    should_stop: Callable[[], bool] | None = None,
) -> MigrationResult:
    """``hvauto migrate --shared-nothing|--live VM DEST``: locate, preflight, start, watch, verify."""
    mode = LIVE if live else SHARED_NOTHING
    validate(session, vm=vm, dest=dest, source=source, storage_path=storage_path)
    dest = session.host(dest).name
    hosts = [session.host(source).name, dest] if source else None
    loc = locate_one(session, vm, hosts=hosts)
    if source and loc.host.lower() != session.host(source).name.lower() and loc.host.lower() != dest.lower():
        raise NotFoundError(f"VM {vm!r} is not on {source}")
    if loc.host.lower() == dest.lower():
        if _on_dest_done(loc, dest=dest, storage_path=storage_path, mode=mode):
            return MigrationResult(vm=loc.vm.name, vm_id=loc.vm.id, mode=mode, source=None, dest=dest,
                                   storage_path=storage_path, changed=False, already_done=True, what_if=what_if,
                                   state=loc.vm.state)
        raise PreflightError([Problem("storage-path", f"{loc.vm.name} is already on {dest}, but its storage is not "
                                      f"under {storage_path}", host=dest,
                                      fix=f"hvauto storage move {loc.vm.name} {storage_path}")],
                             what=f"migrate {loc.vm.name}")
    src_host = loc.host
    vm_name, vm_id = loc.vm.name, loc.vm.id
    dst_facts: dict[str, Any] | None = None
    if mode == SHARED_NOTHING and not storage_path:
        # Move-VM needs a path: the destination's default VM folder, in a folder of the VM's own. That answer
        # (probed at the default folder: the same drive) is the destination's preflight; it is not asked twice.
        dst_facts = session.run(dest, "migrate_dest_preflight", {"Name": vm_name, "VmId": vm_id, "Path": ""}).data
        storage_path = ntpath.join(str(dst_facts["vm_path"]), vm_name)
    pre = preflight(session, vm=vm_name, vm_id=vm_id, source=src_host, dest=dest, storage_path=storage_path, mode=mode,
                    dest_facts=dst_facts)
    vmd = pre.vm or {}
    running = vmd.get("state") in ("Running", "Paused")
    bytes_total = (sum(int(d.get("file_size_bytes") or 0) for d in vmd.get("disks") or []) if mode == SHARED_NOTHING
                   else 0) + (int(vmd.get("memory_startup_bytes") or 0) if running else 0)
    result = MigrationResult(vm=vm_name, vm_id=vm_id, mode=mode, source=src_host, dest=dest, storage_path=storage_path,
                             changed=False, what_if=what_if, problems=pre.problems, state=str(vmd.get("state") or ""),
                             bytes_moved=bytes_total)
    clustered = mode == LIVE and bool(vmd.get("clustered"))
    if clustered:
        result.mode = CLUSTER_LIVE
    verb = ("MigrateVirtualSystemToHost (VirtualSystemAndStorage)" if mode == SHARED_NOTHING else
            "Move-ClusterVirtualMachineRole -MigrationType Live" if clustered else
            "MigrateVirtualSystemToHost (VirtualSystem)")
    result.plan = [
        f"move {vm_name} ({result.state}, {_gib(bytes_total)} to copy) from {src_host} to {dest}"
        + (f", storage to {storage_path}" if mode == SHARED_NOTHING else ", storage stays on its share"),
        f"start {verb}{' -Wait 0' if clustered else ''} on {src_host}; watch its Msvm_MigrationJob every "
        f"{poll_interval:g}s",
        f"verify: {vm_name} {result.state} on {dest}" + (f", disks under {storage_path}" if mode == SHARED_NOTHING
                                                         else "") + f", gone from {src_host}",
    ]
    result.changes = [Change("move", f"VM {vm_name}", f"{src_host} -> {dest}" + (
        f", storage to {storage_path}" if mode == SHARED_NOTHING else ""))]
    if pre.active_job is not None:
        target = str(pre.active_job.get("destination_host") or "").split(".")[0].lower()
        if target != dest.lower() or int(pre.active_job.get("migration_type") or 0) == hyperv.MigrationType.STORAGE:
            going = f"to {pre.active_job.get('destination_host')}" if target else "(a storage move)"
            raise PreflightError([Problem("source.active_job", f"{vm_name} is already being moved {going} on "
                                          f"{src_host}", host=src_host,
                                          fix=f"`hvauto migrate --watch {vm_name}` to follow it, `hvauto migrate "
                                          f"--cancel {vm_name}` to cancel it")],
                                 what=f"preflight of {vm_name} {src_host} -> {dest}")
        result.plan.insert(0, f"a move of {vm_name} is already running on {src_host}: watch it, start nothing")
    if what_if:
        result.changed = not result.blocking
        return result
    if pre.active_job is None and result.blocking:
        raise PreflightError(pre.problems, what=f"preflight of {vm_name} {src_host} -> {dest}")
    if should_stop is not None and should_stop():
        raise KeyboardInterrupt
    started = time.monotonic()
    instance_id = ""
    if pre.active_job is not None:
        result.resumed = True
        instance_id = str(pre.active_job["instance_id"])
    else:
        try:
            if clustered:
                start = session.run(src_host, "migrate_cluster_start", {"VmId": vm_id, "Node": dest}).data
                job = pick_job(list(start.get("jobs") or []))
            else:
                start = session.run(src_host, "migrate_start", {
                    "VmId": vm_id, "DestinationHost": session.host(dest).fqdn,
                    "ListenerAddress": [str(a) for a in pre.dest.get("listener_addresses") or []],
                    "DestinationStoragePath": storage_path if mode == SHARED_NOTHING else "",
                    "IncludeStorage": mode == SHARED_NOTHING}).data
                job = start.get("job")
            instance_id = str(job["instance_id"]) if job else ""
        except TransportError as exc:
            if not exc.sent:
                raise
            # The request reached the host and its answer was lost: look, never send Move-VM again.
            status = session.run(src_host, "migrate_status", {"VmId": vm_id}).data
            job = pick_job(list(status.get("jobs") or []))
            if job is None and status.get("vm") is not None:
                raise type(exc)(
                    f"{src_host}: the answer to the start of the move was lost and no move of {vm_name} is visible; "
                    "nothing was sent again", sent=True, hint=f"run `hvauto migrate --shared-nothing {vm_name} {dest}` again "
                    "(its preflight will see a move that started late)") from exc
            result.resumed = True
            instance_id = str(job["instance_id"]) if job else ""
    if on_started is not None:
        on_started(StartedMove(vm=vm_name, vm_id=vm_id, source=src_host, dest=dest))
    final = watch(session, source=src_host, vm=vm_name, vm_id=vm_id, dest=dest, instance_id=instance_id,
                  bytes_total=bytes_total, on_progress=on_progress, poll_interval=poll_interval,
                  should_stop=should_stop)
    result.job_id = str(final["instance_id"]) if final else instance_id
    if final is not None and int(final["job_state"]) not in SUCCESS_STATES:
        state = int(final["job_state"])
        cleaned = cleanup_planned(session, [dest], vm_id)
        what = "was cancelled" if state in (TERMINATED, KILLED) else "failed"
        rec = ErrorRecord(message=str(final.get("error_description") or f"the migration job {what}"),
                          category="OperationStopped" if state != EXCEPTION else "NotSpecified",
                          fqid=f"MigrationJob{JOB_STATE_NAMES.get(state, state)},ErrorCode={final.get('error_code')}")
        hint = (f"the planned VM it left on {dest} was removed; {vm_name} is still on {src_host}" if cleaned else
                f"{vm_name} is still on {src_host}")
        raise RemoteScriptError(src_host, "migrate_status", [rec], hint=hint)
    result.changed = True
    result.elapsed_seconds = time.monotonic() - started
    result.verified = verify(session, vm=vm_name, vm_id=vm_id, source=src_host, dest=dest, state=result.state,
                             storage_path=storage_path if mode == SHARED_NOTHING else None)
    return result


def patiently(read: Callable[[], Any], *, attempts: int = 30, pause: float = 0.5,
              sleep: Callable[[float], None] = time.sleep) -> Any:
    """A read after the move started: a transient fault means look again (reads are safe to repeat)."""
    for attempt in range(attempts):
        try:
            return read()
        except TransportError as exc:
            if not exc.transient or attempt == attempts - 1:
                raise
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def verify(session: Session, *, vm: str, vm_id: str, source: str, dest: str, state: str,
           storage_path: str | None) -> list[str]:
    """The VM is on the destination, in its prior state, its disks under the path, and gone from the source."""
    reads: dict[str, Callable[[], Any]] = {
        dest: lambda: patiently(lambda: session.run(dest, "migrate_status", {"VmId": vm_id}).data),
        source: lambda: patiently(lambda: session.run(source, "migrate_status", {"VmId": vm_id}).data),
    }
    group = session.fan_out(list(reads), lambda h: reads[session.host(h).name]())
    group.raise_if_failed()
    values = group.values()
    there, here = values[session.host(dest).name].get("vm"), values[session.host(source).name].get("vm")
    wrong: list[str] = []
    if there is None:
        wrong.append(f"{vm} is not registered on {dest}")
    else:
        if state and there["state"] != state:
            wrong.append(f"{vm} is {there['state']} on {dest}; it was {state}")
        if storage_path:
            outside = [d for d in there.get("disks") or [] if not _under(d, storage_path)]
            if outside:
                wrong.append(f"disks not under {storage_path}: {', '.join(outside)}")
    if here is not None:
        wrong.append(f"{vm} is still registered on {source}")
    if wrong:
        raise VerifyError(f"the move of {vm} finished but does not verify: {'; '.join(wrong)}")
    checks = [f"{vm} is registered on {dest}", f"{vm} is {there['state'] if there else state}"]
    if storage_path:
        checks.append(f"its disks are under {storage_path}")
    checks.append(f"{vm} is gone from {source}")
    return checks


# -- watch / cancel a move already running ---------------------------------------------------------------------

@dataclass
class CancelResult:
    vm: str
    source: str
    changed: bool
    cancelled_jobs: list[str] = field(default_factory=list)
    #: Jobs whose RequestStateChange was refused (e.g. 4097 invalid state transition): still running.
    refused_jobs: list[str] = field(default_factory=list)
    planned_removed_from: list[str] = field(default_factory=list)
    what_if: bool = False


def cancel(session: Session, *, vm: str, source: str | None = None, what_if: bool = False) -> CancelResult:
    """End the VM's running migration job on its source, then remove planned VMs it left on other hosts."""
    validate(session, vm=vm, dest=None, source=source, storage_path=None)
    loc = locate_one(session, vm, hosts=[session.host(source).name] if source else None)
    others = [h for h in session.inventory.with_role("hyperv") if h.lower() != loc.host.lower()]
    out = CancelResult(vm=loc.vm.name, source=loc.host, changed=False, what_if=what_if)
    if what_if:
        status = session.run(loc.host, "migrate_status", {"VmId": loc.vm.id}).data
        out.cancelled_jobs = [j["instance_id"] for j in moves(list(status.get("jobs") or []))
                              if int(j["job_state"]) in ACTIVE_STATES]
        return out
    data = session.run(loc.host, "migrate_cancel", {"VmId": loc.vm.id}).data
    out.cancelled_jobs = list(data.get("cancelled") or [])
    out.refused_jobs = [f"{r['instance_id']}: RequestStateChange returned {r['return_value']} "
                        f"({hyperv.REQUEST_STATE_CHANGE_RESULTS.get(int(r['return_value']), 'undocumented')})"
                        for r in data.get("refused") or []]
    out.planned_removed_from = cleanup_planned(session, others, loc.vm.id)
    out.changed = bool(out.cancelled_jobs or out.planned_removed_from)
    return out


def watch_running(session: Session, *, vm: str, source: str | None = None, on_progress: ProgressFn | None = None,
                  poll_interval: float = 1.0) -> dict[str, Any] | None:
    """``hvauto migrate --watch VM``: follow a move started earlier (by hvauto or anyone)."""
    validate(session, vm=vm, dest=None, source=source, storage_path=None)
    loc = locate_one(session, vm, hosts=[session.host(source).name] if source else None)
    status = session.run(loc.host, "migrate_status", {"VmId": loc.vm.id}).data
    job = pick_job(list(status.get("jobs") or []))
    if job is None:
        return None
    return watch(session, source=loc.host, vm=loc.vm.name, vm_id=loc.vm.id, dest=str(job.get("destination_host")),
                 instance_id=str(job["instance_id"]), on_progress=on_progress, poll_interval=poll_interval)


__all__ = [
    "CancelResult", "LIVE", "MigrationResult", "MoveProgress", "SHARED_NOTHING", "StartedMove",
    "cancel", "locate", "migrate", "preflight", "verify", "watch", "watch_running",
]
