"""hvauto runbook: validate, run, resume and look back at YAML runbooks."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from hvauto.errors import ValidationError

from . import complete
from .app import App, OutputOpt, get_app
from .output import Output, emit, kv, note, print_json, print_json_line, table

if TYPE_CHECKING:
    from hvauto.journal import Journal, Redactor
    from hvauto.runbook.engine import RunSummary, TaskOutcome
    from hvauto.runbook.loader import Runbook, Step

app = typer.Typer(help="Runbooks: YAML playbooks that chain operations, journalled and resumable.",
                  no_args_is_help=True)

VarOpt = Annotated[list[str] | None, typer.Option("--var", "-e", help="A variable, NAME=VALUE (repeatable).")]
VarsFileOpt = Annotated[list[Path] | None, typer.Option("--vars-file", help="A YAML file of variables (repeatable).")]
LimitOpt = Annotated[list[str] | None, typer.Option("--limit", "-l", help="Only these hosts, groups or role:NAME.")]
FileArg = Annotated[Path, typer.Argument(help="The runbook (YAML).", autocompletion=complete.runbooks)]


# -- progress ----------------------------------------------------------------------------------------
def error_text(error: dict[str, Any]) -> str:
    """An error's message, with its first problems (preflight, validation) spelled out."""
    text = str(error.get("message", "")).splitlines()[0] if error.get("message") else str(error.get("error", ""))
    problems = error.get("problems") or []
    details = [p.get("message", "") if isinstance(p, dict) else str(p) for p in problems[:3]]
    if details:
        text += ": " + "; ".join(d for d in details if d)
    return text

class TextReporter:
    """Live progress for people, on stderr (stdout keeps the summary)."""

    def __init__(self, redact: Redactor, stream: TextIO | None = None) -> None:
        self.redact = redact
        self.stream = stream or sys.stderr

    def _line(self, text: str) -> None:
        self.stream.write(self.redact.text(text) + "\n")
        self.stream.flush()

    def run_started(self, run_id: int, rb: Runbook, *, resumed: bool, check: bool) -> None:
        mode = " (check mode: nothing changes)" if check else ""
        self._line(f"{'resuming' if resumed else 'run'} {run_id}: {rb.name}, {len(rb.steps)} step(s){mode}")

    def step_started(self, step: Step, hosts: list[str], total: int) -> None:
        where = "" if hosts == ["-"] else f" on {', '.join(hosts) or '(no hosts)'}"
        self._line(f"[{step.index + 1}/{total}] {step.name} ({step.op}){where}")

    def task_progress(self, step: Step, host: str, progress: dict[str, Any]) -> None:
        what = " -> ".join(str(progress[k]) for k in ("vm", "dest") if progress.get(k))
        self._line(f"    {host:<12} {what} {progress.get('percent', '?')}% {progress.get('state', '')}".rstrip())

    def task_finished(self, step: Step, outcome: TaskOutcome) -> None:
        word = {"done": "changed" if outcome.changed else "ok", "failed": "FAILED", "skipped": "skipped"}.get(
            outcome.state, outcome.state)
        if outcome.reused:
            word += " (done before)"
        detail = ""
        if outcome.error:
            detail = f"  {error_text(outcome.error)}"
        elif outcome.result and (outcome.result.get("skipped") or outcome.result.get("message")):
            detail = f"  {outcome.result.get('skipped') or outcome.result.get('message')}"
        self._line(f"    {outcome.host:<12} {word:<10} {outcome.elapsed:6.2f}s{detail}")

    def run_finished(self, summary: RunSummary) -> None:
        pass


class JsonReporter:
    """One JSON object per event (``-o json``, scheduled runs' logs)."""

    def __init__(self, redact: Redactor, streams: list[TextIO]) -> None:
        self.redact = redact
        self.streams = streams

    def _emit(self, event: dict[str, Any]) -> None:
        event = {"ts": round(time.time(), 3), **self.redact(event)}
        for s in self.streams:
            print_json_line(event, s)

    def run_started(self, run_id: int, rb: Runbook, *, resumed: bool, check: bool) -> None:
        self._emit({"event": "run.resumed" if resumed else "run.started", "run": run_id, "runbook": rb.name,
                    "check_mode": check, "steps": len(rb.steps)})

    def step_started(self, step: Step, hosts: list[str], total: int) -> None:
        self._emit({"event": "step.started", "step": step.index + 1, "name": step.name, "op": step.op,
                    "hosts": hosts})

    def task_progress(self, step: Step, host: str, progress: dict[str, Any]) -> None:
        self._emit({"event": "progress", "step": step.index + 1, "host": host, **progress})

    def task_finished(self, step: Step, outcome: TaskOutcome) -> None:
        event: dict[str, Any] = {"event": "task", "step": step.index + 1, "host": outcome.host,
                                 "state": outcome.state, "changed": outcome.changed,
                                 "elapsed": round(outcome.elapsed, 3), "reused": outcome.reused}
        if outcome.error:
            event["error"] = outcome.error
        note = task_note(outcome.result)
        if note:
            event["note"] = note
        changes = (outcome.result or {}).get("changes")
        if isinstance(changes, list) and changes:
            event["changes"] = changes  # what the step changed, or in check mode would change
        self._emit(event)

    def run_finished(self, summary: RunSummary) -> None:
        self._emit({"event": "run.finished", **summary.to_dict()})


# -- shared by run, resume and `schedule run` ----------------------------------------------------------
def prepare(state: App, file: Path, var: list[str], vars_files: list[Path], limit: list[str],
            given: dict[str, Any] | None = None) -> tuple[Runbook, dict[str, Any]]:
    """Parse and validate: every problem at once, before any remote call."""
    from hvauto.runbook import loader

    text = loader.read_text(file)
    extra = {**loader.overrides([], vars_files), **(given or {}), **loader.overrides(var, [])}
    rb, problems = loader.parse(text, file)
    inventory = state.inventory
    problems += loader.validate(rb, inventory, extra, limit=limit)
    if problems:
        raise ValidationError(sorted(problems, key=loader.problem_order), what=f"runbook {file}")
    return rb, loader.variables_for(rb, inventory, extra)


def secrets_of(variables: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Names of secret-looking variables, and their values (to mask wherever they would appear)."""
    from hvauto.journal import secret_key

    names = sorted(k for k in variables if secret_key(k))
    return names, [str(variables[k]) for k in names if variables[k] not in (None, "")]


def open_journal(state: App, redactor: Redactor) -> Journal:
    from hvauto.journal import Journal, journal_path

    return Journal(journal_path(state.inventory), redactor)


def execute(state: App, rb: Runbook, variables: dict[str, Any], *, check: bool, limit: list[str], forks: int | None,
            output: Output, schedule: str | None = None, log: TextIO | None = None,
            resume: int | None = None, interactive: bool | None = None) -> RunSummary:
    from hvauto.journal import Redactor
    from hvauto.runbook import lock
    from hvauto.runbook.engine import Engine, Reporter

    names, values = secrets_of(variables)
    redactor = Redactor(values)
    if interactive is False:
        from hvauto.credentials import CredentialProvider
        from hvauto.remote.retry import RetryPolicy
        from hvauto.session import Session

        state._session = Session(state.inventory, retry=RetryPolicy(attempts=max(1, state.retries)),
                                 credentials=CredentialProvider(interactive=False, base_dir=state.inventory.base_dir))
    streams: list[TextIO] = [sys.stdout] if output is Output.json else []
    if log is not None:
        streams.append(log)
    reporter: Reporter = JsonReporter(redactor, streams) if streams else TextReporter(redactor)
    with lock.hold(rb.path, what=f"runbook {rb.name!r} ({rb.path})"):
        journal = open_journal(state, redactor)
        try:
            engine = Engine(rb, state.session, journal, reporter, variables=variables, check=check, limit=limit,
                            forks=forks)
            if resume is not None:
                summary = engine.resume(resume)
            else:
                summary = engine.start(schedule=schedule, redacted=names)
        finally:
            journal.close()
    if output is Output.table:
        print_summary(summary, redactor)
    return summary


def task_note(result: dict[str, Any] | None) -> str:
    """A task's result in one line: its message (report, assert), what it skipped, or what it changed."""
    if not result:
        return ""
    for key in ("message", "skipped"):
        if result.get(key):
            return str(result[key])
    changes = result.get("changes")
    if isinstance(changes, list) and changes:
        first = changes[0]
        text = (f"{first.get('action', '')} {first.get('target', '')}".strip() if isinstance(first, dict)
                else str(first))
        more = len(changes) - 1
        return text + (f" (+{more} more)" if more else "")
    return ""


def print_summary(summary: RunSummary, redactor: Redactor) -> None:
    rows = []
    for s in summary.steps:
        for h, t in s.tasks.items():
            err = error_text(t.error) if t.error else task_note(t.result)
            word = {"done": "ok"}.get(t.state, t.state)
            rows.append((s.step.index + 1, s.step.name, h, word, "yes" if t.changed else "", f"{t.elapsed:.2f}s",
                         redactor.text(err.splitlines()[0] if err else "")))
    table(["#", "step", "host", "state", "changed", "time", "note"], rows)
    c = summary.counts()
    mode = " (check mode)" if summary.check_mode else ""
    line = (f"run {summary.run_id} {summary.state}{mode}: {c['ok']} ok ({c['changed']} changed), "
            f"{c['failed']} failed, {c['skipped']} skipped")
    if summary.message:
        line += f"; {summary.message}"
    sys.stdout.write(redactor.text(line) + "\n")


def finish(summary: RunSummary) -> None:
    if summary.state == "aborted":
        note(f"run {summary.run_id} aborted: {summary.message}; `hvauto runbook resume {summary.run_id}` continues it")
    elif summary.state == "partial":
        note(f"run {summary.run_id}: some hosts failed: {', '.join(summary.failed_hosts())}")
    if summary.exit_code:
        raise typer.Exit(int(summary.exit_code))


# -- commands ------------------------------------------------------------------------------------------
@app.command()
def validate(
    ctx: typer.Context,
    file: FileArg,
    var: VarOpt = None,
    vars_file: VarsFileOpt = None,
    limit: LimitOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Check a runbook (schema, operations, variables, hosts, templates); no remote call."""
    state = get_app(ctx)
    rb, _ = prepare(state, file, var or [], vars_file or [], limit or [])  # invalid: the error line lists each problem
    if output is Output.json:
        emit("result", {"file": str(file), "valid": True, "name": rb.name, "steps": [s.op for s in rb.steps]})
        return
    typer.echo(f"{file}: valid: {rb.name!r}, {len(rb.steps)} step(s): {', '.join(s.op for s in rb.steps)}")


@app.command()
def run(
    ctx: typer.Context,
    file: FileArg,
    check: Annotated[bool, typer.Option("--check", help="Run every step in what-if mode: change nothing.")] = False,
    limit: LimitOpt = None,
    var: VarOpt = None,
    vars_file: VarsFileOpt = None,
    forks: Annotated[int | None, typer.Option(help="Hosts at a time (default: the runbook's, else 5).", min=1,
                                              max=64)] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Run a runbook: live progress per step and host, then a summary. Exit 0 ok, 9 some hosts failed,
    11 aborted, 12 another run of it is in progress."""
    state = get_app(ctx)
    rb, variables = prepare(state, file, var or [], vars_file or [], limit or [])
    summary = execute(state, rb, variables, check=check, limit=limit or [], forks=forks, output=output)
    finish(summary)


@app.command()
def resume(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="The run's number (hvauto runbook history).")],
    var: VarOpt = None,
    vars_file: VarsFileOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Continue a run that was killed or aborted: finished steps never run again."""
    from hvauto.journal import Redactor
    from hvauto.runbook import loader

    state = get_app(ctx)
    journal = open_journal(state, Redactor())
    try:
        record = journal.run(run_id)
    finally:
        journal.close()
    if record.state == "ok":
        if output is Output.json:
            emit("result", {"run": run_id, "state": record.state, "resumed": False})
        else:
            typer.echo(f"run {run_id} finished ok; nothing to resume")
        return
    rb, problems = loader.parse(record.text, Path(record.path))
    if problems:
        raise ValidationError(problems, what=f"journalled runbook of run {run_id}")
    given = loader.overrides(var or [], vars_file or [])
    missing = [k for k in record.redacted if k not in given]
    if missing:
        raise ValidationError([f"run {run_id} used secret variable(s) {', '.join(missing)}, which the journal does "
                               f"not keep: give them again with --var NAME=VALUE or --vars-file"], what="resume")
    variables = {**record.vars, **given}
    # The inventory may have changed since: check again, before any remote call.
    problems = loader.validate(rb, state.inventory, variables, limit=record.limits)
    if problems:
        raise ValidationError(sorted(problems, key=loader.problem_order), what=f"journalled runbook of run {run_id}")
    if str(state.inventory.path) != record.inventory:
        note(f"run {run_id} used the inventory {record.inventory}; resuming with {state.inventory.path}")
    summary = execute(state, rb, variables, check=record.check_mode, limit=record.limits, forks=record.forks,
                      output=output, resume=run_id)
    finish(summary)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


@app.command()
def history(
    ctx: typer.Context,
    last: Annotated[int, typer.Option("--last", "-n", help="How many runs.", min=1)] = 20,
    runbook: Annotated[str | None, typer.Option(help="Only runs of this runbook (its name).")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """The journal's recent runs, newest first."""
    from hvauto.journal import Redactor

    journal = open_journal(get_app(ctx), Redactor())
    try:
        runs = journal.runs(last, runbook)
    finally:
        journal.close()
    rows = [{"run": r.id, "runbook": r.runbook, "state": r.display_state, "check_mode": r.check_mode,
             "started": _when(r.started), "seconds": round((r.finished or time.time()) - r.started, 1),
             "failed_hosts": (r.summary or {}).get("failed_hosts", []), "schedule": r.schedule,
             "resumes": r.resumes} for r in runs]
    if output is Output.json:
        emit("result", {"runs": rows})
        return
    table(["run", "runbook", "state", "check", "started", "seconds", "failed hosts", "schedule"],
          [(r["run"], r["runbook"], r["state"], "yes" if r["check_mode"] else "", r["started"], r["seconds"],
            ",".join(r["failed_hosts"]), r["schedule"] or "") for r in rows])


@app.command()
def show(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="The run's number.")],
    output: OutputOpt = Output.table,
) -> None:
    """One run: every step and host, its state, attempts, timings, result or error."""
    from hvauto.journal import Redactor

    journal = open_journal(get_app(ctx), Redactor())
    try:
        r = journal.run(run_id)
        steps = journal.steps(run_id)
        tasks = journal.tasks(run_id)
        calls = journal.calls(run_id)
    finally:
        journal.close()
    if output is Output.json:
        emit("result", {
            "run": r.id, "runbook": r.runbook, "path": r.path, "state": r.display_state, "check_mode": r.check_mode,
            "vars": r.vars, "limit": r.limits, "started": r.started, "finished": r.finished, "resumes": r.resumes,
            "schedule": r.schedule, "summary": r.summary,
            "steps": [{"step": s.idx + 1, "name": s.name, "op": s.op, "state": s.state, "hosts": s.hosts,
                       "tasks": [{"host": t.host, "state": t.state, "attempts": t.attempts, "inputs": t.inputs,
                                  "result": t.result, "error": t.error, "started": t.started, "finished": t.finished}
                                 for t in tasks if t.idx == s.idx]} for s in steps],
            "calls": calls,
        })
        return
    kv([("Run", r.id), ("Runbook", f"{r.runbook} ({r.path})"), ("State", r.display_state),
        ("Check mode", "yes" if r.check_mode else "no"), ("Started", _when(r.started)), ("Finished", _when(r.finished)),
        ("Resumed", r.resumes), ("Variables", json.dumps(r.vars, sort_keys=True))])
    names = {s.idx: s.name for s in steps}
    table(["#", "step", "host", "state", "attempts", "seconds", "changed", "note"],
          [(t.idx + 1, names.get(t.idx, ""), t.host, t.state, t.attempts,
            f"{(t.finished or 0) - (t.started or 0):.2f}" if t.started and t.finished else "",
            "yes" if (t.result or {}).get("changed") else "",
            next(iter((error_text(t.error) if t.error else task_note(t.result)).splitlines()), ""))
           for t in tasks])


@app.command("schema")
def schema_() -> None:
    """Print the runbook format's JSON Schema (for editors: yaml-language-server, VS Code)."""
    from hvauto.runbook.schema import full_schema

    print_json(full_schema())
