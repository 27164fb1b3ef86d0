"""Each wire fault kind on each request of a move's start (Command, Receive, Signal), through pypsrp.

The fault is armed as the session sends ``migrate_start`` (an observer), so it lands on that
script's own request. The outcome is told as it is: moved (0), not moved because the request was
refused (the error's code, nothing ran), or unknown (13, with the commands that find out); never
exit 1, and never a second start.
"""

from __future__ import annotations

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
