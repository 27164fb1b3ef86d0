"""hvauto lab capture: an estate read into the estate format answers the read commands as the estate does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Lab, hv

READS = [
    ["vm", "list"],
    ["switch", "list"],
    ["host", "show", "hostA"],
    ["host", "show", "hv12"],
    ["delegation", "show", "hostA"],
    ["delegation", "show", "hostB"],
    ["smb", "share", "show", "VMs", "--server", "fs01"],
    ["doctor"],
    ["vm", "show", "vm01", "--no-moves"],
]


def _answers(where: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(where)
    out = {}
    for argv in READS:
        res = hv(*argv, "-o", "json")
        doc = res.json()
        for h in doc.get("hosts") or [] if argv == ["doctor"] else []:
            h["clock_skew_seconds"] = None  # the only thing the clock decides
        out[" ".join(argv)] = (res.code, doc)
    return out


def _twin(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(lab.dir)
    before = lab.store.snapshot()
    res = hv("lab", "capture", "--to", str(tmp_path / "captured.yaml"))
    assert res.code == 0, res.err
    assert lab.store.snapshot() == before  # read-only
    text = (tmp_path / "captured.yaml").read_text()
    assert "password" not in text.lower()
    assert hv("lab", "init", str(tmp_path / "twin"), "--estate", str(tmp_path / "captured.yaml")).code == 0
    return tmp_path / "twin"


def _changed(lab: Lab) -> None:
    """A lived-in estate: a share, a moved VM, more delegation, a VM with dynamic memory, parents and a checkpoint."""
    assert hv("lab", "speed", "5000").code == 0
    assert hv("smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs",
              "--hosts", "hostA,hostB").code == 0
    assert hv("migrate", "--shared-nothing", "vm02", "hostB", "--poll-interval", "0.01").code == 0
    assert hv("delegation", "grant", "hostB", "--to", "hostA").code == 0
    assert hv("switch", "create", "hostB", "Lab", "-t", "private").code == 0
    assert hv("lab", "speed", "1").code == 0  # lab time at its normal pace: finished jobs stay while capture reads
    with lab.store.transaction() as est:
        vm = next(v for v in est.all("vm") if v["name"] == "web01")
        vm.update(memory_dynamic=True, memory_minimum=2 * 1024**3, memory_maximum=16 * 1024**3,
                  memory_assigned=6 * 1024**3, checkpoints=[{"name": "before patch", "files": []}],
                  iso="\\\\fs01\\VMs\\iso\\ws2022.iso")
        vm["disks"][0]["parent"] = {"path": "D:\\Base\\ws2022.vhdx", "file_size": 12 * 1024**3}
        est.put("vm", vm["key"], vm, host=vm["host"])


@pytest.mark.parametrize("lived_in", [False, True], ids=["default", "changed"])
def test_capture_then_init_gives_a_twin_that_answers_the_same(lab: Lab, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, lived_in: bool) -> None:
    if lived_in:
        _changed(lab)
    else:
        assert hv("smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs",
                  "--hosts", "hostA").code == 0
    twin = _twin(lab, tmp_path, monkeypatch)
    original = _answers(lab.dir, monkeypatch)
    copy = _answers(twin, monkeypatch)
    for key in original:
        assert copy[key] == original[key], key
    if lived_in:
        doc = yaml.safe_load((tmp_path / "captured.yaml").read_text())
        web01 = next(v for h in doc["hosts"] for v in h.get("vms") or [] if v["name"] == "web01")
        assert web01["memory"]["dynamic"] is True and web01["checkpoints"] == [{"name": "before patch"}]
        assert web01["disks"][0]["parent"] == {"path": "D:\\Base\\ws2022.vhdx", "used": "12 GiB"}


def test_capture_refuses_to_overwrite_and_costs_a_read_per_thing(lab: Lab, tmp_path: Path) -> None:
    target = tmp_path / "e.yaml"
    target.write_text("x")
    assert hv("lab", "capture", "--to", str(target)).code == 2
    assert target.read_text() == "x"
    before = lab.calls()
    assert hv("lab", "capture", "hostA", "--to", str(target), "--force").code == 0
    # hostA: doctor_host, fabric_get, one vm_show per VM name; then the AD read
    assert lab.calls() - before == 2 + 3 + 1
    assert [h["name"] for h in yaml.safe_load(target.read_text())["hosts"]] == ["hostA"]
