"""Every non-idempotent runbook operation, killed (SIGKILL) at a random moment, resumes to completion.

Each case runs a one-step runbook in a fresh lab, kills it after a random delay (before the step, while
its script runs, after the host answered but before the journal heard it, after the end), and then
runs `runbook resume` (or the run again, when the kill came before the run was journalled). The resume
must end ok (never aborted), the change must be there, and it must not have been made twice. The
non-slow suite kills each operation a few times; `-m slow` does it KILLS times each (5, to keep the whole
suite within its ten minutes; `RESUME_KILLS=20 pytest -m slow tests/test_resume_kills.py` for the full audit).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hvauto.hyperv import ACTIVE_JOB_STATES, MOVE_JOB_TYPES

from .conftest import Lab, hv

ROOT = Path(__file__).resolve().parent.parent
FABRIC = str(ROOT / "playbooks" / "fabric-converged.yaml")


@dataclass(frozen=True)
class Case:
    runbook: str
    #: The template that makes the change: it may run at most once per run (a resume never repeats it).
    template: str
    done: Callable[[Lab], bool]
    #: Set-up in the fresh lab (a speed, a delay to widen the window, an object to act on).
    prepare: Callable[[Lab], None] = lambda lab: None
    #: Upper end of the random kill delay, in seconds (interpreter start-up is part of the window).
    window: float = 2.0
    #: Speed the lab up for the resume (a move that must still be running when it resumes is not).
    fast_resume: bool = True


def _speed(scale: float, *, delay_on: tuple[str, ...] = ()) -> Callable[[Lab], None]:
    def prepare(lab: Lab) -> None:
        with lab.store.transaction() as est:
            est.set_meta("time_scale", str(scale))
        for host in delay_on:
            hv("lab", "fault", host, "--delay", "0.3")

    return prepare


def _vm(lab: Lab, name: str) -> dict[str, object]:
    with lab.store.transaction() as est:
        return next(v for v in est.all("vm") if v["name"] == name)


def _switch(lab: Lab, host: str, name: str) -> bool:
    return name in {s["name"] for s in hv("switch", "list", host, "-o", "json").json()["switches"]}


#: Kills per operation under -m slow.
KILLS = int(os.environ.get("RESUME_KILLS", "5"))

CASES: dict[str, Case] = {
    "storage.move": Case(
        "steps:\n  - storage.move: {vm: vm02, path: 'C:\\VMs\\vm02'}\n", "storage_move_start",
        lambda lab: all(str(d["path"]).startswith("C:\\VMs\\vm02\\") for d in _vm(lab, "vm02")["disks"]),  # type: ignore[attr-defined]
        _speed(4), 4.0),
    "migrate": Case(
        "steps:\n  - migrate: {vm: vm01, dest: hostB}\n", "migrate_start",
        lambda lab: _vm(lab, "vm01")["host"] == "hostB", _speed(4), 4.0),
    "smb.share": Case(
        "steps:\n  - smb.share: {name: VMs, server: fs01, path: 'D:\\Shares\\VMs', hosts: [hostA, hostB]}\n",
        "smb_share_apply",
        lambda lab: hv("smb", "share", "show", "VMs", "--server", "fs01").code == 0,
        _speed(1, delay_on=("fs01", "dc01")), 2.5),
    "delegation.grant": Case(
        "steps:\n  - delegation.grant: {source: hostB, to: hostA}\n", "ad_delegation_set",
        lambda lab: "hostA" in hv("delegation", "show", "hostB").out, _speed(1, delay_on=("dc01",)), 2.0),
    "fabric.apply": Case(
        f"steps:\n  - fabric.apply: {{spec: '{FABRIC}'}}\n    hosts: hostA\n", "fabric_apply",
        lambda lab: not any(h["changed"] for h in hv("fabric", "plan", "hostA", "--spec", FABRIC, "-o", "json")
                            .json()["hosts"].values()), _speed(1, delay_on=("hostA",)), 2.5),
    "switch.create": Case(
        "steps:\n  - switch.create: {name: Lab, type: private}\n    hosts: hostA\n", "switch_create",
        lambda lab: _switch(lab, "hostA", "Lab"), _speed(1, delay_on=("hostA",)), 2.0),
    "switch.remove": Case(
        "steps:\n  - switch.remove: {name: Lab}\n    hosts: hostA\n", "switch_remove",
        lambda lab: not _switch(lab, "hostA", "Lab"),
        lambda lab: (hv("switch", "create", "hostA", "Lab", "-t", "private"), _speed(1, delay_on=("hostA",))(lab))
        and None, 2.0),
    "smb.grant": Case(
        "steps:\n  - smb.grant: {name: VMs, server: fs01, hosts: [hostB], no_delegation: true}\n", "smb_share_apply",
        lambda lab: "LAB\\hostB$" in {a["account"] for a in hv("smb", "share", "show", "-o", "json", "VMs",
                                                                "--server", "fs01").json()["share_acl"]},
        lambda lab: (_share(lab, "hostA"), _speed(1, delay_on=("fs01",))(lab)) and None, 2.0),
    "smb.revoke": Case(
        "steps:\n  - smb.revoke: {name: VMs, server: fs01, hosts: [hostB]}\n", "smb_share_apply",
        lambda lab: "LAB\\hostB$" not in {a["account"] for a in hv("smb", "share", "show", "-o", "json", "VMs",
                                                                    "--server", "fs01").json()["share_acl"]},
        lambda lab: (_share(lab, "hostA,hostB"), _speed(1, delay_on=("fs01",))(lab)) and None, 2.0),
    "smb.remove": Case(
        "steps:\n  - smb.remove: {name: VMs, server: fs01}\n", "smb_share_remove",
        lambda lab: hv("smb", "share", "show", "VMs", "--server", "fs01").code == 4,
        lambda lab: (_share(lab, "hostA"), _speed(1, delay_on=("fs01",))(lab)) and None, 2.0),
    "delegation.revoke": Case(
        "steps:\n  - delegation.revoke: {source: hostA, to: hostB}\n", "ad_delegation_set",
        lambda lab: "/hostB" not in hv("delegation", "show", "hostA").out, _speed(1, delay_on=("dc01",)), 2.0),
    "migrate.cancel": Case(
        "steps:\n  - migrate.cancel: {vm: vm01}\n", "migrate_start",
        lambda lab: _cancelled(lab), lambda lab: _moving(lab), 2.0, fast_resume=False),
    "host.migration": Case(
        "steps:\n  - host.migration: {max_vm: 5}\n    hosts: hostA\n", "host_migration_set",
        lambda lab: hv("host", "show", "-o", "json", "hostA").json()["migration"]["max_vm_migrations"] == 5,
        _speed(1, delay_on=("hostA",)), 2.0),
}


MOVERS: list[subprocess.Popen[bytes]] = []


def _moving(lab: Lab) -> None:
    """A move of vm01 to hostB, started by another process and slow enough to be cancelled."""
    with lab.store.transaction() as est:
        est.set_meta("time_scale", "0.2")
    MOVERS.append(subprocess.Popen([sys.executable, "-m", "hvauto", "migrate", "--shared-nothing", "vm01", "hostB",
                                    "--poll-interval", "0.2"], cwd=lab.dir, env=_env(lab.dir / ".mover"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 30
    while not _running_jobs(lab):
        assert time.monotonic() < deadline and MOVERS[-1].poll() is None, "the move never started"
        time.sleep(0.05)


def _running_jobs(lab: Lab) -> list[dict[str, object]]:
    with lab.store.transaction() as est:
        return [j for j in est.all("migration_job") if int(j.get("state") or 0) in ACTIVE_JOB_STATES
                and int(j.get("job_type") or 0) in MOVE_JOB_TYPES]


def _cancelled(lab: Lab) -> bool:
    for proc in MOVERS:
        proc.wait(timeout=60)
    MOVERS.clear()
    with lab.store.transaction() as est:
        planned = est.all("planned_vm")
    assert (_vm(lab, "vm01")["host"], _running_jobs(lab), planned) == ("hostA", [], [])
    return True


def _share(lab: Lab, hosts: str) -> None:
    res = hv("smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs", "--hosts", hosts,
             "--no-delegation")
    assert res.code == 0, res.err


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVAUTO_")}
    env.update(PYTHONPATH=str(ROOT), HVAUTO_STATE_DIR=str(state), HVAUTO_CONFIG_DIR=str(state / "config"),
               HVAUTO_LOG_DIR=str(state / "logs"), HVAUTO_POLL_INTERVAL="0.05")
    return env


def _runs(state: Path) -> list[tuple[int, str]]:
    if not (state / "journal.db").exists():
        return []
    conn = sqlite3.connect(state / "journal.db", timeout=5)
    try:
        return [(int(r[0]), str(r[1])) for r in conn.execute("SELECT id, state FROM runs ORDER BY id")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _ran(lab: Lab, template: str) -> int:
    return sum(n for _, t, outcome, n in lab.store.call_counts() if t == template and outcome == "ok")


def kill_and_resume(lab: Lab, case: Case, rng: random.Random, tmp: Path) -> None:
    state = tmp / "state"
    (lab.dir / "rb.yml").write_text("name: killed\n" + textwrap.dedent(case.runbook))
    case.prepare(lab)
    before = _ran(lab, case.template)
    env = _env(state)
    proc = subprocess.Popen([sys.executable, "-m", "hvauto", "runbook", "run", "rb.yml"], cwd=lab.dir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=rng.uniform(0.3, case.window))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    hv("lab", "fault", "fs01", "--clear"), hv("lab", "fault", "dc01", "--clear"), hv("lab", "fault", "hostA", "--clear")
    if case.fast_resume:
        with lab.store.transaction() as est:
            est.set_meta("time_scale", "200")
    runs = _runs(state)
    argv = ["runbook", "resume", str(runs[0][0])] if runs else ["runbook", "run", "rb.yml"]
    if runs and runs[0][1] == "ok":
        argv = []
    if argv:
        done = subprocess.run([sys.executable, "-m", "hvauto", *argv], cwd=lab.dir, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    assert _runs(state)[0][1] == "ok"
    assert case.done(lab)
    ran = _ran(lab, case.template) - before
    assert ran <= 1, f"{case.template} ran {ran} times"


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("op", sorted(CASES))
def test_killed_at_a_random_moment_resumes_ok(lab: Lab, tmp_path: Path, op: str, seed: int) -> None:
    kill_and_resume(lab, CASES[op], random.Random(f"{op}-{seed}"), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("op", sorted(CASES))
def test_twenty_kills_each_none_aborted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    from hvauto.lab import setup

    rng = random.Random(op)
    for i in range(KILLS):
        paths = setup.init(tmp_path / f"lab{i}")
        monkeypatch.chdir(tmp_path / f"lab{i}")
        kill_and_resume(Lab(tmp_path / f"lab{i}", paths), CASES[op], rng, tmp_path / f"run{i}")
