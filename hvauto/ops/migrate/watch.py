"""Watch a move's job (``Msvm_MigrationJob``, move jobs only, never a check) until it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hvauto import hyperv
from hvauto.errors import (
    TransportError,
)
from hvauto.ops.migrate.locate import locate_one, validate
from hvauto.ops.migrate.model import ACTIVE_STATES, JOB_STATE_NAMES, MoveProgress, ProgressFn
from hvauto.ops.migrate.steps import vm_params
from hvauto.session import Session


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


#: The shortest wait between two polls of a job near its end (each poll is one round trip).
MIN_POLL = 0.05


def next_poll(elapsed: float, percent: int, poll_interval: float) -> float:
    """How long to wait before the next poll: ``poll_interval``, or less when the job should end sooner.

    The end is expected at elapsed x (100 - percent) / percent from now; before any progress,
    the wait doubles from MIN_POLL. So a move is seen to end (and its migration slots are
    given to the next move) within a few hundredths of a second instead of up to a whole
    poll interval later.
    """
    if percent <= 0:
        expected = elapsed
    elif percent >= 100:
        expected = MIN_POLL
    else:
        expected = elapsed * (100 - percent) / percent
    return min(poll_interval, max(MIN_POLL, expected))


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
            status = session.run(source, "migrate_status", vm_params(vm_id)).data
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
        sleep(next_poll(time.monotonic() - started, int(job["percent_complete"]), poll_interval))


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


def watch_running(session: Session, *, vm: str, source: str | None = None, on_progress: ProgressFn | None = None,
                  poll_interval: float = 1.0) -> dict[str, Any] | None:
    """``hvauto migrate --watch VM``: follow a move started earlier (by hvauto or anyone)."""
    validate(session, vm=vm, dest=None, source=source, storage_path=None, poll_interval=poll_interval)
    loc = locate_one(session, vm, hosts=[session.host(source).name] if source else None)
    status = session.run(loc.host, "migrate_status", vm_params(loc.vm.id)).data
    job = pick_job(list(status.get("jobs") or []))
    if job is None:
        return None
    # What the move copies, as the start would have counted it: the disks when the storage moves, the memory a
    # running VM holds when the VM moves (not "0 B of 0 B").
    kind = int(job.get("migration_type") or 0)
    total = (loc.vm.disk_bytes if kind != hyperv.MigrationType.VIRTUAL_SYSTEM else 0) + (
        (loc.vm.memory_assigned or loc.vm.memory_startup)
        if kind != hyperv.MigrationType.STORAGE and loc.vm.state in ("Running", "Paused") else 0)
    return watch(session, source=loc.host, vm=loc.vm.name, vm_id=loc.vm.id, dest=str(job.get("destination_host")),
                 instance_id=str(job["instance_id"]), bytes_total=total, on_progress=on_progress,
                 poll_interval=poll_interval)
