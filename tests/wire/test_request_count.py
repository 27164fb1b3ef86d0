"""How many WS-Management requests N steps on one host cost, per back-end (README: design notes)."""

from __future__ import annotations

import pytest

from hvauto.remote.retry import NO_RETRY
from tests.wire.conftest import WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]

#: Requests for N steps on one host: fixed cost + per-step cost (measured; see the README).
EXPECTED = {"psrp": (2, 3), "winrm": (0, 6)}


def requests_for(wire: WireLab, steps: int) -> dict[str, int]:
    wire.server.reset_counts()
    with wire.session(retry=NO_RETRY) as s:
        for _ in range(steps):
            assert s.run("hostA", "vm_list").ok
    return {a: n for (h, a), n in wire.server.request_counts().items() if h == "hosta"}


@pytest.mark.parametrize("steps", [1, 5])
def test_requests_per_step(wire: WireLab, steps: int) -> None:
    by_action = requests_for(wire, steps)
    fixed, per_step = EXPECTED[wire.backend]
    assert sum(by_action.values()) == fixed + per_step * steps, by_action
    if wire.backend == "psrp":
        assert by_action["Create"] == 1  # one pool, reused by every step
        assert by_action["Command"] == steps
        # Each pipeline is terminated before the next step; the last one by the pool's Delete.
        assert by_action.get("Signal", 0) == steps - 1 and by_action["Delete"] == 1
