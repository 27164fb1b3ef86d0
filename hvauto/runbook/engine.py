"""Run a runbook: steps in order, each over its hosts (``forks`` at a time), journalled as it goes.

Per step and host the journal goes ``pending -> running -> done | failed | skipped``, one
committed transaction per change, before and after the operation. A host that fails a step
drops out of the later steps (unless the step says ``continue_on_error``); a step that fails on
every host, or a single-call step that fails, aborts the run.

Resume replays the runbook as it was journalled: ``done`` and ``skipped`` pairs are never run
again (their results are re-registered from the journal), a ``running`` pair was in flight
when the process died and runs again (operations inspect first, so that is safe), ``pending``
and ``failed`` ones run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol

from hvauto.errors import (
    ConfigError,
    ExitCode,
    HostOutcome,
    HostsFailedError,
    HvautoError,
    RunAborted,
    TemplateError,
    UsageError,
    ValidationError,
    exit_code,
)
from hvauto.journal import Journal, TaskRecord
from hvauto.remote.base import Result
from hvauto.results import to_jsonable
from hvauto.script import Script
from hvauto.session import Session

from . import templating
from .loader import OMIT, Runbook, Step, _as_list, _type_ok, inventory_view, resolve_path

log = logging.getLogger("hvauto.runbook")

#: Errors a step retry cannot help with: the input is wrong, not the moment.
NOT_RETRYABLE = (UsageError, ConfigError, TemplateError)
GLOBAL = "-"


@dataclass
class TaskOutcome:
    host: str
    state: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    elapsed: float = 0.0
    reused: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.result and self.result.get("changed"))


@dataclass
class StepOutcome:
    step: Step
    state: str
    tasks: dict[str, TaskOutcome] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: int
    runbook: str
    state: str
    check_mode: bool
    steps: list[StepOutcome]
    started: float
    finished: float
    message: str = ""

    @property
    def exit_code(self) -> ExitCode:
        """Chosen by :func:`hvauto.errors.exit_code`: aborted 11, some hosts failed 9, else 0."""
        if self.state == "aborted":
            return exit_code(RunAborted(self.message or f"run {self.run_id} aborted"))
        if self.state == "partial":
            failed = self.failed_hosts()
            hosts = {h for s in self.steps for h in s.tasks if h != GLOBAL}
            return exit_code(HostsFailedError({h: HostOutcome(h, h not in failed) for h in hosts}))
        return exit_code(None)

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
        for s in self.steps:
            for t in s.tasks.values():
                if t.state == "done":
                    out["ok"] += 1
                    out["changed"] += int(t.changed)
                elif t.state in out:
                    out[t.state] += 1
        return out

    def failed_hosts(self) -> list[str]:
        seen: list[str] = []
        for s in self.steps:
            for h, t in s.tasks.items():
                if t.state == "failed" and h not in seen and h != GLOBAL:
                    seen.append(h)
        return seen

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "runbook": self.runbook,
            "state": self.state,
            "check_mode": self.check_mode,
            "message": self.message,
            "started": self.started,
            "finished": self.finished,
            "counts": self.counts(),
            "failed_hosts": self.failed_hosts(),
            "steps": [
                {"step": s.step.index + 1, "name": s.step.name, "op": s.step.op, "state": s.state,
                 "hosts": {h: {"state": t.state, "changed": t.changed, "elapsed": round(t.elapsed, 3),
                               **({"error": t.error} if t.error else {})} for h, t in s.tasks.items()}}
                for s in self.steps
            ],
        }


class Reporter(Protocol):
    def run_started(self, run_id: int, rb: Runbook, *, resumed: bool, check: bool) -> None: ...

    def step_started(self, step: Step, hosts: list[str], total: int) -> None: ...

    def task_progress(self, step: Step, host: str, progress: dict[str, Any]) -> None: ...

    def task_finished(self, step: Step, outcome: TaskOutcome) -> None: ...

    def run_finished(self, summary: RunSummary) -> None: ...


class _CallRecorder:
    """The session observer: which remote calls each step x host made (templates only, no values)."""

    def __init__(self, journal: Journal, run_id: int) -> None:
        self.journal = journal
        self.run_id = run_id
        self.local = threading.local()

    def call_started(self, host: str, script: Script) -> None:
        idx = getattr(self.local, "step", None)
        if idx is None:
            return
        ids: list[int] = getattr(self.local, "calls", [])
        ids.append(self.journal.call_started(self.run_id, idx, host, script.template))
        self.local.calls = ids

    def call_finished(self, host: str, script: Script, result: Result | None, error: BaseException | None) -> None:
        ids: list[int] = getattr(self.local, "calls", [])
        if not ids:
            return
        outcome = "ok" if result is not None and result.ok else (type(error).__name__ if error else "error")
        self.journal.call_finished(ids.pop(), outcome)


def _error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, HvautoError):
        return exc.to_dict()
    return {"error": "InternalError", "message": f"internal error: {type(exc).__name__} (see the debug log)"}


def _normalise(step: Step, options: Mapping[str, Any], rb: Runbook) -> dict[str, Any]:
    """Rendered options, type-checked again (a rendered value may not fit) and paths resolved."""
    op = step.operation
    out: dict[str, Any] = {}
    problems: list[str] = []
    for k, v in options.items():
        if v == OMIT:
            continue
        opt = op.options[k]
        why = _type_ok(opt, v)
        if why:
            problems.append(f"{rb.where('steps', step.index, op.name, k)}: option {k!r}: {why}")
            continue
        if opt.type in ("str[]", "host[]") and isinstance(v, str):
            v = [v]
        if opt.type == "path":
            v = str(resolve_path(rb, v))
        out[k] = v
    if problems:
        raise ValidationError(problems, what="step options")
    return out


class Engine:
    def __init__(self, rb: Runbook, session: Session, journal: Journal, reporter: Reporter, *,
                 variables: Mapping[str, Any], check: bool = False, limit: list[str] | None = None,
                 forks: int | None = None) -> None:
        self.rb = rb
        self.session = session
        self.journal = journal
        self.reporter = reporter
        self.variables = dict(variables)
        self.check = check
        self.limit = list(limit or [])
        self.forks = forks
        self.run_id = 0

    # -- entry points --------------------------------------------------------------------------------
    def start(self, *, schedule: str | None = None, redacted: list[str] | None = None) -> RunSummary:
        """A new run. Variables named in ``redacted`` are journalled masked (resume asks for them again)."""
        masked = set(redacted or [])
        stored = {k: ("********" if k in masked else v) for k, v in self.variables.items()}
        self.run_id = self.journal.create_run(
            runbook=self.rb.name, path=str(self.rb.path.resolve()), text=self.rb.text, variables=stored,
            redacted=list(redacted or []), limits=self.limit, check_mode=self.check, forks=self.forks,
            inventory=str(self.session.inventory.path), schedule=schedule)
        self.reporter.run_started(self.run_id, self.rb, resumed=False, check=self.check)
        return self._execute()

    def resume(self, run_id: int) -> RunSummary:
        self.run_id = run_id
        self.journal.claim(run_id)
        self.reporter.run_started(run_id, self.rb, resumed=True, check=self.check)
        return self._execute()

    # -- the run -------------------------------------------------------------------------------------
    def _context(self, registered: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.variables, **registered, "inventory": inventory_view(self.session.inventory),
                "check_mode": self.check, "run": {"id": self.run_id}, "runbook": {"name": self.rb.name}, "omit": OMIT}

    def _hosts(self, step: Step, ctx: Mapping[str, Any], out: set[str]) -> list[str]:
        if not step.operation.fans_out:
            return [GLOBAL]
        spec = step.hosts if step.hosts is not None else self.rb.target
        rendered = templating.render(spec, ctx)
        hosts = self.session.inventory.resolve(_as_list(rendered))
        if self.limit:
            allowed = {h.lower() for h in self.session.inventory.resolve(self.limit)}
            hosts = [h for h in hosts if h.lower() in allowed]
        return [h for h in hosts if h not in out]

    def _execute(self) -> RunSummary:
        started = time.time()
        recorder = _CallRecorder(self.journal, self.run_id)
        self.session.observers.append(recorder)
        registered: dict[str, Any] = {}
        out: set[str] = set()  # hosts that failed a step and left the run
        outcomes: list[StepOutcome] = []
        state, message = "ok", ""
        try:
            for step in self.rb.steps:
                ctx = self._context(registered)
                try:
                    hosts = self._hosts(step, ctx, out)
                except HvautoError as exc:
                    outcome = StepOutcome(step, "failed", {GLOBAL: TaskOutcome(GLOBAL, "failed", error=exc.to_dict())})
                    outcomes.append(outcome)
                    state, message = "aborted", f"step {step.index + 1} ({step.name}): {exc.message}"
                    break
                self.journal.step_started(self.run_id, step.index, step.name, step.op, hosts)
                self.reporter.step_started(step, hosts, len(self.rb.steps))
                outcome = self._step(step, hosts, ctx, recorder)
                outcomes.append(outcome)
                self.journal.step_finished(self.run_id, step.index, outcome.state)
                if step.register:
                    registered[step.register] = self._registered(outcome)
                failed = [h for h, t in outcome.tasks.items() if t.state == "failed"]
                if failed and not step.continue_on_error:
                    ran = [h for h, t in outcome.tasks.items() if t.state != "skipped"]
                    if not step.operation.fans_out or len(failed) == len(ran):
                        state = "aborted"
                        message = f"step {step.index + 1} ({step.name}) failed on " + (
                            "every host" if step.operation.fans_out else "its only call")
                        break
                    out.update(failed)
                    state = "partial"
        except KeyboardInterrupt:
            state, message = "aborted", "interrupted"
            raise
        finally:
            self.session.observers.remove(recorder)
            summary = RunSummary(self.run_id, self.rb.name, state, self.check, outcomes, started, time.time(), message)
            self.journal.finish_run(self.run_id, state, summary.to_dict())
        self.reporter.run_finished(summary)
        return summary

    def _registered(self, outcome: StepOutcome) -> dict[str, Any]:
        tasks = outcome.tasks
        done = {h: t.result or {} for h, t in tasks.items() if t.state == "done"}
        reg: dict[str, Any] = {
            "changed": any(t.changed for t in tasks.values()),
            "ok": all(t.state != "failed" for t in tasks.values()),
            "failed": [h for h, t in tasks.items() if t.state == "failed"],
            "skipped": [h for h, t in tasks.items() if t.state == "skipped"],
            "hosts": {h: r for h, r in done.items() if h != GLOBAL},
        }
        if len(done) == 1:
            reg["result"] = next(iter(done.values()))
        return reg

    def _step(self, step: Step, hosts: list[str], ctx: Mapping[str, Any], recorder: _CallRecorder) -> StepOutcome:
        previous = {t.host: t for t in self.journal.tasks(self.run_id, step.index)}
        outcome = StepOutcome(step, "done")
        if not hosts:
            outcome.state = "skipped"
            return outcome
        forks = max(1, min(step.forks or self.forks or self.rb.forks, len(hosts)))

        def one(host: str) -> TaskOutcome:
            recorder.local.step = step.index
            recorder.local.calls = []
            try:
                return self._task(step, host, ctx, previous.get(host))
            finally:
                recorder.local.step = None

        with ThreadPoolExecutor(max_workers=forks, thread_name_prefix="hvauto-runbook") as pool:
            futures = {pool.submit(one, h): h for h in hosts}
            for fut in as_completed(futures):
                task = fut.result()
                outcome.tasks[task.host] = task
                self.reporter.task_finished(step, task)
        outcome.tasks = {h: outcome.tasks[h] for h in hosts}
        states = [t.state for t in outcome.tasks.values()]
        if all(s == "skipped" for s in states):
            outcome.state = "skipped"
        elif "failed" in states:
            ran = [s for s in states if s != "skipped"]
            outcome.state = "failed" if all(s == "failed" for s in ran) else "partial"
        return outcome

    def _task(self, step: Step, host: str, ctx: Mapping[str, Any], previous: TaskRecord | None) -> TaskOutcome:
        if previous is not None and previous.state in ("done", "skipped"):
            # Finished before: never again. Its result comes from the journal.
            return TaskOutcome(host, previous.state, result=previous.result, reused=True)
        started = time.monotonic()
        op = step.operation
        target = None if host == GLOBAL else host
        hctx = {**ctx, "host": target}
        try:
            if step.when is not None:
                cond = step.when if isinstance(step.when, bool) else templating.evaluate(str(step.when), hctx)
                if not cond:
                    result = {"changed": False, "skipped": "when is false"}
                    self.journal.task_finished(self.run_id, step.index, host, "skipped", result=result,
                                               inputs={"when": step.when})
                    return TaskOutcome(host, "skipped", result=result, elapsed=time.monotonic() - started)
            options = _normalise(step, templating.render(step.options, hctx), self.rb)
        except HvautoError as exc:
            self.journal.task_finished(self.run_id, step.index, host, "failed", error=exc.to_dict())
            return TaskOutcome(host, "failed", error=exc.to_dict(), elapsed=time.monotonic() - started)
        inputs = {**({"host": target} if target else {}), **options, "what_if": self.check and op.changes}
        self.journal.task_started(self.run_id, step.index, host, inputs)
        attempt = 0
        seen: dict[str, tuple[int, str]] = {}

        def progress(p: Any) -> None:
            # A line per quarter of each move (and per state change), not per poll.
            data = to_jsonable(p)
            if not isinstance(data, dict):
                return
            key = str(data.get("vm") or "")
            mark = (int(data.get("percent") or 0) // 25, str(data.get("state") or ""))
            if seen.get(key) != mark:
                seen[key] = mark
                self.reporter.task_progress(step, host, data)

        while True:
            attempt += 1
            try:
                result = op.invoke(self.session, target, options, what_if=self.check and op.changes,
                                   on_progress=progress)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded; bugs go to the debug log
                if not isinstance(exc, HvautoError):
                    log.debug("%s on %s: unexpected error", step.name, host, exc_info=True)
                retry = isinstance(exc, HvautoError) and not isinstance(exc, NOT_RETRYABLE)
                if retry and attempt <= step.retries:
                    log.info("%s on %s: attempt %d failed (%s); retrying", step.name, host, attempt, exc)
                    time.sleep(step.retry_delay)
                    continue
                error = _error_dict(exc)
                self.journal.task_finished(self.run_id, step.index, host, "failed", error=error)
                return TaskOutcome(host, "failed", error=error, elapsed=time.monotonic() - started)
            self.journal.task_finished(self.run_id, step.index, host, "done", result=result)
            return TaskOutcome(host, "done", result=result, elapsed=time.monotonic() - started)
