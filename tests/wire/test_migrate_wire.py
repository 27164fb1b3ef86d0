"""Migration over the wire: the real back-ends against the lab served on loopback.

The "Done when" of the migration issue, through PSRP (and WinRS) instead of the in-process lab:
a move with progress, a no-op re-run, a preflight that names the missing delegation, every
problem at once for hv12, an evacuation within the limits, and a fault mid-move that does not
start a second Move-VM.
"""

from __future__ import annotations

import threading

import pytest

from hvauto.errors import ExitCode
from tests.conftest import hv
from tests.wire.conftest import WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]

FAST = ("--poll-interval", "0.02")


def speed(wire: WireLab, scale: float) -> None:
    with wire.store.transaction() as est:
        est.set_meta("time_scale", str(scale))


def test_migrate_done_when_over_the_wire(wire: WireLab) -> None:
    inv = ("-i", str(wire.inventory_path))
    speed(wire, 100)
    res = hv(*inv, "migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert res.code == 0, res.err
    assert "100%" in res.err and "moved from hostA to hostB" in res.out
    assert "vm01" in {v["name"] for v in hv(*inv, "vm", "list", "hostB", "-o", "json").json()["vms"]}
    again = hv(*inv, "migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert again.code == 0 and "nothing to do" in again.out
    back = hv(*inv, "migrate", "--shared-nothing", "vm01", "hostA", *FAST)
    assert back.code == ExitCode.PREFLIGHT
    assert "hostB may not delegate to hostA" in back.err and "hvauto delegation grant hostB --to hostA" in back.err
    hv12 = hv(*inv, "migrate", "--shared-nothing", "vm02", "hv12", "-o", "json", *FAST)
    assert hv12.code == ExitCode.PREFLIGHT
    checks = {p["check"] for p in hv12.json()["problems"]}
    assert {"dest.migration", "dest.auth", "dest.switch", "dest.config_version"} <= checks
    assert wire.store.calls(template="migrate_start") == 1


def test_evacuate_and_a_fault_mid_move_over_psrp(psrp_wire: WireLab) -> None:
    from hvauto.ops import migrate as ops
    from hvauto.remote.retry import NO_RETRY

    speed(psrp_wire, 50)
    injected = threading.Event()

    def on_progress(p: ops.MoveProgress) -> None:
        if not injected.is_set():
            injected.set()
            psrp_wire.fault("hostA", fail_next=3, kind="transient")

    with psrp_wire.session(retry=NO_RETRY) as session:
        res = ops.migrate(session, vm="vm01", dest="hostB", on_progress=on_progress, poll_interval=0.02)
    assert res.changed and injected.is_set()
    assert psrp_wire.store.calls(host="hostA", template="migrate_start") == 1

    with psrp_wire.store.transaction() as est:
        vm = next(v for v in est.all("vm") if v["name"] == "vm02")
        vm["lab_fail_migration"] = 50
        est.put("vm", vm["key"], vm, host=vm["host"])
    out = hv("-i", str(psrp_wire.inventory_path), "evacuate", "hostA", *FAST)
    assert out.code == ExitCode.PARTIAL, out.err
    assert "1 moved, 1 failed" in out.out
    with psrp_wire.store.transaction() as est:
        assert int(est.meta("peak_submitted_max_vm_migrations/hosta", "0") or 0) <= 2
        assert est.all("planned_vm") == []
