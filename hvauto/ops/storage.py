"""Move a VM's storage on its own host (MigrateVirtualSystemToHost, MigrationType Storage): locate, check, start,
watch, verify."""

from __future__ import annotations

import ntpath
import time
from dataclasses import dataclass, field

from hvauto.errors import (
    ErrorRecord,
    HvautoError,
    PreflightError,
    Problem,
    RemoteScriptError,
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
    mig.validate(session, vm=vm, dest=None, source=host, storage_path=path, source_flag="--host")
    loc = mig.locate_one(session, vm, hosts=[session.host(host).name] if host else None)
    disks = [d.path for d in loc.vm.disks]
    bytes_total = loc.vm.disk_bytes
    res = StorageMoveResult(vm=loc.vm.name, host=loc.host, path=path, changed=False, what_if=what_if,
                            bytes_moved=bytes_total)
    if disks and all(mig._under(d, path) for d in disks):
        return res
    _preflight(session, loc.host, loc.vm.name, loc.vm.id, path, bytes_total)
    res.plan = [f"MigrateVirtualSystemToHost (Storage) {loc.vm.name} on {loc.host}: {count(len(disks), 'disk')}, "
                f"{bytes_total / 1024**3:.1f} GiB, to {path}"]
    res.changes = [Change("move storage", f"VM {loc.vm.name}", f"{count(len(disks), 'disk')} on {loc.host} to {path}")]
    if what_if:
        res.changed = True
        return res
    started = time.monotonic()
    instance_id = ""
    try:
        start = session.run(loc.host, "storage_move_start", storage_start_params(loc.vm.id, path)).data
        instance_id = str((start.get("job") or {}).get("instance_id") or "")
    except HvautoError as exc:
        if not getattr(exc, "sent", False):
            raise
        # The answer was lost after the request went out: watch whatever started, never send it twice.
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
