"""Schedules: a systemd unit pair systemd-analyze accepts (or a valid crontab line), a run that
never overlaps another of the same runbook, JSON-line logs, and an on-failure hook."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv
from .test_runbook_resume import wait_for_task

RUNBOOK = """
name: nightly report
vars:
  names: []
target: [hostA, hostB]
steps:
  - name: facts
    host.facts: {}
  - name: list
    vm.list:
      name: "{{ names }}"
"""

#: One cron field: *, numbers, ranges, lists and steps (what `crontab` accepts, without names).
CRON_FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"
CRON_LINE = re.compile(rf"^{CRON_FIELD}( {CRON_FIELD}){{4}} \S.*$")


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(state))
    monkeypatch.setenv("HVAUTO_SYSTEMD_DIR", str(tmp_path / "units"))
    monkeypatch.setenv("HVAUTO_CRONTAB_FILE", str(tmp_path / "crontab"))
    return state


@pytest.fixture
def runbook(lab: Lab) -> Path:
    path = lab.dir / "nightly.yml"
    path.write_text(textwrap.dedent(RUNBOOK).lstrip())
    return path


def units_of(tmp_path: Path, name: str) -> tuple[Path, Path]:
    return tmp_path / "units" / f"hvauto-{name}.service", tmp_path / "units" / f"hvauto-{name}.timer"


def parse_unit(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(path.read_text())
    return cp


@pytest.mark.parametrize(("at", "calendar"), [
    ("Mon..Fri 02:00", "Mon..Fri *-*-* 02:00:00"),
    ("0 2 * * 1-5", "Mon..Fri *-*-* 02:00:00"),
    ("daily", "*-*-* 00:00:00"),
    ("*/15 * * * *", "*-*-* *:00/15:00"),
])
def test_systemd_unit_pair(lab: Lab, runbook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           at: str, calendar: str) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "systemd")
    res = hv("schedule", "add", "nightly", "--runbook", "nightly.yml", "--at", at, "--var", "names=[vm01]")
    assert res.code == 0, res.err
    service, timer = units_of(tmp_path, "nightly")
    svc, tmr = parse_unit(service), parse_unit(timer)
    assert svc["Service"]["Type"] == "oneshot"
    exec_start = svc["Service"]["ExecStart"]
    assert exec_start.endswith("schedule run nightly")
    assert exec_start.split()[0] == sys.executable
    assert "vm01" not in service.read_text()  # variables live in the schedule file, not on a command line
    assert svc["Service"]["EnvironmentFile"].startswith("-")
    if shutil.which("systemd-analyze") is None:
        assert tmr["Timer"]["OnCalendar"]
    else:
        assert tmr["Timer"]["OnCalendar"] == calendar
    assert tmr["Timer"]["Unit"] == "hvauto-nightly.service"
    assert tmr["Timer"]["Persistent"] == "true"
    assert tmr["Install"]["WantedBy"] == "timers.target"
    assert lab.calls() == 0
    if shutil.which("systemd-analyze"):
        done = subprocess.run(["systemd-analyze", "verify", str(timer), str(service)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr


def test_systemd_analyze_rejects_a_broken_unit_so_the_check_above_means_something(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    (tmp_path / "x.service").write_text("[Service]\nType=oneshot\nExecStart=relative/path\n")
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "x.service")], capture_output=True, check=False)
    assert done.returncode != 0


@pytest.mark.parametrize(("at", "fields"), [
    ("0 2 * * 1-5", "0 2 * * 1-5"),
    ("Mon..Fri 02:00", "0 2 * * 1-5"),
    ("@daily", "0 0 * * *"),
    ("Sat,Sun *-*-* 03:30:00", "30 3 * * 6,0"),
])
def test_crontab_line_without_systemd(lab: Lab, runbook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      at: str, fields: str) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    crontab = tmp_path / "crontab"
    crontab.write_text("MAILTO=ops@example.test\n15 1 * * * /usr/local/bin/backup\n")
    res = hv("schedule", "add", "nightly", "--runbook", "nightly.yml", "--at", at)
    assert res.code == 0, res.err
    lines = crontab.read_text().splitlines()
    assert lines[:2] == ["MAILTO=ops@example.test", "15 1 * * * /usr/local/bin/backup"]
    (ours,) = lines[2:]
    assert CRON_LINE.match(ours), ours
    assert ours.startswith(fields + " ")
    assert "schedule run nightly" in ours
    assert ours.endswith("# hvauto schedule nightly")
    assert not units_of(tmp_path, "nightly")[0].exists()
    assert hv("schedule", "remove", "nightly").code == 0
    assert crontab.read_text().splitlines() == lines[:2]


@pytest.mark.parametrize(("argv", "needle"), [
    (["--at", "every full moon"], "not a systemd calendar expression"),
    (["--at", "61 2 * * *"], "minute 61 is out of range"),
    (["--at", "daily", "--var", "admin_password=hunter22"], "secrets do not belong in a schedule"),
    (["--at", "daily", "--var", "names=[vm01]", "--limit", "hostQ"], "unknown host or group 'hostQ'"),
])
def test_bad_schedules_are_refused(lab: Lab, runbook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   argv: list[str], needle: str) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "systemd")
    if "every full moon" in argv and shutil.which("systemd-analyze") is None:
        pytest.skip("calendar expressions are checked by systemd-analyze")
    res = hv("schedule", "add", "nightly", "--runbook", "nightly.yml", *argv)
    assert res.code == ExitCode.USAGE, res.err
    assert needle in res.err
    assert not units_of(tmp_path, "nightly")[0].exists()
    assert "hunter22" not in res.err + res.out
    assert lab.calls() == 0


def test_scheduled_run_logs_json_lines_and_is_listed(lab: Lab, runbook: Path, _env: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    assert hv("schedule", "add", "nightly", "--runbook", "nightly.yml", "--at", "daily", "--var",
              "names=[vm02]").code == 0
    res = hv("schedule", "run", "nightly")
    assert res.code == 0, res.err
    log = [json.loads(line) for line in (_env / "logs" / "schedule-nightly.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log][0] == "run.started"
    assert log[-1]["event"] == "run.finished" and log[-1]["state"] == "ok"
    assert res.json_lines()[-1]["state"] == "ok"
    listed = hv("schedule", "list", "-o", "json").json()["schedules"]
    assert [(s["name"], s["last_run"], s["last_state"]) for s in listed] == [("nightly", 1, "ok")]
    shown = hv("runbook", "show", "1", "-o", "json").json()
    assert shown["schedule"] == "nightly"
    assert shown["vars"]["names"] == ["vm02"]


def test_overlapping_scheduled_runs_the_second_exits_at_once(lab: Lab, runbook: Path, _env: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    assert hv("schedule", "add", "nightly", "--runbook", "nightly.yml", "--at", "daily").code == 0
    hv("lab", "fault", "hostB", "--delay", "2.5")
    # The child sees this test's environment (state, config and crontab in tmp_path).
    envp = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    first = subprocess.Popen([sys.executable, "-m", "hvauto", "schedule", "run", "nightly"], cwd=lab.dir, env=envp,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_task(_env, 0, "hostB", first)
        t0 = time.monotonic()
        second = hv("schedule", "run", "nightly")
        assert time.monotonic() - t0 < 1.5
        assert second.code == ExitCode.LOCKED
        assert "is already running (pid" in second.err
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    events = [json.loads(line)["event"] for line in (_env / "logs" / "schedule-nightly.jsonl").read_text().splitlines()]
    assert "run.skipped" in events
    assert events.count("run.finished") == 1


def test_on_failure_gets_the_summary(lab: Lab, runbook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    hook = tmp_path / "notify.sh"
    hook.write_text(f"#!/bin/sh\n{{ echo \"$HVAUTO_SCHEDULE $HVAUTO_RUN_ID $HVAUTO_RUN_STATE\"; cat; }} > "
                    f"{tmp_path / 'notified'}\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    assert hv("schedule", "add", "nightly", "--runbook", "nightly.yml", "--at", "daily",
              "--on-failure", str(hook)).code == 0
    assert hv("schedule", "run", "nightly").code == 0
    assert not (tmp_path / "notified").exists()  # a run that went well notifies nobody
    hv("lab", "fault", "hostB", "--down")
    res = hv("--retries", "1", "schedule", "run", "nightly")
    assert res.code == ExitCode.PARTIAL
    head, body = (tmp_path / "notified").read_text().split("\n", 1)
    assert head == "nightly 2 partial"
    summary = json.loads(body)
    assert summary["failed_hosts"] == ["hostB"]
    assert summary["schedule"] == "nightly"


def test_a_scheduled_run_never_prompts(lab: Lab, runbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    assert hv("schedule", "add", "nightly", "--runbook", "nightly.yml", "--at", "daily").code == 0
    monkeypatch.setenv("HVAUTO_AUTH", "ntlm")
    monkeypatch.setenv("HVAUTO_USERNAME", "LAB\\Administrator")
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return lab.password

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    # Interactively, hvauto asks (once per account) ...
    assert hv("runbook", "run", "nightly.yml").code == 0
    assert len(prompts) == 1
    # ... a scheduled run never does: it fails, saying where a password could come from.
    res = hv("schedule", "run", "nightly")
    assert len(prompts) == 1
    assert res.code == ExitCode.ABORTED
    errors = [e["error"]["message"] for e in res.json_lines() if e["event"] == "task" and e.get("error")]
    assert errors and all("no password for LAB\\Administrator" in m for m in errors), errors


def test_remove_deletes_the_unit_pair(lab: Lab, runbook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "systemd")
    assert hv("schedule", "add", "nightly", "--runbook", "nightly.yml", "--at", "daily").code == 0
    assert all(p.exists() for p in units_of(tmp_path, "nightly"))
    again = hv("schedule", "add", "nightly", "--runbook", "nightly.yml", "--at", "daily")
    assert again.code == ExitCode.USAGE and "exists" in again.err
    assert hv("schedule", "remove", "nightly").code == 0
    assert not any(p.exists() for p in units_of(tmp_path, "nightly"))
    assert hv("schedule", "list", "-o", "json").json() == {"event": "result", "schedules": []}
    assert hv("schedule", "run", "nightly").code == ExitCode.NOT_FOUND


@pytest.mark.parametrize(("argv", "needle"), [
    (["--at", "daily\x00"], "printable ASCII"),
    (["--at", "Mon..Fri 02:00\n0 3 * * *"], "printable ASCII"),
    (["--at", "daily", "--on-failure", "notify 'unbalanced"], "cannot split it into a command line"),
    (["--at", "daily", "--on-failure", "  "], "give a command"),
])
def test_hostile_schedule_input_is_refused_cleanly(lab: Lab, runbook: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, argv: list[str], needle: str) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    res = hv("schedule", "add", "nightly", "--runbook", "nightly.yml", *argv)
    assert res.code == ExitCode.USAGE, res.err
    assert needle in res.err
    assert not (tmp_path / "crontab").exists()


@pytest.mark.parametrize("name", ["bad\n", "../escape", "a b", "", "x" * 65])
def test_schedule_names_are_checked(lab: Lab, runbook: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    res = hv("schedule", "add", name, "--runbook", "nightly.yml", "--at", "daily")
    assert res.code == ExitCode.USAGE, res.err
    assert "letters, digits, - and _ only" in res.err


# -- what a unit or a crontab line may hold (issue 12) ------------------------------------------------

def test_a_runbook_name_cannot_add_a_section_to_the_unit(lab: Lab, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "systemd")
    hostile = lab.dir / "x\n[Service]\nExecStartPre=touch INJECTED\n.yml"
    hostile.write_text(textwrap.dedent(RUNBOOK).lstrip())
    res = hv("schedule", "add", "inj", "--runbook", str(hostile), "--at", "daily")
    assert res.code == ExitCode.USAGE, res.err
    assert "control character" in res.err and "'\\n'" in res.err
    assert not (tmp_path / "units").exists() or not any((tmp_path / "units").iterdir())


def test_an_inventory_directory_cannot_add_a_crontab_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.lab import setup

    odd = tmp_path / "inv\n* * * * * touch INJECTED #"
    setup.init(odd)
    monkeypatch.chdir(odd)
    (odd / "nightly.yml").write_text(textwrap.dedent(RUNBOOK).lstrip())
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    res = hv("schedule", "add", "inj", "--runbook", "nightly.yml", "--at", "0 2 * * *")
    assert res.code == ExitCode.USAGE, res.err
    assert "control character" in res.err
    assert not (tmp_path / "crontab").exists()


@pytest.mark.parametrize("char", ["\r", "\x0b", "\u2028", "\x85", "\x1b"])
def test_no_line_breaking_character_reaches_a_unit(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   char: str) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "systemd")
    hostile = lab.dir / f"a{char}b.yml"
    hostile.write_text(textwrap.dedent(RUNBOOK).lstrip())
    res = hv("schedule", "add", "inj", "--runbook", str(hostile), "--at", "daily")
    assert res.code == ExitCode.USAGE, res.err


def test_the_lock_is_on_the_file_not_the_name_it_was_reached_by(lab: Lab, runbook: Path) -> None:
    from hvauto.runbook import lock

    link = lab.dir / "other-name.yml"
    link.symlink_to(runbook)
    assert lock.lock_file(link) == lock.lock_file(runbook) == lock.lock_file(lab.dir / "." / "nightly.yml")
    with lock.hold(runbook, what="the test"):
        res = hv("runbook", "run", str(link))
    assert res.code == ExitCode.LOCKED, res.err


def test_a_unit_run_in_a_clean_environment_finds_its_schedule(lab: Lab, runbook: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What `env -i` leaves plus what the unit sets is enough: the config, state and log directories are in it."""
    import shlex

    monkeypatch.setenv("HVAUTO_SCHEDULER", "systemd")
    assert hv("schedule", "add", "clean", "--runbook", "nightly.yml", "--at", "daily").code == 0
    service, _ = units_of(tmp_path, "clean")
    text = service.read_text()
    env = {"PATH": "/usr/bin:/bin"}
    for line in text.splitlines():
        if line.startswith("Environment="):
            key, _, value = shlex.split(line[len("Environment="):])[0].partition("=")
            env[key] = value
    assert {"HVAUTO_CONFIG_DIR", "HVAUTO_STATE_DIR"} <= set(env)
    svc = parse_unit(service)["Service"]
    argv = shlex.split(svc["ExecStart"])
    done = subprocess.run(argv, cwd=svc["WorkingDirectory"], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "no schedule named" not in done.stderr


def test_no_scheduler_hints_at_the_systemd_backend(lab: Lab, runbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    monkeypatch.delenv("HVAUTO_CRONTAB_FILE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    res = hv("schedule", "add", "x", "--runbook", "nightly.yml", "--at", "daily")
    assert res.code == 3
    assert "--backend systemd" in res.err


def test_schedule_logs_shows_a_vm_reports_report_lines(lab: Lab, _env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    report = Path(__file__).resolve().parent.parent / "playbooks" / "vm-report.yml"
    (lab.dir / "vm-report.yml").write_text(report.read_text())
    assert hv("schedule", "add", "vm-report", "--runbook", "vm-report.yml", "--at", "daily").code == 0
    assert "has not run yet" in hv("schedule", "logs", "vm-report").err
    assert hv("schedule", "run", "vm-report").code == 0
    log = (_env / "logs" / "schedule-vm-report.jsonl").read_text()
    assert log.count("GiB free") >= 3  # each host's report line is in the log itself
    res = hv("schedule", "logs", "vm-report")
    assert res.code == 0
    lines = [line for line in res.out.splitlines() if "GiB free" in line]
    assert len(lines) == 3 and all(" task step 3 " in line and " done: " in line for line in lines)
    assert hv("schedule", "logs", "vm-report", "-n", "1").out.count("\n") == 1
    assert all(json.loads(line)["event"] for line in hv("schedule", "logs", "vm-report", "-o", "json").out.splitlines())
    assert hv("schedule", "logs", "nosuch").code == 4
    shown = hv("runbook", "show", "1")
    assert shown.out.count("GiB free") == 3  # and in the run's own view
