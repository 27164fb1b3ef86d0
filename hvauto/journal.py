"""The run journal: every runbook run, step and host, in SQLite, so a killed run can resume.

Where: ``$HVAUTO_JOURNAL``, else the inventory's ``[settings] journal = "..."`` (relative to the
inventory), else ``journal.db`` in the user's state directory (``$HVAUTO_STATE_DIR``, else
``$XDG_STATE_HOME/hvauto``, else ``~/.local/state/hvauto``).

Every change is one short transaction (WAL, ``synchronous=FULL``): a process killed at any
instant, ``kill -9`` included, leaves each step x host row in exactly one state, ``pending``,
``running``, ``done``, ``failed`` or ``skipped``. Resuming re-runs what is not ``done`` or
``skipped``; a ``running`` row is the step that was in flight, and operations inspect before
they act, so running it again is safe.

Secrets never reach the file: inputs and results pass through :class:`Redactor` (keys that
look like password/secret/token, and any known secret value wherever it appears).
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvauto.errors import ConfigError, NotFoundError
from hvauto.inventory import Inventory

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    runbook TEXT NOT NULL,
    path TEXT NOT NULL,
    text TEXT NOT NULL,
    vars TEXT NOT NULL,
    redacted TEXT NOT NULL,
    limits TEXT NOT NULL,
    check_mode INTEGER NOT NULL,
    forks INTEGER,
    inventory TEXT NOT NULL,
    schedule TEXT,
    state TEXT NOT NULL,
    pid INTEGER,
    hostname TEXT,
    started REAL NOT NULL,
    finished REAL,
    resumes INTEGER NOT NULL DEFAULT 0,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    op TEXT NOT NULL,
    state TEXT NOT NULL,
    hosts TEXT NOT NULL,
    started REAL,
    finished REAL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL,
    inputs TEXT,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    PRIMARY KEY (run_id, idx, host)
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    host TEXT NOT NULL,
    template TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    outcome TEXT
);
"""

TASK_STATES = ("pending", "running", "done", "failed", "skipped")
RUN_STATES = ("running", "ok", "partial", "aborted", "failed")
MASK = "********"
_SECRET_KEY = re.compile(r"pass(word|wd|phrase)?$|password|secret|token|credential|api_?key|private_?key", re.I)


def state_dir() -> Path:
    explicit = os.environ.get("HVAUTO_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME")
    return (Path(base) if base else Path.home() / ".local" / "state") / "hvauto"


def journal_path(inventory: Inventory | None) -> Path:
    env = os.environ.get("HVAUTO_JOURNAL")
    if env:
        return Path(env)
    if inventory is not None:
        value = inventory.settings.get("journal")
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ConfigError("expected a file path", path=str(inventory.path), key="settings.journal")
            p = Path(value).expanduser()
            return p if p.is_absolute() else inventory.base_dir / p
    return state_dir() / "journal.db"


def secret_key(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


class Redactor:
    """Masks secrets: values under secret-looking keys, and known secret values anywhere."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = {s for s in secrets if s and len(s) >= 4}
        env = os.environ.get("HVAUTO_PASSWORD")
        if env:
            self.secrets.add(env)

    def add(self, value: str) -> None:
        if value and len(value) >= 4:
            self.secrets.add(value)

    def text(self, value: str) -> str:
        for s in sorted(self.secrets, key=len, reverse=True):
            if s in value:
                value = value.replace(s, MASK)
        return value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): (MASK if secret_key(str(k)) and v not in (None, "") else self(v)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


@dataclass
class RunRecord:
    id: int
    runbook: str
    path: str
    text: str
    vars: dict[str, Any]
    redacted: list[str]
    limits: list[str]
    check_mode: bool
    forks: int | None
    inventory: str
    schedule: str | None
    state: str
    pid: int | None
    hostname: str | None
    started: float
    finished: float | None
    resumes: int
    summary: dict[str, Any] | None

    @property
    def alive(self) -> bool:
        """Whether the process that runs it is still there (this machine only)."""
        if self.state != "running" or not self.pid or self.hostname != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def display_state(self) -> str:
        return "interrupted" if self.state == "running" and not self.alive else self.state


@dataclass
class TaskRecord:
    idx: int
    host: str
    state: str
    inputs: Any
    result: Any
    error: Any
    attempts: int
    started: float | None
    finished: float | None


@dataclass
class StepRecord:
    idx: int
    name: str
    op: str
    state: str
    hosts: list[str]
    started: float | None
    finished: float | None


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


class Journal:
    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = path
        self.redact = redactor or Redactor()
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed state change survives a crash of the process or the machine.
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the run journal: {exc}", path=str(path),
                              hint="set HVAUTO_JOURNAL or [settings] journal in the inventory") from None
        os.chmod(path, 0o600)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def _json(self, value: Any) -> str:
        return self.redact.text(json.dumps(self.redact(value), sort_keys=True, default=str))

    def _write(self, sql: str, args: Iterable[Any]) -> sqlite3.Cursor:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self.conn.execute(sql, tuple(args))
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return cur

    # -- runs ----------------------------------------------------------------------------------------
    def create_run(self, *, runbook: str, path: str, text: str, variables: Mapping[str, Any], redacted: list[str],
                   limits: list[str], check_mode: bool, forks: int | None, inventory: str,
                   schedule: str | None = None) -> int:
        cur = self._write(
            "INSERT INTO runs (runbook, path, text, vars, redacted, limits, check_mode, forks, inventory, schedule,"
            " state, pid, hostname, started) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (runbook, path, self.redact.text(text), self._json(variables), json.dumps(redacted), json.dumps(limits),
             int(check_mode), forks, inventory, schedule, "running", os.getpid(), socket.gethostname(), time.time()))
        return int(cur.lastrowid or 0)

    def claim(self, run_id: int) -> None:
        """This process takes the run over (resume)."""
        self._write("UPDATE runs SET state='running', pid=?, hostname=?, finished=NULL, resumes=resumes+1 WHERE id=?",
                    (os.getpid(), socket.gethostname(), run_id))

    def finish_run(self, run_id: int, state: str, summary: Mapping[str, Any]) -> None:
        assert state in RUN_STATES
        self._write("UPDATE runs SET state=?, finished=?, summary=? WHERE id=?",
                    (state, time.time(), self._json(summary), run_id))

    def _run(self, row: tuple[Any, ...]) -> RunRecord:
        return RunRecord(
            id=row[0], runbook=row[1], path=row[2], text=row[3], vars=json.loads(row[4]), redacted=json.loads(row[5]),
            limits=json.loads(row[6]), check_mode=bool(row[7]), forks=row[8], inventory=row[9], schedule=row[10],
            state=row[11], pid=row[12], hostname=row[13], started=row[14], finished=row[15], resumes=row[16],
            summary=_loads(row[17]))

    _RUN_COLS = ("id, runbook, path, text, vars, redacted, limits, check_mode, forks, inventory, schedule, state, pid,"
                 " hostname, started, finished, resumes, summary")

    def run(self, run_id: int) -> RunRecord:
        row = None
        if 0 < run_id < 2**63:  # SQLite's integers are 64-bit: a larger number is no run (not an OverflowError)
            with self._lock:
                row = self.conn.execute(f"SELECT {self._RUN_COLS} FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no run {run_id} in the journal ({self.path})",
                                hint="`hvauto runbook history` lists the runs")
        return self._run(row)

    def runs(self, limit: int = 20, runbook: str | None = None, schedule: str | None = None) -> list[RunRecord]:
        sql = f"SELECT {self._RUN_COLS} FROM runs WHERE 1=1"
        args: list[Any] = []
        if runbook:
            sql += " AND runbook=?"
            args.append(runbook)
        if schedule:
            sql += " AND schedule=?"
            args.append(schedule)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self.conn.execute(sql, args).fetchall()
        return [self._run(r) for r in rows]

    # -- steps and tasks -----------------------------------------------------------------------------
    def step_started(self, run_id: int, idx: int, name: str, op: str, hosts: list[str]) -> None:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT INTO steps (run_id, idx, name, op, state, hosts, started) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (run_id, idx) DO UPDATE SET state='running', hosts=excluded.hosts, finished=NULL",
                (run_id, idx, name, op, "running", json.dumps(hosts), time.time()))
            for h in hosts:
                self.conn.execute("INSERT OR IGNORE INTO tasks (run_id, idx, host, state) VALUES (?,?,?,'pending')",
                                  (run_id, idx, h))
            self.conn.execute("COMMIT")

    def step_finished(self, run_id: int, idx: int, state: str) -> None:
        self._write("UPDATE steps SET state=?, finished=? WHERE run_id=? AND idx=?", (state, time.time(), run_id, idx))

    def task_started(self, run_id: int, idx: int, host: str, inputs: Mapping[str, Any]) -> None:
        self._write("UPDATE tasks SET state='running', inputs=?, attempts=attempts+1, started=?, finished=NULL, "
                    "error=NULL WHERE run_id=? AND idx=? AND host=?",
                    (self._json(inputs), time.time(), run_id, idx, host))

    def task_finished(self, run_id: int, idx: int, host: str, state: str, *, result: Any = None,
                      error: Any = None, inputs: Mapping[str, Any] | None = None) -> None:
        assert state in TASK_STATES
        sets = "state=?, result=?, error=?, finished=?"
        args: list[Any] = [state, None if result is None else self._json(result),
                           None if error is None else self._json(error), time.time()]
        if inputs is not None:
            sets += ", inputs=?"
            args.append(self._json(inputs))
        self._write(f"UPDATE tasks SET {sets} WHERE run_id=? AND idx=? AND host=?", (*args, run_id, idx, host))

    def steps(self, run_id: int) -> list[StepRecord]:
        with self._lock:
            rows = self.conn.execute("SELECT idx, name, op, state, hosts, started, finished FROM steps WHERE run_id=? "
                                     "ORDER BY idx", (run_id,)).fetchall()
        return [StepRecord(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    def tasks(self, run_id: int, idx: int | None = None) -> list[TaskRecord]:
        sql = ("SELECT idx, host, state, inputs, result, error, attempts, started, finished FROM tasks WHERE run_id=?")
        args: list[Any] = [run_id]
        if idx is not None:
            sql += " AND idx=?"
            args.append(idx)
        with self._lock:
            rows = self.conn.execute(sql + " ORDER BY idx, rowid", args).fetchall()
        return [TaskRecord(r[0], r[1], r[2], _loads(r[3]), _loads(r[4]), _loads(r[5]), r[6], r[7], r[8]) for r in rows]

    # -- remote calls (the session's observer) -------------------------------------------------------
    def call_started(self, run_id: int, idx: int, host: str, template: str) -> int:
        cur = self._write("INSERT INTO calls (run_id, idx, host, template, started) VALUES (?,?,?,?,?)",
                          (run_id, idx, host, template, time.time()))
        return int(cur.lastrowid or 0)

    def call_finished(self, call_id: int, outcome: str) -> None:
        self._write("UPDATE calls SET finished=?, outcome=? WHERE id=?", (time.time(), outcome, call_id))

    def calls(self, run_id: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.conn.execute("SELECT idx, host, template, started, finished, outcome FROM calls "
                                     "WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
        return [{"step": r[0], "host": r[1], "template": r[2], "started": r[3], "finished": r[4], "outcome": r[5]}
                for r in rows]
