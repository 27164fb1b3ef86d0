"""What the speed work promises without timing anything: how many hosts run at once, what a
command builds and imports at start, how many requests a step costs (tests/wire pins those)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from hvauto.ops import vms
from tests.conftest import Lab, hv


def _peak_concurrency(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch vm listing so that each host takes a moment; returns [peak] filled in as it runs."""
    lock = threading.Lock()
    state = {"now": 0}
    peak = [0]
    real = vms.list_on

    def slow(session: Any, host: str, names: Any = None) -> Any:
        with lock:
            state["now"] += 1
            peak[0] = max(peak[0], state["now"])
        try:
            time.sleep(0.05)
            return real(session, host, names)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(vms, "list_on", slow)
    return peak


def test_hosts_run_at_once_by_default(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    peak = _peak_concurrency(monkeypatch)
    out = hv("vm", "list", "hostA", "hostB", "hv12")
    assert out.code == 0, out.err
    assert peak[0] == 3


@pytest.mark.parametrize("how", ["option", "env"])
def test_forks_caps_the_hosts_at_once(lab: Lab, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    peak = _peak_concurrency(monkeypatch)
    if how == "env":
        monkeypatch.setenv("HVAUTO_FORKS", "1")
        out = hv("vm", "list", "hostA", "hostB", "hv12")
    else:
        out = hv("--forks", "2", "vm", "list", "hostA", "hostB", "hv12")
    assert out.code == 0, out.err
    assert peak[0] == (1 if how == "env" else 2)


def test_forks_must_be_positive(lab: Lab) -> None:
    out = hv("--forks", "0", "vm", "list")
    assert out.code == 2 and "--forks" in out.err
