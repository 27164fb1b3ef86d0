"""The migration situations of tests/estates/migration.yaml over the wire (PSRP over TLS against `hvauto lab serve`).

The same estate files and expectations as tests/test_migration_rules.py: the preflight blocks with the fix, the
lab (forced) fails the job, and the moves Hyper-V allows go through, with every answer crossing real WinRM/PSRP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hvauto.errors import ExitCode
from hvauto.hyperv import MOVE_JOB_TYPES, JobState
from hvauto.lab import setup
from hvauto.lab.transport import store_for
from hvauto.lab.wire import certs
from hvauto.lab.wire.server import TLSFiles, WireServer
from tests.conftest import hv
from tests.test_migration_rules import BASE, CASES, FAST, force, merge
from tests.wire.conftest import port_closed, wire_inventory

pytestmark = [pytest.mark.slow, pytest.mark.wire]


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           request: pytest.FixtureRequest) -> Iterator[tuple[Path, dict[str, Any]]]:
    case: dict[str, Any] = request.param
    estate = tmp_path / "estate.yaml"
    estate.write_text(yaml.safe_dump(merge(BASE, case.get("patch") or {}), sort_keys=False), encoding="utf-8")
    paths = setup.init(tmp_path / "wire", serve=setup.ServeOptions(tls=True), estate=estate)
    files = certs.files(paths.state.parent)
    server = WireServer(paths.state, port=0, tls=TLSFiles(files.cert, files.key)).start()
    paths.inventory.write_text(wire_inventory(paths.inventory.read_text(), server.port, "psrp"))
    monkeypatch.chdir(tmp_path / "wire")
    with store_for(str(paths.state.resolve())).transaction() as est:
        est.set_meta("time_scale", "5000")
    try:
        yield tmp_path / "wire", case
    finally:
        port = server.port
        server.stop()
        store_for(str(paths.state.resolve())).close()
    assert port_closed(port)


def _ids(case: dict[str, Any]) -> str:
    return str(case["name"])


@pytest.mark.parametrize("served", [c for c in CASES if "blocked" in c], ids=_ids, indirect=True)
def test_blocked_over_the_wire(served: tuple[Path, dict[str, Any]]) -> None:
    lab, case = served
    res = hv("migrate", *case["argv"], "-o", "json", *FAST)
    assert res.code == ExitCode.PREFLIGHT, res.out + res.err
    found = [p for p in res.json()["problems"] if p["check"] == case["blocked"]["check"]]
    assert any(case["blocked"]["fix"] in (p["fix"] or "") for p in found), res.json()["problems"]
    job = force(lab, case["argv"])
    assert job["job_state"] == JobState.EXCEPTION and job["job_type"] in MOVE_JOB_TYPES
    assert case["lab"] in job["error_description"]


@pytest.mark.parametrize("served", [c for c in CASES if c.get("moves")], ids=_ids, indirect=True)
def test_allowed_over_the_wire(served: tuple[Path, dict[str, Any]]) -> None:
    _, case = served
    res = hv("migrate", *case["argv"], "-o", "json", *FAST)
    assert res.code == 0, res.err
    assert case["argv"][1] in {v["name"] for v in hv("vm", "list", case["argv"][2], "-o", "json").json()["vms"]}

