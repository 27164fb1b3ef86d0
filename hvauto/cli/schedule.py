"""hvauto schedule: run runbooks unattended (systemd user timers, or cron where systemd is absent)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hvauto.errors import HvautoError, LockedError

from .app import OutputOpt, get_app
from .output import Output, emit, note, print_json_line, table
from .runbook import LimitOpt, VarOpt, VarsFileOpt, execute, finish, prepare

app = typer.Typer(help="Run runbooks on a schedule (systemd user timers, or cron without systemd).",
                  no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The schedule's name (letters, digits, - and _).")]
EnableOpt = Annotated[bool | None, typer.Option(
    "--enable/--no-enable",
    help="Enable the timer with systemctl --user (default: yes, unless $HVAUTO_SYSTEMD_DIR points elsewhere).")]


def _enable(value: bool | None) -> bool:
    return value if value is not None else "HVAUTO_SYSTEMD_DIR" not in os.environ


@app.command()
def add(
    ctx: typer.Context,
    name: NameArg,
    runbook: Annotated[Path, typer.Option("--runbook", "-r", help="The runbook to run.")],
    at: Annotated[str, typer.Option(help="When: a systemd calendar expression ('Mon..Fri 02:00', 'daily') or a "
                                         "cron line ('0 2 * * 1-5').")],
    var: VarOpt = None,
    vars_file: VarsFileOpt = None,
    limit: LimitOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Scheduled runs change nothing (what-if).")] = False,
    on_failure: Annotated[str | None, typer.Option(
        help="A command to run when a run fails; it gets the run summary (JSON) on stdin and HVAUTO_SCHEDULE, "
             "HVAUTO_RUN_ID, HVAUTO_RUN_STATE in its environment (a mail or chat-webhook script).")] = None,
    backend: Annotated[str | None, typer.Option(help="systemd or cron (default: systemd where it runs).")] = None,
    enable: EnableOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Schedule a runbook: writes a systemd user timer and service, or a crontab line."""
    from hvauto import schedule
    from hvauto.errors import UsageError
    from hvauto.runbook import loader

    state = get_app(ctx)
    if backend is not None and backend not in schedule.BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(schedule.BACKENDS)}")
    if schedule.path_of(name).exists():
        raise UsageError(f"a schedule named {name!r} exists", hint=f"`hvauto schedule remove {name}` first")
    given = loader.overrides(var or [], [])
    # The runbook must be valid now, with the schedule's variables: no remote call.
    prepare(state, runbook, [], vars_file or [], limit or [], given)
    s = schedule.make(name, runbook=runbook, at=at, inventory=state.inventory.path, backend=backend,
                      variables=given, vars_files=vars_file or [], limit=limit or [], check=check,
                      on_failure=on_failure)
    done = schedule.install(s, enable=_enable(enable))
    if output is Output.json:
        emit("result", {"schedule": s, "files": [str(f) for f in done.files], "notes": done.notes})
        return
    when = f"OnCalendar={s.calendar}" if s.backend == "systemd" else f"'{s.cron}'"
    typer.echo(f"schedule {name}: {s.runbook} at {s.at!r} ({s.backend}: {when})")
    for f in done.files:
        typer.echo(f"  wrote {f}")
    for n in done.notes:
        note(n)


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """The schedules, with each one's last run from the journal."""
    from hvauto import schedule
    from hvauto.journal import Journal, Redactor, journal_path

    items = schedule.all_schedules()
    last: dict[str, Any] = {}
    path = journal_path(get_app(ctx).inventory) if items else None
    if path is not None and path.exists():
        journal = Journal(path, Redactor())
        try:
            for s in items:
                runs = journal.runs(1, schedule=s.name)
                if runs:
                    last[s.name] = runs[0]
        finally:
            journal.close()
    rows: list[dict[str, Any]] = [{"name": s.name, "runbook": s.runbook, "at": s.at, "backend": s.backend,
             "check": s.check, "last_run": last[s.name].id if s.name in last else None,
             "last_state": last[s.name].display_state if s.name in last else None,
             "last_started": last[s.name].started if s.name in last else None} for s in items]
    if output is Output.json:
        emit("result", {"schedules": rows})
        return
    table(["name", "runbook", "at", "backend", "last run"],
          [(r["name"], r["runbook"], r["at"], r["backend"],
            f"{r['last_run']} {r['last_state']} "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(r['last_started']))}" if r["last_run"] else "never")
           for r in rows])


StopOpt = Annotated[bool | None, typer.Option(
    "--enable/--no-enable",
    help="Stop and disable the timer with systemctl --user before its units are removed (default: yes, unless "
         "$HVAUTO_SYSTEMD_DIR points elsewhere).")]


@app.command()
def remove(ctx: typer.Context, name: NameArg, enable: StopOpt = None) -> None:
    """Remove a schedule: its timer and service, or its crontab line."""
    from hvauto import schedule

    for n in schedule.remove(name, enable=_enable(enable)):
        note(n)
    typer.echo(f"schedule {name} removed")


@app.command()
def run(ctx: typer.Context, name: NameArg) -> None:
    """Run a schedule now, as its timer does: never prompts, one run at a time, JSON lines to its log."""
    from hvauto import schedule
    from hvauto.journal import Redactor

    state = get_app(ctx)
    s = schedule.load(name)
    state.inventory_path = Path(s.inventory)
    logpath = schedule.log_file(name)
    logpath.parent.mkdir(parents=True, exist_ok=True)
    redact = Redactor()
    with logpath.open("a", encoding="utf-8") as log:
        def event(kind: str, **data: Any) -> None:
            doc = redact({"ts": round(time.time(), 3), "event": kind, "schedule": name, **data})
            for stream in (log, sys.stdout):
                print_json_line(doc, stream)

        try:
            rb, variables = prepare(state, Path(s.runbook), [], [Path(p) for p in s.vars_files], s.limit, s.vars)
            summary = execute(state, rb, variables, check=s.check, limit=s.limit, forks=None, output=Output.json,
                              schedule=name, log=log, interactive=False)
        except LockedError as exc:
            event("run.skipped", reason=exc.message)
            raise
        except HvautoError as exc:
            event("run.error", **exc.to_dict())
            why = schedule.notify_failure(s, redact({"schedule": name, "state": "error", **exc.to_dict()}))
            if why:
                event("notify.failed", reason=why)
            raise
        if summary.state != "ok":
            why = schedule.notify_failure(s, redact({"schedule": name, **summary.to_dict()}))
            if why:
                event("notify.failed", reason=why)
    finish(summary)


def _log_line(doc: dict[str, Any]) -> str:
    """One event of a scheduled run, for a person: time, event, step and host, state, its note."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(doc.get("ts") or 0)))
    kind = str(doc.get("event") or "")
    parts = [when, kind]
    if doc.get("run") is not None and kind.startswith("run"):
        parts.append(f"run {doc['run']}")
    if doc.get("step") is not None:
        parts.append(f"step {doc['step']}")
    if doc.get("host"):
        parts.append(str(doc["host"]))
    if doc.get("state"):
        parts.append(str(doc["state"]))
    text = " ".join(parts)
    detail = doc.get("note") or doc.get("message") or doc.get("reason") or ""
    if isinstance(doc.get("error"), dict):
        detail = doc["error"].get("message") or detail
    elif doc.get("error"):
        detail = str(doc["error"])
    return f"{text}: {detail}" if detail else text


@app.command()
def logs(
    ctx: typer.Context,
    name: NameArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines as runs add them.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Only the last N events (0: all).")] = 0,
    output: OutputOpt = Output.table,
) -> None:
    """What a schedule's runs said: each step's outcome per host, reports, errors (its JSON-lines log)."""
    from hvauto import schedule

    schedule.load(name)  # an unknown schedule is "not found", whether or not it has run
    path = schedule.log_file(name)

    def show(line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            doc = json.loads(line)
        except ValueError:
            return
        if output is Output.json:
            print_json_line(doc)
        else:
            typer.echo(_log_line(doc))

    if not path.exists() and not follow:
        note(f"schedule {name} has not run yet (no {path})")
        return
    done = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in done[-lines:] if lines else done:
        show(line)
    if not follow:
        return
    offset = path.stat().st_size if path.exists() else 0
    try:
        while True:
            time.sleep(0.5)
            if not path.exists() or path.stat().st_size <= offset:
                continue
            with path.open("r", encoding="utf-8") as f:
                f.seek(offset)
                chunk = f.read()
                offset = f.tell()
            for line in chunk.splitlines():
                show(line)
    except KeyboardInterrupt:
        return
