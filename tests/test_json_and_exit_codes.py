"""`-o json` is JSON lines with an `event` everywhere (errors included), and every exit code of the
README's table comes out of the CLI where the README says it does."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer

from hvauto.cli.main import app
from hvauto.errors import ExitCode

from .conftest import Lab, Outcome, hv

REPO = Path(__file__).resolve().parents[1]
FABRIC = str(REPO / "playbooks" / "fabric-converged.yaml")
FAST = ("--poll-interval", "0.01")
SHARE = ("VMs", "--server", "fs01")

#: Every command that takes --output, with arguments that succeed on a fresh lab. A command added
#: with --output and not listed here fails test_every_command_with_output_is_covered.
OK_ARGS: dict[str, list[str]] = {
    "migrate": ["migrate", "--shared-nothing", "vm01", "hostB", *FAST],
    "evacuate": ["evacuate", "hostA", "--what-if"],
    "lab calls": ["lab", "calls"],
    "host list": ["host", "list"],
    "host show": ["host", "show", "hostA"],
    "host migration": ["host", "migration", "hostA", "--max-vm", "3"],
    "vm list": ["vm", "list"],
    "fabric plan": ["fabric", "plan", "hostA", "--spec", FABRIC],
    "fabric apply": ["fabric", "apply", "hostA", "--spec", FABRIC, "--what-if"],
    "switch list": ["switch", "list"],
    "switch create": ["switch", "create", "hostA", "Lab", "-t", "private"],
    "switch remove": ["switch", "remove", "hostA", "Lab"],
    "storage move": ["storage", "move", "vm01", "D:\\VMs\\vm01", "--what-if"],
    "runbook validate": ["runbook", "validate", "rb.yml"],
    "runbook run": ["runbook", "run", "rb.yml"],
    "runbook resume": ["runbook", "resume", "1"],
    "runbook history": ["runbook", "history"],
    "runbook show": ["runbook", "show", "1"],
    "schedule add": ["schedule", "add", "report", "--runbook", "rb.yml", "--at", "Mon *-*-* 07:00"],
    "schedule list": ["schedule", "list"],
    "schedule logs": ["schedule", "logs", "report"],
    "smb share create": ["smb", "share", "create", *SHARE, "--path", "D:\\Shares\\VMs", "--hosts", "hostA,hostB"],
    "smb share show": ["smb", "share", "show", *SHARE],
    "smb share grant": ["smb", "share", "grant", *SHARE, "--hosts", "hv12"],
    "smb share revoke": ["smb", "share", "revoke", *SHARE, "--hosts", "hv12"],
    "smb share remove": ["smb", "share", "remove", *SHARE, "--what-if"],
    "delegation grant": ["delegation", "grant", "hostB", "--to", "hostA"],
    "delegation revoke": ["delegation", "revoke", "hostB", "--to", "hostA"],
    "delegation show": ["delegation", "show", "hostB"],
    "doctor": ["doctor", "hostA"],
    "vm show": ["vm", "show", "vm01", "--no-moves"],
}

#: The same commands naming a host that is not in the inventory (where they name one).
UNKNOWN_HOST: dict[str, list[str]] = {
    "migrate": ["migrate", "--shared-nothing", "vm01", "nosuch"],
    "evacuate": ["evacuate", "nosuch"],
    "host show": ["host", "show", "nosuch"],
    "host migration": ["host", "migration", "nosuch", "--max-vm", "2"],
    "vm list": ["vm", "list", "nosuch"],
    "fabric plan": ["fabric", "plan", "nosuch", "--spec", FABRIC],
    "fabric apply": ["fabric", "apply", "nosuch", "--spec", FABRIC],
    "switch list": ["switch", "list", "nosuch"],
    "switch create": ["switch", "create", "nosuch", "X", "-t", "private"],
    "switch remove": ["switch", "remove", "nosuch", "X"],
    "storage move": ["storage", "move", "vm01", "D:\\VMs\\vm01", "--host", "nosuch"],
    "runbook run": ["runbook", "run", "rb.yml", "--limit", "nosuch"],
    "smb share create": ["smb", "share", "create", "VMs", "--server", "nosuch", "--path", "D:\\S", "--hosts", "hostA"],
    "smb share show": ["smb", "share", "show", "VMs", "--server", "nosuch"],
    "smb share grant": ["smb", "share", "grant", *SHARE, "--hosts", "nosuch"],
    "smb share revoke": ["smb", "share", "revoke", *SHARE, "--hosts", "nosuch"],
    "smb share remove": ["smb", "share", "remove", "VMs", "--server", "nosuch"],
    "delegation grant": ["delegation", "grant", "hostB", "--to", "nosuch"],
    "delegation revoke": ["delegation", "revoke", "nosuch", "--to", "hostA"],
    "delegation show": ["delegation", "show", "nosuch"],
    "doctor": ["doctor", "nosuch"],
    "vm show": ["vm", "show", "vm01", "--from", "nosuch"],
}

#: Read commands say "not found" (4) for an unknown host; changing commands check their hosts up front (2).
READS = {"host show", "vm list", "fabric plan", "switch list", "smb share show", "delegation show", "doctor", "vm show"}

RUNBOOK = """\
name: report
target: role:hyperv
steps:
  - host.facts: {}
"""


def commands_with_output() -> set[str]:
    found: set[str] = set()

    def walk(cmd: Any, path: list[str]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        elif any(p.name == "output" for p in cmd.params):
            found.add(" ".join(path))

    walk(typer.main.get_command(app), [])
    return found


def json_run(*argv: str) -> tuple[Outcome, list[dict[str, Any]]]:
    """Run with -o json; every line it prints must be one JSON object with an event."""
    res = hv(*argv, "-o", "json")
    events = []
    for line in res.out.splitlines():
        doc = json.loads(line)
        assert isinstance(doc, dict) and isinstance(doc.get("event"), str), line
        events.append(doc)
    return res, events


def assert_error_line(res: Outcome, events: list[dict[str, Any]], code: int) -> dict[str, Any]:
    assert res.code == code, (res.out, res.err)
    assert events and events[-1]["event"] == "error", res.out
    err = events[-1]
    assert err["code"] == code and set(err) >= {"error", "message", "hint", "problems"}
    assert res.err.startswith("hvauto: error: ") or "internal error" in res.err  # the human line too
    return err


@pytest.fixture
def env(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.setenv("HVAUTO_POLL_INTERVAL", "0.01")
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HVAUTO_SYSTEMD_DIR", str(tmp_path / "units"))
    monkeypatch.setenv("HVAUTO_CRONTAB_FILE", str(tmp_path / "crontab"))
    (lab.dir / "rb.yml").write_text(RUNBOOK)
    assert hv("lab", "speed", "2000").code == 0
    return lab


def test_every_command_with_output_is_covered() -> None:
    assert commands_with_output() == set(OK_ARGS)
    assert set(UNKNOWN_HOST) <= set(OK_ARGS)


@pytest.mark.parametrize("command", sorted(OK_ARGS))
def test_success_is_json_lines_with_a_result(env: Lab, command: str) -> None:
    if command in ("runbook resume", "runbook show"):
        assert hv("runbook", "run", "rb.yml").code == 0
    if command in ("smb share grant", "smb share revoke", "smb share remove", "smb share show"):
        assert hv(*OK_ARGS["smb share create"]).code == 0
    if command == "schedule logs":
        assert hv(*OK_ARGS["schedule add"]).code == 0
        assert hv("schedule", "run", "report").code == 0
    res, events = json_run(*OK_ARGS[command])
    assert res.code == 0, res.err
    assert events, command
    assert "error" not in {e["event"] for e in events}
    assert events[-1]["event"] in ("result", "run.finished")


@pytest.mark.parametrize("command", sorted(UNKNOWN_HOST))
def test_an_unknown_host_is_an_error_line(env: Lab, command: str) -> None:
    res, events = json_run(*UNKNOWN_HOST[command])
    code = ExitCode.NOT_FOUND if command in READS else ExitCode.USAGE
    err = assert_error_line(res, events, code)
    assert "nosuch" in err["message"]
    assert env.calls() == 0


@pytest.mark.parametrize("command", sorted(OK_ARGS))
def test_no_inventory_is_an_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(REPO / "playbooks" / "vm-report.yml", empty / "rb.yml")
    monkeypatch.chdir(empty)
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HVAUTO_SYSTEMD_DIR", str(tmp_path / "units"))
    monkeypatch.setenv("HVAUTO_CRONTAB_FILE", str(tmp_path / "crontab"))
    res, events = json_run(*OK_ARGS[command])
    if command == "schedule list":  # needs no inventory
        assert res.code == 0
        return
    if command == "schedule logs":  # needs no inventory either: there is no such schedule
        assert_error_line(res, events, ExitCode.NOT_FOUND)
        return
    err = assert_error_line(res, events, ExitCode.CONFIG)
    assert err["error"] == "NoInventoryError" and "hvauto lab init" in err["hint"]


@pytest.mark.parametrize("command", ["host show", "vm list", "switch list", "delegation show", "host migration",
                                     "switch create", "smb share create", "delegation grant"])
def test_a_remote_error_is_an_error_line(env: Lab, command: str) -> None:
    argv = list(OK_ARGS[command])
    target = "dc01" if command.startswith("delegation") else "fs01" if command.startswith("smb") else "hostA"
    if command in ("vm list", "switch list"):
        argv.append("hostA")
    assert hv("lab", "fault", target, "--fail-next", "1", "--kind", "permanent").code == 0
    res, events = json_run(*argv)
    assert res.code != 0
    err = assert_error_line(res, events, res.code)
    assert err["code"] in (ExitCode.REMOTE, ExitCode.UNREACHABLE)


def test_a_preflight_failure_is_an_error_line_with_its_problems(env: Lab) -> None:
    res, events = json_run("migrate", "--shared-nothing", "vm01", "hv12", *FAST)
    err = assert_error_line(res, events, ExitCode.PREFLIGHT)
    assert err["error"] == "PreflightError"
    assert err["problems"] and all({"check", "message", "fix", "blocking"} <= set(p) for p in err["problems"])
    assert all(p["host"] is None or isinstance(p["host"], str) and p["host"] for p in err["problems"])


def test_migrate_what_if_is_one_json_line_and_plan_is_a_list(env: Lab) -> None:
    res, events = json_run("migrate", "--shared-nothing", "vm01", "hostB", "--what-if")
    assert res.code == 0, res.err
    assert len(events) == 1 and events[0]["event"] == "result" and events[0]["what_if"] is True
    assert isinstance(events[0]["plan"], list) and events[0]["changed"] is True
    assert [c["action"] for c in events[0]["changes"]] == ["move"]
    res, events = json_run("storage", "move", "vm01", "D:\\VMs\\vm01", "--what-if")
    assert isinstance(events[0]["plan"], list) and events[0]["plan"]


def test_no_value_is_null_not_an_empty_string(env: Lab) -> None:
    res, events = json_run("evacuate", "hostA", "--to", "hv12", "--what-if")
    assert res.code == ExitCode.PREFLIGHT
    assert events[-1]["event"] == "result"
    assert {v["dest"] for v in events[-1]["vms"]} == {None}
    assert hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST).code == 0
    _, again = json_run("migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert again[-1]["already_done"] is True and again[-1]["source"] is None


def test_runbook_step_numbers_are_1_based_in_every_event(env: Lab) -> None:
    res, events = json_run("runbook", "run", "rb.yml")
    assert res.code == 0, res.err
    started = [e["step"] for e in events if e["event"] == "step.started"]
    finished = [s["step"] for e in events if e["event"] == "run.finished" for s in e["steps"]]
    assert started == finished == [1]
    _, shown = json_run("runbook", "show", "1")
    assert [s["step"] for s in shown[-1]["steps"]] == [1]


# -- the README's exit-code table ----------------------------------------------------------------------

def readme_codes() -> set[int]:
    table = (REPO / "README.md").read_text().split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}


CODES: list[tuple[int, list[list[str]], list[str]]] = [
    (ExitCode.OK, [], ["switch", "create", "hostA", "Lab", "-t", "private"]),
    (ExitCode.USAGE, [], ["host", "migration", "nosuch", "--max-vm", "2"]),
    (ExitCode.USAGE, [], ["switch", "create", "nosuch", "X", "-t", "private"]),
    (ExitCode.USAGE, [], ["migrate", "--shared-nothing", "--live", "vm01", "hostB"]),
    (ExitCode.CONFIG, [["--inventory", "nope.toml", "host", "list"]], ["--inventory", "nope.toml", "host", "list"]),
    (ExitCode.NOT_FOUND, [], ["delegation", "show", "nosuch"]),
    (ExitCode.NOT_FOUND, [], ["smb", "share", "show", "VMs", "--server", "nosuch"]),
    (ExitCode.NOT_FOUND, [], ["migrate", "--shared-nothing", "nosuchvm", "hostB"]),
    (ExitCode.AUTH, [["lab", "fault", "hostA", "--fail-next", "9", "--kind", "auth"]], ["host", "show", "hostA"]),
    (ExitCode.UNREACHABLE, [["lab", "fault", "hostA", "--down"]], ["--retries", "1", "host", "show", "hostA"]),
    (ExitCode.TIMEOUT, [["lab", "fault", "hostA", "--fail-next", "9", "--kind", "timeout"]],
     ["--retries", "1", "host", "show", "hostA"]),
    (ExitCode.REMOTE, [["lab", "fault", "hostA", "--fail-next", "1", "--kind", "permanent"]],
     ["host", "show", "hostA"]),
    (ExitCode.PARTIAL, [["lab", "fault", "hostB", "--down"]], ["--retries", "1", "vm", "list"]),
    (ExitCode.PREFLIGHT, [], ["evacuate", "hostA", "--to", "hv12", "--what-if"]),
    (ExitCode.PREFLIGHT, [], ["migrate", "--shared-nothing", "vm01", "hv12"]),
    (ExitCode.ABORTED, [["lab", "fault", "hostA", "--down"], ["lab", "fault", "hostB", "--down"],
                        ["lab", "fault", "hv12", "--down"]], ["--retries", "1", "runbook", "run", "rb.yml"]),
    (ExitCode.UNKNOWN, [["lab", "fault", "hostA", "--fail-next", "1", "--kind", "reset", "--template",
                         "migrate_start"]], ["migrate", "--shared-nothing", "vm01", "hostB", *FAST]),
    (ExitCode.NOT_READY, [], ["doctor"]),
]


@pytest.mark.parametrize(("code", "setup", "argv"), CODES, ids=[f"{c}-{' '.join(a[:3])}" for c, _, a in CODES])
def test_exit_codes_through_the_cli(env: Lab, code: int, setup: list[list[str]], argv: list[str]) -> None:
    for s in setup:
        hv(*s)
    res = hv(*argv)
    assert res.code == code, (res.out, res.err)
    assert "Traceback" not in res.err


def test_fabric_plan_and_apply_what_if_agree_on_blocking_problems(env: Lab, tmp_path: Path) -> None:
    import yaml

    doc = yaml.safe_load(Path(FABRIC).read_text())
    doc["switch"]["adapters"] = ["NIC9", "NIC8"]  # not on the host: blocking
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(doc))
    plan = hv("fabric", "plan", "hostA", "--spec", str(spec))
    assert "[BLOCKING]" in plan.out
    apply = hv("fabric", "apply", "hostA", "--spec", str(spec), "--what-if")
    assert plan.code == apply.code == ExitCode.PREFLIGHT


def test_an_unexpected_error_is_1_with_no_traceback(env: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.ops import hosts

    def boom(*_: object, **__: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(hosts, "facts", boom)
    res, events = json_run("host", "show", "hostA")
    err = assert_error_line(res, events, ExitCode.ERROR)
    assert err["error"] == "InternalError" and "Traceback" not in res.err + res.out


def test_a_run_already_in_progress_is_12(env: Lab) -> None:
    from hvauto.runbook import lock

    with lock.hold(env.dir / "rb.yml", what="the test"):
        res, events = json_run("runbook", "run", "rb.yml")
    assert_error_line(res, events, ExitCode.LOCKED)


def test_ctrl_c_is_130_and_an_error_line(env: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.ops import hosts

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(hosts, "facts", interrupted)
    res, events = json_run("host", "show", "hostA")
    assert_error_line(res, events, ExitCode.INTERRUPTED)


def test_every_readme_code_has_a_case() -> None:
    shown = {c for c, _, _ in CODES} | {ExitCode.ERROR, ExitCode.LOCKED, ExitCode.INTERRUPTED}
    assert readme_codes() == shown == {int(c) for c in ExitCode}


# -- what-if says what the real run does -----------------------------------------------------------------

def test_smb_share_create_what_if_lists_the_changes_the_real_run_makes(env: Lab) -> None:
    argv = OK_ARGS["smb share create"]
    planned = hv(*argv, "--what-if", "-o", "json").json()
    assert env.calls(template="smb_share_apply") == 0
    made = hv(*argv, "-o", "json").json()
    assert planned["what_if"] is True and made["what_if"] is False
    assert planned["changes"] == made["changes"] and len(made["changes"]) == 3
    assert [[c for c in d["changes"]] for d in planned["delegation"]] == [d["changes"] for d in made["delegation"]]
    assert planned["changed"] is made["changed"] is True
    assert hv(*argv, "-o", "json").json()["changes"] == []


def test_onboard_host_check_mode_reports_the_delegation_step_as_changed(env: Lab) -> None:
    res, events = json_run("runbook", "run", str(REPO / "playbooks" / "onboard-host.yml"), "--var", "new_host=hv12",
                           "--check")
    assert res.code == 0, res.err
    names = {e["step"]: e["name"] for e in events if e["event"] == "step.started"}
    delegation = next(i for i, n in names.items() if n.startswith("delegation"))
    task = next(e for e in events if e["event"] == "task" and e["step"] == delegation)
    assert task["changed"] is True
    assert env.calls(template="ad_delegation_set") == 0
    # ... and the real run then makes those changes.
    real = hv("runbook", "run", str(REPO / "playbooks" / "onboard-host.yml"), "--var", "new_host=hv12")
    assert real.code == 0, real.err
    assert env.calls(template="ad_delegation_set") > 0
