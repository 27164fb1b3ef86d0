"""Start a move through ``MigrateVirtualSystemToHost``, watch it, verify it; cancel one.

A lost answer is never answered by a second start: the operation re-inspects and resumes watching.
"""

from __future__ import annotations

import ntpath
import time
from collections.abc import Callable
from typing import Any

from hvauto import hyperv
from hvauto.errors import (
    ErrorRecord,
    OutcomeUnknown,
    PreflightError,
    Problem,
    RemoteScriptError,
    TransportError,
    VerifyError,
)
from hvauto.ops.migrate.locate import locate_from, locate_one, validate
from hvauto.ops.migrate.model import (
    ACTIVE_STATES,
    CLUSTER_LIVE,
    EXCEPTION,
    JOB_STATE_NAMES,
    KILLED,
    LIVE,
    SHARED_NOTHING,
    SUCCESS_STATES,
    TERMINATED,
    CancelResult,
    Located,
    MigrationResult,
    ProgressFn,
    StartedMove,
)
from hvauto.ops.migrate.preflight import _gib, preflight
from hvauto.ops.migrate.steps import (
    cluster_start_params,
    default_storage_path,
    dest_preflight_params,
    start_params,
    vm_params,
)
from hvauto.ops.migrate.watch import moves, patiently, pick_job, watch
from hvauto.results import Change
from hvauto.session import Session


def cleanup_planned(session: Session, hosts: list[str], vm_id: str, *, failed: list[str] | None = None) -> list[str]:
    """Remove a planned VM of ``vm_id`` from each host that has one; the hosts it was removed from.

    A ``DestroySystem`` that did not return 0 or 4096 left the planned VM in place: ``failed`` gets each one.
    """
    group = session.fan_out(hosts, lambda h: session.run(h, "migrate_cleanup", vm_params(vm_id)).data)
    group.raise_if_failed()
    for h, d in group.values().items():
        for f in d.get("failed") or []:
            if failed is not None:
                failed.append(f"{h}: DestroySystem returned {f['return_value']} "
                              f"({hyperv.MIGRATION_METHOD_RESULTS.get(int(f['return_value']), 'undocumented')})")
    return [h for h, d in group.values().items() if d.get("removed")]


def find_out(vm: str) -> list[str]:
    """The commands that tell (and end) a move whose start had no answer."""
    return [f"hvauto migrate --watch {vm}", f"hvauto migrate --cancel {vm}", "hvauto vm list"]


def _look_for_started(session: Session, *, src_host: str, vm: str, vm_id: str, dest: str,
                      lost: TransportError, looks: int = 3, pause: float = 1.0,
                      sleep: Callable[[float], None] = time.sleep) -> dict[str, Any] | None:
    """After a start whose answer was lost: the move's job, or None when the VM has already left the source.

    A start the host received shows as a move job within moments; the source is asked ``looks`` times
    before hvauto says it cannot tell (:class:`OutcomeUnknown`), because a start held up in the service can
    still begin after the first look. Nothing is ever sent again from here.
    """
    for attempt in range(looks):
        try:
            status = patiently(lambda: session.run(src_host, "migrate_status", vm_params(vm_id)).data)
        except TransportError as exc:
            raise OutcomeUnknown(
                f"{src_host}: the answer to the start of the move of {vm} was lost ({lost.message}), and the "
                f"host cannot be asked what happened ({exc.message}); nothing was sent again",
                commands=find_out(vm)) from exc
        job = pick_job(list(status.get("jobs") or []))
        if job is not None or status.get("vm") is None:
            return job
        if attempt < looks - 1:
            sleep(pause)
    raise OutcomeUnknown(
        f"{src_host}: the answer to the start of the move of {vm} to {dest} was lost ({lost.message}); {vm} is "
        "still there and no move of it is visible, but a start held up on the way may still begin; nothing was "
        "sent again", commands=find_out(vm),
        hint=f"`hvauto migrate --watch {vm}` follows a move that started late and `hvauto migrate --cancel {vm}` "
        f"ends it; when neither shows a move, run the migrate again")


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
    validate(session, vm=vm, dest=dest, source=source, storage_path=storage_path, poll_interval=poll_interval)
    dest = session.host(dest).name
    loc = locate_from(session, vm, source=source, dest=dest)
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
        dst_facts = session.run(dest, "migrate_dest_preflight", dest_preflight_params(vm_name, vm_id, None)).data
        storage_path = default_storage_path(str(dst_facts["vm_path"]), vm_name)
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
                start = session.run(src_host, "migrate_cluster_start", cluster_start_params(vm_id, dest)).data
                job = pick_job(list(start.get("jobs") or []))
            else:
                start = session.run(src_host, "migrate_start", start_params(
                    vm_id, session.host(dest).fqdn, list(pre.dest.get("listener_addresses") or []), storage_path,
                    mode)).data
                job = start.get("job")
            instance_id = str(job["instance_id"]) if job else ""
        except TransportError as exc:
            if not exc.sent:
                raise  # refused or never reached the host: nothing started (a transient one was already retried)
            # The request reached the host and its answer was lost: look, never send the start again.
            job = _look_for_started(session, src_host=src_host, vm=vm_name, vm_id=vm_id, dest=dest, lost=exc,
                                    pause=poll_interval)
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
        left: list[str] = []
        cleaned = cleanup_planned(session, [dest], vm_id, failed=left)
        what = "was cancelled" if state in (TERMINATED, KILLED) else "failed"
        rec = ErrorRecord(message=str(final.get("error_description") or f"the migration job {what}"),
                          category="OperationStopped" if state != EXCEPTION else "NotSpecified",
                          fqid=f"MigrationJob{JOB_STATE_NAMES.get(state, state)},ErrorCode={final.get('error_code')}")
        hint = (f"the planned VM it left on {dest} was removed; {vm_name} is still on {src_host}" if cleaned else
                f"{vm_name} is still on {src_host}")
        if left:
            hint += (f"; the planned VM it left could not be removed ({'; '.join(left)}): "
                     f"`hvauto migrate --cancel {vm_name}` tries again")
        raise RemoteScriptError(src_host, "migrate_status", [rec], hint=hint)
    result.changed = True
    result.elapsed_seconds = time.monotonic() - started
    result.verified = verify(session, vm=vm_name, vm_id=vm_id, source=src_host, dest=dest, state=result.state,
                             storage_path=storage_path if mode == SHARED_NOTHING else None)
    return result


def verify(session: Session, *, vm: str, vm_id: str, source: str, dest: str, state: str,
           storage_path: str | None) -> list[str]:
    """The VM is on the destination, in its prior state, its disks under the path, and gone from the source."""
    reads: dict[str, Callable[[], Any]] = {
        dest: lambda: patiently(lambda: session.run(dest, "migrate_status", vm_params(vm_id)).data),
        source: lambda: patiently(lambda: session.run(source, "migrate_status", vm_params(vm_id)).data),
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


def cancel(session: Session, *, vm: str, source: str | None = None, what_if: bool = False) -> CancelResult:
    """End the VM's running migration job on its source, then remove planned VMs it left on other hosts."""
    validate(session, vm=vm, dest=None, source=source, storage_path=None)
    loc = locate_one(session, vm, hosts=[session.host(source).name] if source else None)
    others = [h for h in session.inventory.with_role("hyperv") if h.lower() != loc.host.lower()]
    out = CancelResult(vm=loc.vm.name, source=loc.host, changed=False, what_if=what_if)
    if what_if:
        status = session.run(loc.host, "migrate_status", vm_params(loc.vm.id)).data
        out.cancelled_jobs = [j["instance_id"] for j in moves(list(status.get("jobs") or []))
                              if int(j["job_state"]) in ACTIVE_STATES]
        return out
    data = session.run(loc.host, "migrate_cancel", vm_params(loc.vm.id)).data
    out.cancelled_jobs = list(data.get("cancelled") or [])
    out.refused_jobs = [f"{r['instance_id']}: RequestStateChange returned {r['return_value']} "
                        f"({hyperv.REQUEST_STATE_CHANGE_RESULTS.get(int(r['return_value']), 'undocumented')})"
                        for r in data.get("refused") or []]
    out.planned_removed_from = cleanup_planned(session, others, loc.vm.id, failed=out.planned_left)
    out.changed = bool(out.cancelled_jobs or out.planned_removed_from)
    return out
