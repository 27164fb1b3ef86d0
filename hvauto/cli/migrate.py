"""hvauto migrate / evacuate / storage move: move VMs between hosts, with preflight, progress and verify."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from hvauto.errors import Interrupted, Problem
from hvauto.results import count

from . import complete
from .app import OutputOpt, RenderOpt, WhatIfOpt, get_app
from .common import finish, print_steps
from .output import Output, emit, note, shorten, size, width

if TYPE_CHECKING:
    from hvauto.ops.migrate import MigrationResult, MoveProgress, StartedMove
    from hvauto.session import Session

storage_app = typer.Typer(help="VM storage.", no_args_is_help=True)

PollOpt = Annotated[
    float,
    typer.Option("--poll-interval", envvar="HVAUTO_POLL_INTERVAL", min=0.0, max=3600.0,
                 help="Seconds between progress polls of the migration job (at most 3600)."),
]


class Bar:
    """A progress bar on stderr (redrawn in place on a terminal, a line per 10% otherwise), or JSON lines on stdout."""

    def __init__(self, output: Output) -> None:
        self.json = output is Output.json
        self.tty = sys.stderr.isatty()
        self.last: dict[str, int] = {}

    def __call__(self, p: MoveProgress) -> None:
        if self.json:
            emit("progress", p)
            return
        step = p.percent if self.tty else p.percent // 10 * 10
        if self.last.get(p.vm) == step and p.state == "Running":
            return
        self.last[p.vm] = step
        line = progress_line(p, width())
        if self.tty:
            getattr(sys.stderr, "write_raw", sys.stderr.write)("\r")  # redrawn in place: hvauto's own control
            sys.stderr.write(line + ("\n" if p.state != "Running" else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _clock(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_line(p: MoveProgress, columns: int) -> str:
    """``vm01 hostA -> hostB [####....]  45% 9.9 GiB of 22.0 GiB, 1.2 GiB/s, 0:12 left``, in ``columns``.

    The bar takes what the text leaves; with a job whose size is not known (``--watch``) the bytes
    give way to the time elapsed.
    """
    label = f"{p.vm} storage on {p.source}" if p.source == p.dest else f"{p.vm} {p.source} -> {p.dest}"
    stats = f"{p.percent:3d}%"
    if p.bytes_total > 0:
        done = p.bytes_total * p.percent // 100
        stats += f" {size(done)} of {size(p.bytes_total)}"
        if p.elapsed_seconds > 0 and done > 0 and p.state == "Running":
            rate = done / p.elapsed_seconds
            stats += f", {size(int(rate))}/s, {_clock((p.bytes_total - done) / rate)} left"
    else:
        stats += f", {_clock(p.elapsed_seconds)} elapsed"
    if p.state != "Running":
        stats += f"  {p.state}"
    # One column spare: a line as wide as the terminal wraps on some, and a \r redraw must not.
    room = columns - 1 - len(label) - len(stats) - 4
    if room < 6:
        return shorten(f"{label} {stats}", columns - 1)
    bar = min(room, 40)
    filled = bar * p.percent // 100
    return f"{label} [{'#' * filled}{'.' * (bar - filled)}] {stats}"


def _problems_text(problems: list[Problem]) -> None:
    for p in problems:
        mark = "BLOCKING" if p.blocking else "warning"
        where = f"{p.host}: " if p.host else ""
        mid = f" [{p.source} {p.message_id}]" if p.message_id else ""
        typer.echo(f"  [{mark}] {where}{p.message}{mid}")
        if p.fix:
            typer.echo(f"      fix: {p.fix}")


def _interrupted(session: Session, started: StartedMove | None, output: Output) -> None:
    """Ctrl-C during a move: cancel it (asked, on a terminal) or leave it running and say how to follow it."""
    from hvauto.ops import migrate as ops

    if started is None:
        note("interrupted before the move started; nothing was moved")
        raise Interrupted("interrupted")
    watch_cmd = f"hvauto migrate --watch {started.vm}"
    cancel_cmd = f"hvauto migrate --cancel {started.vm}"
    if sys.stdin.isatty() and typer.confirm(
            f"\nCancel the migration of {started.vm} ({started.source} -> {started.dest})? "
            "No leaves it running", default=False, err=True):
        res = ops.cancel(session, vm=started.vm, source=started.source)
        note(f"{started.vm}: migration cancelled ({count(len(res.cancelled_jobs), 'job')}); it stays on {started.source}")
        raise Interrupted("interrupted; the migration was cancelled")
    note(f"{started.vm}: the migration goes on on {started.source}. Watch it: {watch_cmd}; cancel it: {cancel_cmd}")
    raise Interrupted("interrupted; the migration is still running",
                      hint=f"watch: {watch_cmd}; cancel: {cancel_cmd}")


def _report(res: MigrationResult, output: Output) -> None:
    if output is Output.json:
        emit("result", res)
        return
    if res.already_done:
        typer.echo(f"{res.vm}: already on {res.dest}" + (f" with its storage under {res.storage_path}"
                                                       if res.storage_path else "") + "; nothing to do")
        return
    rate = f", {size(int(res.bytes_moved / res.elapsed_seconds))}/s" if res.elapsed_seconds > 0 else ""
    typer.echo(f"{res.vm}: moved from {res.source} to {res.dest} in {res.elapsed_seconds:.1f} s "
               f"({size(res.bytes_moved)} moved{rate})" + (" (resumed watching a move already running)"
                                                          if res.resumed else ""))
    for check in res.verified:
        typer.echo(f"  verified: {check}")


def _what_if(res: MigrationResult, output: Output) -> None:
    from hvauto.results import Report

    if output is Output.json:
        emit("result", res)
    else:
        typer.echo(f"plan (what-if, nothing changed) for {res.vm}:")
        for step in res.plan:
            typer.echo(f"  - {step}")
        if res.problems:
            typer.echo("preflight:")
            _problems_text(res.problems)
        else:
            typer.echo("preflight: no problems found")
    finish(Report(what_if=True, problems=res.problems))


def migrate(
    ctx: typer.Context,
    vm: Annotated[str, typer.Argument(help="The VM (exact name).", autocompletion=complete.vms)],
    dest: Annotated[str | None, typer.Argument(help="Destination host.", autocompletion=complete.hosts)] = None,
    shared_nothing: Annotated[bool, typer.Option("--shared-nothing", help="Move the VM with its storage "
                                                 "(MigrateVirtualSystemToHost, VirtualSystemAndStorage).")] = False,
    live: Annotated[bool, typer.Option("--live", help="Move the running VM; its storage stays on its share.")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel the VM's running migration and remove the "
                                         "planned VM a move left behind.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the VM's running migration.")] = False,
    source: Annotated[str | None, typer.Option("--from", help="Source host (else every Hyper-V host is asked).",
                                              autocompletion=complete.hosts)]
    = None,
    storage_path: Annotated[str | None, typer.Option("--storage-path", help="Destination folder for the VM's files "
                                                     "(default: the destination's VM path\\VM).")] = None,
    poll_interval: PollOpt = 1.0,
    output: OutputOpt = Output.table,
    what_if: WhatIfOpt = False,
    render: RenderOpt = False,
) -> None:
    """Move a VM to another host: preflight (every problem at once), move with progress, verify.

    hvauto migrate --shared-nothing vm01 hostB | --live vm01 hostB | --cancel vm01 | --watch vm01
    """
    modes = [m for m, on in (("--shared-nothing", shared_nothing), ("--live", live), ("--cancel", cancel),
                             ("--watch", watch)) if on]
    problems = []
    if len(modes) != 1:
        problems.append("give exactly one of --shared-nothing, --live, --cancel, --watch")
    if (shared_nothing or live) and not dest:
        problems.append("a destination host is needed: hvauto migrate --shared-nothing VM DEST")
    if (cancel or watch) and dest:
        problems.append(f"{modes[0] if modes else '--cancel'} takes the VM only, no destination")
    if problems:
        from hvauto.errors import ValidationError

        raise ValidationError(problems)
    from hvauto.ops import migrate as ops

    session = get_app(ctx).session
    if render:
        from hvauto.ops.migrate import steps

        if cancel:
            plan = steps.cancel_steps(session, vm=vm, source=source)
        elif watch:
            plan = steps.watch_steps(session, vm=vm, source=source)
        else:
            assert dest is not None
            plan = steps.move_steps(session, vm=vm, dest=dest, source=source, storage_path=storage_path, live=live)
        print_steps(session, plan, output)
        return
    bar = Bar(output)
    if cancel:
        cres = ops.cancel(session, vm=vm, source=source, what_if=what_if)
        if output is Output.json:
            emit("result", cres)
        elif what_if:
            typer.echo(f"{cres.vm}: would cancel {count(len(cres.cancelled_jobs), 'running job')} on {cres.source} and "
                       "remove planned VMs it left on other hosts")
        elif cres.changed:
            typer.echo(f"{cres.vm}: cancelled {count(len(cres.cancelled_jobs), 'migration job')} on {cres.source}"
                       + (f"; removed the planned VM from {', '.join(cres.planned_removed_from)}"
                          if cres.planned_removed_from else ""))
        elif not cres.refused_jobs:
            typer.echo(f"{cres.vm}: no migration running and no planned VM left; nothing to cancel")
        if output is not Output.json:
            for refused in cres.refused_jobs:
                note(f"{cres.vm}: not cancelled, still running: {refused}")
            for left in cres.planned_left:
                note(f"{cres.vm}: planned VM not removed: {left}")
        return
    if watch:
        try:
            job = ops.watch_running(session, vm=vm, source=source, on_progress=bar, poll_interval=poll_interval)
        except KeyboardInterrupt:
            raise Interrupted("interrupted; the migration (if any) goes on",
                              hint=f"hvauto migrate --cancel {vm} cancels it") from None
        if output is Output.json:
            emit("result", {"vm": vm, "job": job})
        elif job is None:
            typer.echo(f"{vm}: no migration job to watch")
        else:
            typer.echo(f"{vm}: migration job {ops.JOB_STATE_NAMES.get(int(job['job_state']), job['job_state'])}")
        return
    assert dest is not None
    started: list[StartedMove] = []
    try:
        res = ops.migrate(session, vm=vm, dest=dest, source=source, storage_path=storage_path, live=live,
                          what_if=what_if, on_progress=bar, on_started=started.append, poll_interval=poll_interval)
    except KeyboardInterrupt:
        _interrupted(session, started[0] if started else None, output)
        return
    if what_if:
        _what_if(res, output)
        return
    warnings = [p for p in res.problems if not p.blocking]
    if warnings and output is not Output.json and not res.already_done:
        note("preflight warnings:")
        for p in warnings:
            note(f"  {p.host}: {p.message} (fix: {p.fix})")
    _report(res, output)


# -- storage move ------------------------------------------------------------------------------------------------

@storage_app.command("move")
def storage_move(
    ctx: typer.Context,
    vm: Annotated[str, typer.Argument(help="The VM (exact name).", autocompletion=complete.vms)],
    path: Annotated[str, typer.Argument(help="Destination folder for all of the VM's files (D:\\VMs\\vm01).")],
    source: Annotated[str | None, typer.Option("--host", help="The VM's host (else every Hyper-V host is asked).")]
    = None,
    poll_interval: PollOpt = 1.0,
    output: OutputOpt = Output.table,
    what_if: WhatIfOpt = False,
    render: RenderOpt = False,
) -> None:
    """Move a VM's storage on its host (MigrateVirtualSystemToHost, Storage), with progress and verify."""
    from hvauto.ops import storage as ops

    session = get_app(ctx).session
    if render:
        from hvauto.ops.migrate.steps import storage_steps

        print_steps(session, storage_steps(session, vm=vm, path=path, host=source), output)
        return
    try:
        res = ops.move(session, vm=vm, path=path, host=source, what_if=what_if, on_progress=Bar(output),
                       poll_interval=poll_interval)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; the storage move goes on",
                          hint=f"hvauto migrate --watch {vm} to watch, hvauto migrate --cancel {vm} to cancel") from None
    if output is Output.json:
        emit("result", res)
    elif what_if:
        typer.echo(f"plan (what-if, nothing changed): {'; '.join(res.plan) or 'nothing to do'}")
    elif not res.changed:
        typer.echo(f"{res.vm}: storage already under {res.path} on {res.host}; nothing to do")
    else:
        typer.echo(f"{res.vm}: storage moved to {res.path} on {res.host} in {res.elapsed_seconds:.1f} s "
                   f"({size(res.bytes_moved)})")


# -- evacuate -------------------------------------------------------------------------------------------------

def evacuate(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The stand-alone Hyper-V host to empty.",
                                                        autocompletion=complete.hosts)],
    to: Annotated[str | None, typer.Option("--to", help="Destination hosts, comma-separated (default: every other "
                                           "Hyper-V host).")] = None,
    max_parallel: Annotated[int | None, typer.Option("--max-parallel", min=1, help="At most N moves at once (the "
                                                     "hosts' own migration limits always apply).")] = None,
    poll_interval: PollOpt = 1.0,
    output: OutputOpt = Output.table,
    what_if: WhatIfOpt = False,
    render: RenderOpt = False,
) -> None:
    """Move every VM off a host, placed by free memory and space, within each host's migration limits."""
    from hvauto.ops import evacuate as ops

    session = get_app(ctx).session
    targets = [t.strip() for t in to.split(",") if t.strip()] if to else None
    if render:
        print_steps(session, ops.evacuate_steps(session, host=host, to=targets, max_parallel=max_parallel), output)
        return
    bar = Bar(output)
    try:
        res = ops.evacuate(session, host=host, to=targets, max_parallel=max_parallel, what_if=what_if,
                           on_progress=bar, poll_interval=poll_interval)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; moves already started go on",
                          hint="`hvauto migrate --watch VM` / `hvauto migrate --cancel VM` for each") from None
    if output is Output.json:
        emit("result", res)
    else:
        from .output import table

        verb = "would move" if what_if else "moved"
        typer.echo(f"evacuate {res.host}: {sum(1 for v in res.vms if v.status in ('moved', 'planned'))} "
                   f"{verb}, {sum(1 for v in res.vms if v.status == 'failed')} failed, "
                   f"{sum(1 for v in res.vms if v.status == 'skipped')} skipped")
        table(["vm", "to", "status", "seconds", "detail"],
              [(v.vm, v.dest or "-", v.status, f"{v.elapsed_seconds:.1f}", v.detail) for v in res.vms])
    finish(res)
