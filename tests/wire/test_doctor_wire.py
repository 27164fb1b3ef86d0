"""hvauto doctor over the wire: the same verdicts as in-process, and what it costs in requests."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest

from hvauto.cli.main import run
from hvauto.errors import ExitCode
from tests.wire.conftest import WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]

#: WS-Management requests per host for one doctor run (a pool opened, one doctor_host, closed), per back-end;
#: the AD host adds its ad_computer_get. Measured; the README's "What doctor costs" says the same.
PER_HOST = {"psrp": 6, "winrm": 6}
AD_EXTRA = {"psrp": 3, "winrm": 6}


def _doctor(wire: WireLab, *args: str) -> tuple[int, list[dict[str, object]], str]:
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(wire.dir)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(["--inventory", str(wire.inventory_path), "doctor", *args, "-o", "json"])
    finally:
        os.chdir(old)
    return int(code), [json.loads(line) for line in out.getvalue().splitlines() if line.strip()], err.getvalue()


def test_doctor_over_the_wire_gives_the_lab_verdicts_and_pinned_request_counts(wire: WireLab) -> None:
    wire.server.reset_counts()
    code, lines, err = _doctor(wire)
    assert code == ExitCode.NOT_READY, err
    doc = lines[-1]
    pairs = {(p["source"], p["dest"]): p for p in doc["pairs"]}  # type: ignore[union-attr]
    assert pairs[("hostA", "hostB")]["verdict"] == "ready"
    assert pairs[("hostB", "hostA")]["verdict"] == "blocked"
    assert {p["fix"] for p in pairs[("hostB", "hostA")]["problems"] if p["blocking"]} == {
        "hvauto delegation grant hostB --to hostA"}
    hosts = {h["host"]: h for h in doc["hosts"]}  # type: ignore[union-attr]
    assert all(h["reachable"] for h in hosts.values()), hosts
    stages = [s["name"] for s in hosts["hostA"]["stages"]]
    assert stages[:3] == ["name", "tcp", "tls"]
    counts = wire.server.request_counts()
    per_host: dict[str, int] = {}
    for (host, _action), n in counts.items():
        per_host[host] = per_host.get(host, 0) + n
    inventory = wire.inventory
    unknown = [h.lower() for h, c in inventory.hosts.items() if not c.os]  # host_facts first: one more step
    step = {"psrp": 3, "winrm": 6}[wire.backend]
    for host in inventory.hosts:
        want = PER_HOST[wire.backend] + (AD_EXTRA[wire.backend] if host == "dc01" else 0) \
            + (step if host.lower() in unknown else 0)
        assert per_host[host.lower()] == want, (host, counts)
