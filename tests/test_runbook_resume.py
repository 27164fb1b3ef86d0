"""A run killed with SIGKILL mid-step resumes to completion without repeating finished work
(the lab counts every call); two runs of one runbook never overlap."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv

ROOT = Path(__file__).resolve().parent.parent

SLOW = """
name: slow fan-out
steps:
  - name: list
    vm.list: {}
    hosts: [hostA, hostB]
  - name: facts, one host at a time
    host.facts: {}
    hosts: [dc01, fs01, hostA, hostB]
    forks: 1
  - name: list again
    vm.list: {}
    hosts: hostB
"""


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(state))
    return state


def spawn(lab: Lab, state: Path, *argv: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVAUTO_")}
    env.update(PYTHONPATH=str(ROOT), HVAUTO_STATE_DIR=str(state), HVAUTO_CONFIG_DIR=str(state / "config"),
               HVAUTO_LOG_DIR=str(state / "logs"))
    return subprocess.Popen([sys.executable, "-m", "hvauto", *argv], cwd=lab.dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_task(state: Path, idx: int, host: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if (state / "journal.db").exists():
            conn = sqlite3.connect(state / "journal.db", timeout=5)
            try:
                row = conn.execute("SELECT state FROM tasks WHERE idx=? AND host=?", (idx, host)).fetchone()
            except sqlite3.OperationalError:
                row = None
            finally:
                conn.close()
            if row and row[0] == "running":
                return
        time.sleep(0.01)
    raise AssertionError(f"step {idx} never started on {host}")


def test_sigkill_mid_step_resumes_without_repeating_finished_work(lab: Lab, _state: Path) -> None:
    (lab.dir / "slow.yml").write_text(textwrap.dedent(SLOW).lstrip())
    hv("lab", "fault", "fs01", "--delay", "1.5")
    proc = spawn(lab, _state, "runbook", "run", "slow.yml")
    try:
        # Step 2 runs one host at a time: dc01 is done, fs01 is in flight (sleeping in the delay).
        wait_for_task(_state, 1, "fs01", proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(_state / "journal.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    hist = hv("runbook", "history", "-o", "json").json()["runs"]
    assert [(r["run"], r["state"]) for r in hist] == [(1, "interrupted")]
    before = {(h, t): lab.calls(host=h, template=t) for h in ("dc01", "fs01", "hostA", "hostB")
              for t in ("vm_list", "host_facts")}
    assert before[("dc01", "host_facts")] == 1
    assert before[("fs01", "host_facts")] == 0  # killed before the host answered

    res = hv("runbook", "resume", "1")
    assert res.code == 0, res.err
    assert "(done before)" in res.err
    calls = {(h, t): lab.calls(host=h, template=t) for h in ("dc01", "fs01", "hostA", "hostB")
             for t in ("vm_list", "host_facts")}
    assert calls == {
        ("dc01", "vm_list"): 0, ("dc01", "host_facts"): 1,     # finished before the kill: not again
        ("fs01", "vm_list"): 0, ("fs01", "host_facts"): 1,     # in flight: re-inspected once
        ("hostA", "vm_list"): 1, ("hostA", "host_facts"): 1,
        ("hostB", "vm_list"): 2, ("hostB", "host_facts"): 1,   # step 1 (before) and step 3 (after)
    }
    shown = hv("runbook", "show", "1", "-o", "json").json()
    assert shown["state"] == "ok"
    assert shown["resumes"] == 1
    states = {(s["step"] - 1, t["host"]): (t["state"], t["attempts"]) for s in shown["steps"] for t in s["tasks"]}
    assert states == {
        (0, "hostA"): ("done", 1), (0, "hostB"): ("done", 1),
        (1, "dc01"): ("done", 1), (1, "fs01"): ("done", 2), (1, "hostA"): ("done", 1), (1, "hostB"): ("done", 1),
        (2, "hostB"): ("done", 1),
    }
    again = hv("runbook", "resume", "1")
    assert again.code == 0
    assert "nothing to resume" in again.out


def test_a_second_run_of_the_same_runbook_exits_at_once(lab: Lab, _state: Path) -> None:
    (lab.dir / "slow.yml").write_text(textwrap.dedent(SLOW).lstrip())
    hv("lab", "fault", "fs01", "--delay", "2.5")
    proc = spawn(lab, _state, "runbook", "run", "slow.yml")
    try:
        wait_for_task(_state, 1, "fs01", proc)
        started = time.monotonic()
        res = hv("runbook", "run", "slow.yml")
        assert time.monotonic() - started < 1.5  # at once: it does not wait for the lock
        assert res.code == ExitCode.LOCKED
        assert f"is already running (pid {proc.pid}" in res.err
        assert "this run did nothing" in res.err
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert hv("runbook", "history", "-o", "json").json()["runs"][0]["state"] == "ok"
    assert len(hv("runbook", "history", "-o", "json").json()["runs"]) == 1


MIGRATION = """
name: move vm01
steps:
  - name: facts
    host.facts: {}
    hosts: [hostA, hostB]
  - name: move
    migrate:
      vm: vm01
      dest: hostB
  - name: where it is now
    vm.list: {}
    hosts: hostB
    register: after
"""


def test_sigkill_while_a_migration_runs_resumes_by_watching_it_not_starting_another(
        lab: Lab, _state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (lab.dir / "move.yml").write_text(textwrap.dedent(MIGRATION).lstrip())
    with lab.store.transaction() as est:
        est.set_meta("time_scale", "2")  # the move takes a few seconds: long enough to be killed in
    proc = spawn(lab, _state, "runbook", "run", "move.yml")
    try:
        wait_for_task(_state, 1, "-", proc)
        deadline = time.monotonic() + 30
        while lab.calls(template="migrate_start") == 0:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    with lab.store.transaction() as est:
        est.set_meta("time_scale", "200")
    monkeypatch.setenv("HVAUTO_POLL_INTERVAL", "0.01")
    res = hv("runbook", "resume", "1")
    assert res.code == 0, res.err
    assert lab.calls(template="migrate_start") == 1  # re-inspected and watched, never started twice
    shown = hv("runbook", "show", "1", "-o", "json").json()
    steps = {s["step"] - 1: s["tasks"] for s in shown["steps"]}
    assert [(t["host"], t["state"], t["attempts"]) for t in steps[0]] == [("hostA", "done", 1), ("hostB", "done", 1)]
    assert [(t["state"], t["attempts"]) for t in steps[1]] == [("done", 2)]
    assert [v["name"] for v in steps[2][0]["result"]["vms"]] == ["vm01"]
    result = steps[1][0]["result"]
    assert result["resumed"] or result["already_done"], result
    # The finished facts step made its two calls before the kill and none after.
    assert sorted(c["host"] for c in shown["calls"] if c["step"] == 0) == ["hostA", "hostB"]


KILLABLE = """
name: killable
target: [dc01, fs01, hostA, hostB]
forks: 2
steps:
  - host.facts: {}
  - vm.list: {}
    hosts: [hostA, hostB]
  - switch.list: {}
    hosts: [hostA, hostB]
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_at_random_moments_the_journal_stays_consistent_and_resumes(lab: Lab, _state: Path,
                                                                            seed: int) -> None:
    import random

    rng = random.Random(seed)
    (lab.dir / "k.yml").write_text(textwrap.dedent(KILLABLE).lstrip())
    for host in ("dc01", "fs01", "hostA", "hostB"):
        hv("lab", "fault", host, "--delay", "0.4")
    argv = ["runbook", "run", "k.yml"]
    for _ in range(6):
        proc = spawn(lab, _state, *argv)
        time.sleep(rng.uniform(0.4, 1.4))  # interpreter start-up is part of the window
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        conn = sqlite3.connect(_state / "journal.db") if (_state / "journal.db").exists() else None
        if conn is None:
            continue
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        states = {r[0] for r in conn.execute("SELECT state FROM tasks")}
        run = conn.execute("SELECT id, state FROM runs ORDER BY id").fetchall()
        conn.close()
        assert states <= {"pending", "running", "done"}
        assert len(run) <= 1
        if run and run[0][1] == "ok":
            break
        if run:
            argv = ["runbook", "resume", str(run[0][0])]
    else:
        # Whatever the last kill left, one more resume (or the first run) completes it.
        finish = hv(*argv)
        assert finish.code == 0, finish.err
    shown = hv("runbook", "show", "1", "-o", "json").json()
    assert shown["state"] == "ok"
    templates = {0: "host_facts", 1: "vm_list", 2: "switch_list"}
    for step in shown["steps"]:
        for t in step["tasks"]:
            assert t["state"] == "done"
            calls = lab.calls(host=t["host"], template=templates[step["step"] - 1])
            # Each attempt calls the host at most once; a task finished before a kill never ran again.
            assert 1 <= calls <= t["attempts"], (step["step"] - 1, t)
