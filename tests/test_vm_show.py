"""hvauto vm show: one VM in detail, its files, and where it can move."""

from __future__ import annotations

from typing import Any

import pytest

from hvauto.errors import ExitCode
from tests.conftest import Lab, hv


def _change_vm(lab: Lab, name: str, **changes: Any) -> None:
    with lab.store.transaction() as est:
        vm = next(v for v in est.all("vm") if v["name"] == name)
        vm.update(changes)
        est.put("vm", vm["key"], vm, host=vm["host"])


def test_vm01_shows_its_disk_adapter_files_and_moves(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    res = hv("vm", "show", "vm01")
    assert res.code == 0, res.err
    out = res.out
    assert "vm01 on hostA" in out
    assert "D:\\Hyper-V\\vm01\\Virtual Hard Disks\\vm01.vhdx  Dynamic  60.0 GiB  22.0 GiB" in out
    assert "Network Adapter  External" in out
    assert "disk           local D:  D:\\Hyper-V\\vm01\\Virtual Hard Disks\\vm01.vhdx" in out
    assert "hostB: ready" in out and "hv12: blocked" in out
    assert all(len(line) <= 80 for line in out.splitlines()), max(out.splitlines(), key=len)


def test_parent_chain_checkpoint_iso_and_share_files(lab: Lab) -> None:
    base = "\\\\fs01\\VMs\\gold\\ws2022.vhdx"
    _change_vm(lab, "vm02", disks=[{
        "path": "D:\\Hyper-V\\vm02\\vm02_8A1F.avhdx", "size": 40 * 1024**3, "file_size": 2 * 1024**3,
        "parent": {"path": "D:\\Hyper-V\\vm02\\vm02.vhdx", "file_size": 9 * 1024**3,
                   "parent": {"path": base, "file_size": 12 * 1024**3}}}],
        checkpoints=[{"name": "before patch", "files": []}], iso="\\\\fs01\\ISO\\ws2022.iso")
    doc = hv("vm", "show", "vm02", "--from", "hostA", "-o", "json").json()
    assert doc["event"] == "result" and doc["host"] == "hostA"
    disk = doc["vm"]["disks"][0]
    assert disk["type"] == "Differencing"
    assert [p["path"] for p in disk["parents"]] == ["D:\\Hyper-V\\vm02\\vm02.vhdx", base]
    assert [c["name"] for c in doc["vm"]["checkpoints"]] == ["before patch"]
    where = {f["path"]: (f["what"], f["where"]) for f in doc["files"]}
    assert where[base] == ("parent disk", "share \\\\fs01\\VMs")
    assert where["\\\\fs01\\ISO\\ws2022.iso"] == ("DVD (ISO)", "share \\\\fs01\\ISO")
    text = hv("vm", "show", "vm02", "--no-moves")
    assert "Checkpoints" in text.out and "before patch" in text.out
    assert "  parent: " + base in text.out
    assert "Can move to" not in text.out


def test_dynamic_memory_is_shown_with_its_range(lab: Lab) -> None:
    _change_vm(lab, "web01", memory_dynamic=True, memory_minimum=2 * 1024**3, memory_maximum=16 * 1024**3,
               memory_assigned=6 * 1024**3)
    doc = hv("vm", "show", "web01", "--no-moves", "-o", "json").json()
    assert doc["vm"]["memory"] == {"startup_bytes": 8 * 1024**3, "assigned_bytes": 6 * 1024**3, "dynamic": True,
                                   "minimum_bytes": 2 * 1024**3, "maximum_bytes": 16 * 1024**3}
    assert "dynamic 2.0 GiB to 16.0 GiB" in hv("vm", "show", "web01", "--no-moves").out


def test_no_such_vm_is_4_and_no_moves_reads_only_the_hosts(lab: Lab) -> None:
    assert hv("vm", "show", "nosuch").code == ExitCode.NOT_FOUND
    before = lab.calls()
    assert hv("vm", "show", "vm01", "--from", "hostA", "--no-moves").code == 0
    assert lab.calls() - before == 1


def test_render_contacts_no_host(lab: Lab) -> None:
    res = hv("vm", "show", "vm01", "--render", "-o", "json")
    assert res.code == 0 and {s["template"] for s in res.json_lines()} >= {"vm_show"}
    assert lab.calls() == 0
