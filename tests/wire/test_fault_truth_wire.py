"""Each wire fault kind on each request of a move's start (Command, Receive, Signal), through pypsrp.

The fault is armed as the session sends ``migrate_start`` (an observer), so it lands on that
script's own request. The outcome is told as it is: moved (0), not moved because the request was
refused (the error's code, nothing ran), or unknown (13, with the commands that find out); never
exit 1, and never a second start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hvauto.errors import ExitCode, HvautoError, OutcomeUnknown, exit_code
from hvauto.remote.retry import RetryPolicy
from tests.wire.conftest import WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]

RETRY = RetryPolicy(attempts=3, initial=0.2, maximum=0.5, jitter=0.1)


class ArmOn:
    """Arms a wire fault on ``host`` as ``template`` is sent (the next such request is that script's)."""

    def __init__(self, wire: WireLab, host: str, template: str, **fault: Any) -> None:
        self.wire, self.host, self.template, self.fault = wire, host, template, fault
        self.armed = False

    def call_started(self, host: str, script: Any) -> None:
        if host == self.host and script.template == self.template and not self.armed:
            self.armed = True
            self.wire.fault(self.host, fail_next=1, **self.fault)

    def call_finished(self, *_: Any) -> None:
        pass


def expected(kind: str, action: str) -> int:
    if action != "Command":
        return ExitCode.OK  # the script ran: looked up and followed (Receive), or the answer had come (Signal)
    return {"http503": ExitCode.OK, "quota": ExitCode.OK, "auth": ExitCode.AUTH}.get(kind, ExitCode.UNKNOWN)


@pytest.mark.parametrize("action", ["Command", "Receive", "Signal"])
@pytest.mark.parametrize("kind", ["http503", "reset", "hang", "auth", "quota"])
def test_a_wire_fault_on_the_start_of_a_move(psrp_wire: WireLab, kind: str, action: str) -> None:
    from hvauto.ops import migrate as ops

    with psrp_wire.store.transaction() as est:
        est.set_meta("time_scale", "300")
    arm = ArmOn(psrp_wire, "hostA", "migrate_start", kind=kind, fail_on=action)
    outcome: BaseException | None = None
    with psrp_wire.session(retry=RETRY, observers=[arm]) as session:
        try:
            res = ops.migrate(session, vm="vm01", dest="hostB", poll_interval=0.05)
            assert res.changed
        except HvautoError as exc:
            outcome = exc
    assert arm.armed
    assert exit_code(outcome) == expected(kind, action), outcome
    assert psrp_wire.store.calls(host="hostA", template="migrate_start") <= 1
    with psrp_wire.session() as session:
        where = {h: [v["name"] for v in session.run(h, "vm_list").data["vms"]] for h in ("hostA", "hostB")}
    if outcome is None:
        assert "vm01" in where["hostB"]
    else:
        assert "vm01" in where["hostA"]
    if isinstance(outcome, OutcomeUnknown):
        assert "hvauto migrate --watch vm01" in outcome.commands


@pytest.mark.parametrize("action", ["Command", "Receive", "Signal"])
@pytest.mark.parametrize("kind", ["http503", "reset", "hang", "auth"])
def test_a_wire_fault_on_a_share_change(psrp_wire: WireLab, kind: str, action: str) -> None:
    from hvauto.ops import smb

    arm = ArmOn(psrp_wire, "fs01", "smb_share_apply", kind=kind, fail_on=action)
    outcome: BaseException | None = None
    with psrp_wire.session(retry=RETRY, observers=[arm]) as session:
        try:
            smb.create(session, name="VMs", server="fs01", path="D:\\Shares\\VMs", hosts=["hostA"], no_delegation=True)
        except HvautoError as exc:
            outcome = exc
    assert arm.armed
    # The share change is one script: a reset or a hang on its Command leaves it unknown until read.
    code = exit_code(outcome)
    assert code == expected(kind, action), outcome
    assert psrp_wire.store.calls(host="fs01", template="smb_share_apply") <= 1
    if isinstance(outcome, OutcomeUnknown):
        assert outcome.commands == ["hvauto smb share show VMs --server fs01"]


FABRIC = str(Path(__file__).resolve().parents[2] / "playbooks" / "fabric-converged.yaml")


@pytest.mark.parametrize("action", ["Command", "Receive", "Signal"])
@pytest.mark.parametrize("kind", ["http503", "reset", "hang", "auth"])
def test_a_wire_fault_on_a_fabric_apply(psrp_wire: WireLab, kind: str, action: str) -> None:
    from hvauto.ops import fabric

    arm = ArmOn(psrp_wire, "hostA", "fabric_apply", kind=kind, fail_on=action)
    outcome: BaseException | None = None
    with psrp_wire.session(retry=RETRY, observers=[arm]) as session:
        try:
            fabric.apply(session, host="hostA", spec=FABRIC)
        except HvautoError as exc:
            outcome = exc
    assert arm.armed
    assert exit_code(outcome) == expected(kind, action), outcome
    assert psrp_wire.store.calls(host="hostA", template="fabric_apply") <= 1
    with psrp_wire.session() as session:
        after = fabric.plan(session, host="hostA", spec=FABRIC)
    assert after.changed is (outcome is not None)
