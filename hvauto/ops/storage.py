"""Move a VM's storage on its own host (MigrateVirtualSystemToHost, MigrationType Storage): locate, check, start,
watch, verify."""

from __future__ import annotations

import ntpath
import time
from dataclasses import dataclass, field
from typing import Any

from hvauto import hyperv
from hvauto.errors import (
    ErrorRecord,
    OutcomeUnknown,
    PreflightError,
    Problem,
    RemoteScriptError,
    TransportError,
    ValidationError,
    VerifyError,
)
from hvauto.ops import migrate as mig
from hvauto.ops.migrate.steps import dest_preflight_params, storage_start_params, vm_params
from hvauto.results import Change, count
from hvauto.session import Session


@dataclass
class StorageMoveResult:
    vm: str
    host: str
    path: str
    #: Whether the files moved, or in what-if whether they would (the same ``changes`` either way).
    changed: bool
    what_if: bool = False
    changes: list[Change] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    bytes_moved: int = 0
    #: A move already running (or whose start had no answer) was watched instead of started.
    resumed: bool = False


def _start(session: Session, loc: mig.Located, path: str, *, poll_interval: float) -> tuple[str, bool]:
    """Start the move: the job's instance id, and whether its start's answer was lost (the job found by looking)."""
    try:
        start = session.run(loc.host, "storage_move_start", storage_start_params(loc.vm.id, path)).data
        return str((start.get("job") or {}).get("instance_id") or ""), False
    except TransportError as exc:
        if not exc.sent:
            raise
        lost: TransportError = exc
    # The answer was lost after the request went out: look for what started, never send it twice.
    for attempt in range(3):
        try:
            status = mig.patiently(lambda: session.run(loc.host, "migrate_status", vm_params(loc.vm.id)).data)
        except TransportError as again:
            raise OutcomeUnknown(f"{loc.host}: the answer to the storage move of {loc.vm.name} was lost, and the "
                                 f"host cannot be asked what happened ({again.message})",
                                 commands=find_out(loc.vm.name)) from lost
        job = mig.pick_job(list(status.get("jobs") or []))
        there = status.get("vm") or {}
        if job is not None or (there and all(mig._under(d, path) for d in there.get("disks") or [])):
            return (str(job["instance_id"]) if job else ""), True
        if attempt < 2:
            time.sleep(poll_interval)
    raise OutcomeUnknown(f"{loc.host}: the answer to the storage move of {loc.vm.name} was lost; no move of its "
                         "files is visible, but a start held up on the way may still begin; nothing was sent again",
                         commands=find_out(loc.vm.name),
                         hint=f"`hvauto migrate --watch {loc.vm.name}` follows a move that started late; when it "
                         "shows none, run the storage move again") from lost


def find_out(vm: str) -> list[str]:
    return [f"hvauto migrate --watch {vm}", f"hvauto migrate --cancel {vm}", "hvauto vm list"]


def check_path(path: str) -> None:
    if not mig.is_windows_path(path):
        raise ValidationError([f"{path!r} is not an absolute Windows path (D:\\VMs\\vm01 or \\\\server\\share\\vm01)"])


def _preflight(session: Session, host: str, vm: str, vm_id: str, path: str, needed: int) -> None:
    """The destination folder's volume exists on the host and has room: asked before the move, every problem at once."""
    facts = session.run(host, "migrate_dest_preflight", dest_preflight_params(vm, vm_id, path)).data
    where = facts.get("path") or {}
    problems = []
    if not where.get("drive_exists"):
        problems.append(Problem("storage.path", f"{host} has no volume for {path}", host=host,
                                fix=f"choose a path on a volume {host} has (its VM folder is {facts.get('vm_path')})"))
    elif where.get("free_bytes") is not None and int(where["free_bytes"]) < needed:
        problems.append(Problem("storage.space", f"{path} has {int(where['free_bytes']) / 1024**3:.1f} GiB free; "
                                f"{vm}'s disks need {needed / 1024**3:.1f} GiB", host=host,
                                fix=f"free space on {host}, or choose another path"))
    if problems:
        raise PreflightError(problems, what=f"storage move of {vm}")


def move(session: Session, *, vm: str, path: str, host: str | None = None, what_if: bool = False,
         on_progress: mig.ProgressFn | None = None, poll_interval: float = 1.0) -> StorageMoveResult:
    """``hvauto storage move VM PATH``: every file of the VM under PATH, on the same host."""
    check_path(path)
    mig.validate(session, vm=vm, dest=None, source=host, storage_path=path, source_flag="--host",
                 poll_interval=poll_interval)
    loc = mig.locate_one(session, vm, hosts=[session.host(host).name] if host else None)
    disks = [d.path for d in loc.vm.disks]
    bytes_total = loc.vm.disk_bytes
    res = StorageMoveResult(vm=loc.vm.name, host=loc.host, path=path, changed=False, what_if=what_if,
                            bytes_moved=bytes_total)
    if disks and all(mig._under(d, path) for d in disks):
        return res
    running: list[dict[str, Any]] = []
    if not what_if:
        # Inspect before acting: a move of this VM already running (a run killed mid-step and resumed, another
        # operator) is watched, never started a second time (Hyper-V would refuse it as ResourceBusy).
        status = session.run(loc.host, "migrate_status", vm_params(loc.vm.id)).data
        running = [j for j in mig.moves(list(status.get("jobs") or [])) if int(j["job_state"]) in mig.ACTIVE_STATES]
    if not running:
        _preflight(session, loc.host, loc.vm.name, loc.vm.id, path, bytes_total)
    res.plan = [f"MigrateVirtualSystemToHost (Storage) {loc.vm.name} on {loc.host}: {count(len(disks), 'disk')}, "
                f"{bytes_total / 1024**3:.1f} GiB, to {path}"]
    res.changes = [Change("move storage", f"VM {loc.vm.name}", f"{count(len(disks), 'disk')} on {loc.host} to {path}")]
    if what_if:
        res.changed = True
        return res
    started = time.monotonic()
    if running:
        job = running[0]
        if int(job.get("migration_type") or 0) != hyperv.MigrationType.STORAGE:
            raise PreflightError([Problem("source.active_job", f"{loc.vm.name} is already being moved to "
                                          f"{job.get('destination_host')} on {loc.host}", host=loc.host,
                                          fix=f"`hvauto migrate --watch {loc.vm.name}` to follow it, `hvauto migrate "
                                          f"--cancel {loc.vm.name}` to cancel it")],
                                 what=f"storage move of {loc.vm.name}")
        instance_id = str(job["instance_id"])
        res.resumed = True
    else:
        instance_id, res.resumed = _start(session, loc, path, poll_interval=poll_interval)
    final = mig.watch(session, source=loc.host, vm=loc.vm.name, vm_id=loc.vm.id, dest=loc.host,
                      instance_id=instance_id, bytes_total=bytes_total, on_progress=on_progress,
                      poll_interval=poll_interval)
    if final is not None and int(final["job_state"]) not in mig.SUCCESS_STATES:
        rec = ErrorRecord(message=str(final.get("error_description") or "the storage move failed"),
                          fqid=f"MigrationJob{mig.JOB_STATE_NAMES.get(int(final['job_state']))}")
        raise RemoteScriptError(loc.host, "migrate_status", [rec], hint=f"{loc.vm.name}'s files stay where they were")
    status = session.run(loc.host, "migrate_status", vm_params(loc.vm.id)).data
    there = status.get("vm") or {}
    outside = [d for d in there.get("disks") or [] if not mig._under(d, path)]
    if not there or outside:
        raise VerifyError(f"the storage move of {loc.vm.name} finished but does not verify: disks outside {path}: "
                          f"{', '.join(outside) or '(VM not found)'}")
    res.changed = True
    res.elapsed_seconds = time.monotonic() - started
    res.path = ntpath.normpath(path)
    return res
