"""After a fault, say what is true: each fault kind on each request of a change that is not safe to resend.

The in-process lab plays ``--on Command`` before the script runs (the request never got through, or the
client cannot tell), ``--on Receive`` after it ran (its answer lost) and ``--on Signal`` after its answer.
For a move, a share and a fabric apply the outcome is reported as it is: done (exit 0), not done (the
error's own code, and nothing ran), or unknown (exit 13, with the commands that find out), never exit 1,
and the change never runs twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv

REPO = Path(__file__).resolve().parent.parent
FAST = ("--poll-interval", "0.01")
KINDS = ["transient", "http503", "reset", "timeout", "hang", "auth", "quota", "permanent"]
ACTIONS = ["Command", "Receive", "Signal"]


def ran(lab: Lab, template: str) -> int:
    """How many times the lab actually ran ``template`` (a fault that stopped it first is not a run)."""
    return sum(n for _, t, outcome, n in lab.store.call_counts() if t == template and not outcome.startswith("fault"))


def expected(kind: str, action: str) -> int:
    """The exit code that tells the truth about a fault of ``kind`` on ``action``."""
    if kind == "permanent":
        return ExitCode.REMOTE  # the script's own failure, whatever request it is aimed at
    if action == "Signal":
        return ExitCode.OK  # the answer had arrived: closing the pipeline is housekeeping
    if action == "Receive":
        return ExitCode.OK  # it ran: looked up, followed, done
    return {
        "transient": ExitCode.OK, "http503": ExitCode.OK, "quota": ExitCode.OK,  # refused: retried, runs once
        "auth": ExitCode.AUTH,                                                  # refused: nothing ran
    }.get(kind, ExitCode.UNKNOWN)                                               # reset, timeout, hang: cannot tell


def arm(lab: Lab, host: str, kind: str, action: str, template: str) -> None:
    res = hv("lab", "fault", host, "--fail-next", "1", "--kind", kind, "--on", action, "--template", template)
    assert res.code == 0, res.err


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_on_the_start_of_a_move(lab: Lab, kind: str, action: str) -> None:
    with lab.store.transaction() as est:
        est.set_meta("time_scale", "500")
    arm(lab, "hostA", kind, action, "migrate_start")
    res = hv("--retries", "2", "migrate", "--shared-nothing", "vm01", "hostB", *FAST, "-o", "json")
    code = expected(kind, action)
    assert res.code == code, (res.out, res.err)
    assert "Traceback" not in res.err
    assert ran(lab, "migrate_start") <= 1  # never a second start
    where = {v["name"]: v["host"] for v in hv("vm", "list", "-o", "json").json()["vms"]}
    if code == ExitCode.OK:
        assert where["vm01"] == "hostB" and ran(lab, "migrate_start") == 1
    elif code == ExitCode.UNKNOWN:
        err = res.json_lines()[-1]
        assert err["event"] == "error" and err["error"] == "OutcomeUnknown"
        assert "hvauto migrate --watch vm01" in err["commands"] and "hvauto migrate --cancel vm01" in err["commands"]
        assert "may still begin" in err["message"] and "--watch vm01" in err["hint"]
    else:
        assert where["vm01"] == "hostA"
    if code == ExitCode.AUTH:
        err = res.json_lines()[-1]
        assert err["sent"] is False and "did not run" in err["hint"]


def test_a_401_on_the_receive_after_the_start_is_looked_into_not_reported_as_not_sent(lab: Lab) -> None:
    """The seen fault: exit 5 "authentication failed" while the move ran on."""
    with lab.store.transaction() as est:
        est.set_meta("time_scale", "500")  # the move itself need not take its real 20 s
    arm(lab, "hostA", "auth", "Receive", "migrate_start")
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST, "-o", "json")
    assert res.code == ExitCode.OK, res.err
    assert res.json()["resumed"] is True
    assert ran(lab, "migrate_start") == 1


def test_evacuate_reports_a_vm_that_moved_as_moved(lab: Lab) -> None:
    with lab.store.transaction() as est:
        est.set_meta("time_scale", "500")
    arm(lab, "hostA", "auth", "Receive", "migrate_start")
    res = hv("evacuate", "hostA", *FAST)
    assert res.code == ExitCode.OK, (res.out, res.err)
    assert "3 moved, 0 failed" in res.out


def test_a_401_on_a_read_after_the_command_went_out_says_sent(lab: Lab) -> None:
    arm(lab, "hostA", "auth", "Receive", "switch_create")
    res = hv("switch", "create", "hostA", "Lab", "-t", "private", "-o", "json")
    assert res.code == ExitCode.AUTH
    err = res.json_lines()[-1]
    assert err["sent"] is True and "may have run" in err["hint"]


SHARE = ["smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs", "--hosts", "hostA,hostB"]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_on_a_share_change(lab: Lab, kind: str, action: str) -> None:
    arm(lab, "fs01", kind, action, "smb_share_apply")
    res = hv("--retries", "2", *SHARE, "--no-delegation", "-o", "json")
    code = expected(kind, action)
    assert res.code == code, (res.out, res.err)
    assert ran(lab, "smb_share_apply") <= 1
    shown = hv("smb", "share", "show", "VMs", "--server", "fs01", "-o", "json")
    if code == ExitCode.OK:
        assert shown.code == 0 and ran(lab, "smb_share_apply") == 1
    elif code == ExitCode.UNKNOWN:
        err = res.json_lines()[-1]
        assert err["commands"] == ["hvauto smb share show VMs --server fs01"]
    if code != ExitCode.OK:
        assert shown.code == ExitCode.NOT_FOUND  # nothing was made, and the report does not claim it was
        again = hv(*SHARE, "--no-delegation")
        assert again.code == 0 and ran(lab, "smb_share_apply") == 1 + (kind == "permanent")


FABRIC = str(REPO / "playbooks" / "fabric-converged.yaml")


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("kind", ["http503", "reset", "hang", "auth", "quota"])
def test_a_fault_on_a_fabric_apply(lab: Lab, kind: str, action: str) -> None:
    arm(lab, "hostA", kind, action, "fabric_apply")
    res = hv("--retries", "2", "fabric", "apply", "hostA", "--spec", FABRIC, "-o", "json")
    code = expected(kind, action)
    assert res.code == code, (res.out, res.err)
    assert ran(lab, "fabric_apply") <= 1
    if code == ExitCode.UNKNOWN:
        assert res.json_lines()[-1]["commands"] == [f"hvauto fabric plan hostA --spec {FABRIC}"]
    plan = hv("fabric", "plan", "hostA", "--spec", FABRIC, "-o", "json").json()
    assert any(h["changed"] for h in plan["hosts"].values()) is (code != ExitCode.OK), plan
