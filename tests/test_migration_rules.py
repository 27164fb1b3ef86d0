"""Hyper-V's migration rules, situation by situation, each built from an estate file.

Every case in ``tests/estates/migration.yaml`` is ``tests/estates/pair.yaml`` with a patch, loaded
with ``hvauto lab init --estate``. A blocked case checks both halves of a rule: the preflight
refuses the move with the problem and its fix (exit 10, nothing started), and the lab, asked
directly (``MigrateVirtualSystemToHost`` as the template would call it, no preflight), fails the
job the way Windows does. So the preflight and the lab cannot drift apart unnoticed.
"""

from __future__ import annotations

import copy
import ntpath
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hvauto.errors import ExitCode
from hvauto.hyperv import ACTIVE_JOB_STATES, MOVE_JOB_TYPES, JobState
from hvauto.lab.transport import store_for
from hvauto.ops.migrate.preflight import evaluate

from .conftest import hv

HERE = Path(__file__).resolve().parent / "estates"
BASE = yaml.safe_load((HERE / "pair.yaml").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "migration.yaml").read_text(encoding="utf-8"))
FAST = ("--poll-interval", "0.01")


def merge(base: Any, patch: Any) -> Any:
    """Mappings merge; lists of named mappings merge by name (``_delete: true`` removes one); others replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    if (isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i
                                                                   for i in [*base, *patch])):
        out_list = [copy.deepcopy(i) for i in base]
        for item in patch:
            at = next((n for n, b in enumerate(out_list) if b["name"] == item["name"]), None)
            if item.get("_delete"):
                if at is not None:
                    out_list.pop(at)
            elif at is None:
                out_list.append(item)
            else:
                out_list[at] = merge(out_list[at], item)
        return out_list
    return copy.deepcopy(patch)


def build_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: dict[str, Any]) -> Path:
    estate = tmp_path / "estate.yaml"
    estate.write_text(yaml.safe_dump(merge(BASE, case.get("patch") or {}), sort_keys=False), encoding="utf-8")
    res = hv("lab", "init", str(tmp_path / "lab"), "--estate", str(estate))
    assert res.code == 0, res.err
    monkeypatch.chdir(tmp_path / "lab")
    assert hv("lab", "speed", "5000").code == 0
    return tmp_path / "lab"


def force(lab: Path, argv: list[str]) -> dict[str, Any]:
    """Start the move with MigrateVirtualSystemToHost directly (no preflight) and wait for its job to end."""
    from hvauto.inventory import load
    from hvauto.session import Session

    live = "--live" in argv
    vm, dest = argv[1], argv[2]
    path = argv[argv.index("--storage-path") + 1] if "--storage-path" in argv else ""
    with Session(load(lab / "hvauto.toml")) as session:
        found = session.run("hostA", "vm_list", {"Name": [vm]}).data["vms"][0]
        dst = session.run(dest, "migrate_dest_preflight", {"Name": vm, "VmId": found["id"], "Path": path}).data
        start = session.run("hostA", "migrate_start", {
            "VmId": found["id"], "DestinationHost": session.host(dest).fqdn,
            "ListenerAddress": dst["listener_addresses"],
            "DestinationStoragePath": "" if live else (path or ntpath.join(dst["vm_path"], vm)),
            "IncludeStorage": not live}).data
        job_id = start["job"]["instance_id"]
        for _ in range(500):
            jobs = session.run("hostA", "migrate_status", {"VmId": found["id"]}).data["jobs"]
            job = next(j for j in jobs if j["instance_id"] == job_id)
            if job["job_state"] not in ACTIVE_JOB_STATES:
                return dict(job)
            time.sleep(0.01)
    raise AssertionError("the forced move did not end")


def _ids(case: dict[str, Any]) -> str:
    return str(case["name"])


@pytest.mark.parametrize("case", [c for c in CASES if "blocked" in c], ids=_ids)
def test_preflight_blocks_with_the_fix_and_the_lab_refuses_it_if_forced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: dict[str, Any]) -> None:
    lab = build_lab(tmp_path, monkeypatch, case)
    res = hv("migrate", *case["argv"], "-o", "json", *FAST)
    assert res.code == ExitCode.PREFLIGHT, res.out + res.err
    want = case["blocked"]
    found = [p for p in res.json()["problems"] if p["check"] == want["check"]]
    assert found, [p["check"] for p in res.json()["problems"]]
    assert all(p["blocking"] for p in found)
    assert any(want["fix"] in (p["fix"] or "") for p in found), [p["fix"] for p in found]
    store = store_for(str((lab / "lab" / "estate.db").resolve()))
    assert store.calls(template="migrate_start") == 0
    job = force(lab, case["argv"])
    assert job["job_state"] == JobState.EXCEPTION and job["job_type"] in MOVE_JOB_TYPES
    assert case["lab"] in job["error_description"], job["error_description"]


@pytest.mark.parametrize("case", [c for c in CASES if c.get("moves")], ids=_ids)
def test_a_move_hyper_v_allows_is_not_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              case: dict[str, Any]) -> None:
    build_lab(tmp_path, monkeypatch, case)
    what_if = hv("migrate", *case["argv"], "--what-if", "-o", "json", *FAST)
    assert what_if.code == 0, what_if.err
    checks = {p["check"] for p in what_if.json()["problems"]}
    assert not checks & set(case.get("absent") or []), checks
    res = hv("migrate", *case["argv"], "-o", "json", *FAST)
    assert res.code == 0, res.err
    dest = case["argv"][2]
    vms = hv("vm", "list", dest, "-o", "json").json()["vms"]
    moved = next(v for v in vms if v["name"] == case["argv"][1])
    for key, value in (case.get("after") or {}).items():
        assert moved[key] == value


def _answers(**vm: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    mig = {"enabled": True, "auth_type": "Kerberos", "use_any_network": False, "networks": ["10.0.50.0/24"],
           "max_vm_migrations": 2, "max_storage_migrations": 2}
    src = {"migration": mig, "cpu_vendor": "GenuineIntel", "addresses": ["10.0.50.21/24"],
           "vms": [{"name": "vm01", "id": "x", "state": "Running", "version": "10.0", "memory_startup_bytes": 1,
                    "memory_assigned_bytes": 1, "clustered": False, "disks": [], "switches": [], **vm}],
           "check": {"ran": True, "error": None, "incompatibilities": []}}
    dst = {"migration": mig, "cpu_vendor": "GenuineIntel", "listener_addresses": ["10.0.50.22"], "switches": [],
           "supported_versions": ["10.0"], "memory_free_bytes": 2**40, "path": {"drive_exists": True,
                                                                                  "free_bytes": 2**40}, "vms": []}
    return src, dst


@pytest.mark.parametrize(("auth", "warned"), [("ntlm", True), ("kerberos", False)])
def test_an_ntlm_session_is_warned_about_not_blocked(auth: str, warned: bool) -> None:
    from hvauto.ops.ad import MIGRATION_SERVICE, ADComputer

    src, dst = _answers()
    comp = ADComputer(query="hostA", found=True, name="hostA", sam="hostA$", dns="hostA.lab.test", sid="S-1-5-21-1",
                      allowed_to_delegate_to=[f"{MIGRATION_SERVICE}/hostB.lab.test", "cifs/hostB.lab.test"],
                      trusted_to_auth_for_delegation=True)
    problems, _ = evaluate(vm_name="vm01", mode="shared-nothing", source="hostA", dest="hostB",
                           storage_path="D:\\VMs\\vm01", src=src, dst=dst, computers={"hosta": comp},
                           source_os="2022", dest_fqdn="hostB.lab.test", dest_os="2022", session_auth=auth)
    session = [p for p in problems if p.check == "session.auth"]
    assert [p.blocking for p in session] == ([False] if warned else [])
    assert not [p for p in problems if p.blocking]


def test_from_settles_a_name_clash_with_the_destination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second vm01 (another VMId) on the destination: --from hostA says which one moves; without it, ambiguous."""
    case = {"patch": {"hosts": [{"name": "hostB", "vms": [
        {"name": "vm01", "id": "6f1c2d3e-0000-4000-8000-00000000b001", "state": "Off", "version": "10.0",
         "memory": {"startup": "1 GiB"}, "path": "D:\\Other\\vm01"}]}]}}
    build_lab(tmp_path, monkeypatch, case)
    assert hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST).code == ExitCode.NOT_FOUND
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", "--from", "hostA", "-o", "json", *FAST)
    assert res.code == 0, res.err
    assert res.json_lines()[-1]["source"] == "hostA"
    names = [v["name"] for v in hv("vm", "list", "hostB", "-o", "json").json()["vms"]]
    assert names == ["vm01", "vm01"]
    assert hv("vm", "list", "hostA", "-o", "json").json()["vms"] == []


def test_a_planned_vm_destroysystem_refuses_is_reported_not_counted(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lab = build_lab(tmp_path, monkeypatch, {"patch": {}})
    hv("lab", "speed", "0.01")
    vm_id = hv("vm", "list", "hostA", "-o", "json").json()["vms"][0]["id"]
    from hvauto.inventory import load
    from hvauto.session import Session

    with Session(load(lab / "hvauto.toml")) as session:
        session.run("hostA", "migrate_start", {"VmId": vm_id, "DestinationHost": "hostB.lab.test",
                                               "ListenerAddress": ["10.0.50.22"],
                                               "DestinationStoragePath": "D:\\Hyper-V\\vm01", "IncludeStorage": True})
    store = store_for(str((lab / "lab" / "estate.db").resolve()))
    with store.transaction() as est:
        job = next(j for j in est.all("migration_job") if j["job_type"] in MOVE_JOB_TYPES)
        # 95% through: the Terminate is refused (4097), the move goes on, and its planned VM cannot be destroyed.
        total = float(job["disk_bytes"]) + float(job["memory_bytes"])
        est.put("migration_job", job["key"], {**job, "bytes_done": 0.95 * total, "advanced_at": time.time()},
                host="hostA")
    res = hv("migrate", "--cancel", "vm01", "-o", "json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["cancelled_jobs"] == [] and out["planned_removed_from"] == []
    assert out["planned_left"] == ["hostB: DestroySystem returned 32775 (invalid state for this operation)"]
    assert out["changed"] is False
