"""Migration through the real CLI and the in-process lab: preflight, progress, verify, idempotency, faults."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from hvauto.errors import ExitCode
from hvauto.hyperv import MOVE_JOB_TYPES
from hvauto.lab.estate import GiB

from .conftest import Lab, hv

FAST = ("--poll-interval", "0.01")


def set_speed(lab: Lab, scale: float) -> None:
    with lab.store.transaction() as est:
        est.set_meta("time_scale", str(scale))


def meta(lab: Lab, key: str) -> str | None:
    with lab.store.transaction() as est:
        return est.meta(key)


def vm_record(lab: Lab, name: str) -> dict[str, Any]:
    with lab.store.transaction() as est:
        return next(v for v in est.all("vm") if v["name"] == name)


def set_vm(lab: Lab, name: str, **changes: Any) -> None:
    with lab.store.transaction() as est:
        vm = next(v for v in est.all("vm") if v["name"] == name)
        vm.update(changes)
        est.put("vm", vm["key"], vm, host=vm["host"])


def set_migration(lab: Lab, host: str, **changes: Any) -> None:
    with lab.store.transaction() as est:
        h = est.get("host", host)
        assert h is not None
        h["hyperv"]["migration"].update(changes)
        est.put("host", host, h, host=host)


def estate(lab: Lab) -> dict[str, Any]:
    """Every object but finished migration jobs, which the lab expires after a while (TimeBeforeRemoval)."""
    return {k: v for k, v in lab.store.snapshot().items() if k != "migration_job"}


def planned_vms(lab: Lab) -> list[dict[str, Any]]:
    with lab.store.transaction() as est:
        return est.all("planned_vm")


@pytest.fixture
def fast_lab(lab: Lab) -> Lab:
    set_speed(lab, 2000)
    return lab


def test_shared_nothing_moves_vm01_with_a_progress_bar_then_a_rerun_is_a_noop(fast_lab: Lab) -> None:
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert res.code == 0, res.err
    assert "100%" in res.err and "[#" in res.err
    assert "moved from hostA to hostB" in res.out
    assert "verified: vm01 is gone from hostA" in res.out
    listed = hv("vm", "list", "hostB", "-o", "json").json()["vms"]
    vm01 = next(v for v in listed if v["name"] == "vm01")
    assert vm01["state"] == "Running"
    assert all(d["path"].startswith("D:\\Hyper-V\\vm01\\") for d in vm01["disks"])
    assert "vm01" not in {v["name"] for v in hv("vm", "list", "hostA", "-o", "json").json()["vms"]}
    assert fast_lab.calls(template="migrate_start") == 1

    before = estate(fast_lab)
    again = hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert again.code == 0, again.err
    assert "already on hostB" in again.out and "nothing to do" in again.out
    assert fast_lab.calls(template="migrate_start") == 1
    assert estate(fast_lab) == before


def test_free_space_follows_the_move(fast_lab: Lab) -> None:
    from hvauto.lab.estate import volume_free

    with fast_lab.store.transaction() as est:
        a_before, b_before = volume_free(est, "hostA", "D"), volume_free(est, "hostB", "D")
    assert hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST).code == 0
    with fast_lab.store.transaction() as est:
        assert volume_free(est, "hostA", "D") == (a_before or 0) + 22 * GiB
        assert volume_free(est, "hostB", "D") == (b_before or 0) - 22 * GiB


def test_json_output_is_progress_lines_then_a_result(fast_lab: Lab) -> None:
    res = hv("migrate", "--shared-nothing", "vm02", "hostB", "-o", "json", *FAST)
    assert res.code == 0, res.err
    lines = res.json_lines()
    assert [line["event"] for line in lines][-1] == "result"
    progress = [line for line in lines if line["event"] == "progress"]
    assert progress and progress[-1]["percent"] == 100 and progress[-1]["state"] == "Completed"
    result = lines[-1]
    assert result["changed"] is True and result["dest"] == "hostB"
    assert result["bytes_moved"] == 9 * GiB  # vm02 is off: its disks, no memory


def test_moving_back_fails_preflight_naming_the_missing_delegation(fast_lab: Lab) -> None:
    assert hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST).code == 0
    before = estate(fast_lab)
    res = hv("migrate", "--shared-nothing", "vm01", "hostA", *FAST)
    assert res.code == ExitCode.PREFLIGHT
    assert "hostB may not delegate to hostA" in res.err
    assert "cifs/hostA" in res.err and "Microsoft Virtual System Migration Service/hostA.lab.test" in res.err
    assert "hvauto delegation grant hostB --to hostA" in res.err
    assert "nothing was changed" in res.err
    assert fast_lab.calls(template="migrate_start") == 1
    assert estate(fast_lab) == before


def test_hv12_lists_every_problem_at_once_and_moves_nothing(fast_lab: Lab) -> None:
    before = estate(fast_lab)
    res = hv("migrate", "--shared-nothing", "vm02", "hv12", "-o", "json", *FAST)
    assert res.code == ExitCode.PREFLIGHT
    checks = {p["check"] for p in res.json()["problems"] if p["blocking"]}
    assert {"dest.migration", "dest.auth", "dest.switch", "dest.config_version", "delegation"} <= checks
    fixes = " ".join(p["fix"] for p in res.json()["problems"])
    assert "hvauto host migration hv12 --enable --auth kerberos" in fixes
    assert "hvauto switch create hv12 External" in fixes
    assert fast_lab.calls(template="migrate_start") == 0
    assert estate(fast_lab) == before


def test_missing_switch_comes_from_the_hosts_own_check_with_message_33012(fast_lab: Lab) -> None:
    with fast_lab.store.transaction() as est:
        est.delete("switch", "hostB/External")
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", "-o", "json", *FAST)
    assert res.code == ExitCode.PREFLIGHT
    switch = [p for p in res.json()["problems"] if p["check"] == "dest.switch"]
    assert len(switch) == 1 and switch[0]["message_id"] == 33012 and switch[0]["source"] == "CheckVirtualSystemIsMigratable"


def test_what_if_prints_plan_and_preflight_and_changes_nothing(fast_lab: Lab) -> None:
    before = estate(fast_lab)
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", "--what-if")
    assert res.code == 0, res.err
    assert "plan (what-if" in res.out and "MigrateVirtualSystemToHost (VirtualSystemAndStorage)" in res.out
    assert "preflight: no problems found" in res.out
    assert fast_lab.calls(template="migrate_start") == 0
    assert estate(fast_lab) == before
    blocked = hv("migrate", "--shared-nothing", "vm02", "hv12", "--what-if")
    assert blocked.code == ExitCode.PREFLIGHT and "[BLOCKING]" in blocked.out


@pytest.mark.parametrize("storage", [[], ["--storage-path", "D:\\VMs\\vm01"]])
def test_preflight_asks_each_host_once(fast_lab: Lab, storage: list[str]) -> None:
    """Without --storage-path the destination's default VM folder comes from its preflight answer, read once."""
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", "--what-if", *storage)
    assert res.code == 0, res.err
    assert fast_lab.calls(host="hostB", template="migrate_dest_preflight") == 1
    assert fast_lab.calls(host="hostA", template="migrate_source_preflight") == 1


def test_render_prints_the_scripts_and_contacts_no_host(fast_lab: Lab) -> None:
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", "--from", "hostA", "--render")
    assert res.code == 0, res.err
    for template in ("migrate_source_preflight", "migrate_dest_preflight", "ad_computer_get", "migrate_start",
                     "migrate_status"):
        assert f": {template} on " in res.out
    start = res.out.split(": migrate_start on hostA", 1)[1].split("# ==== step ", 1)[0]
    assert "Invoke-CimMethod -InputObject $svc -MethodName 'MigrateVirtualSystemToHost'" in start
    assert "$in.NewResourceSettingData = $moved.resources" in start  # shared-nothing: each VHD's new path
    for gone in ("Move-VM", "Move-VMStorage", "-AsJob"):
        assert gone not in start
    assert fast_lab.calls() == 0


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["migrate", "--shared-nothing", "nosuchvm", "hostB"], ExitCode.NOT_FOUND, "was not found"),
        (["migrate", "--shared-nothing", "vm01", "nosuchhost"], ExitCode.USAGE, "unknown host"),
        (["migrate", "--shared-nothing", "vm01", "dc01"], ExitCode.USAGE, "not a Hyper-V host"),
        (["migrate", "--shared-nothing", "vm01", "hostB", "--storage-path", "relative\\dir"], ExitCode.USAGE,
         "not an absolute Windows path"),
        (["migrate", "vm01", "hostB"], ExitCode.USAGE, "exactly one of"),
        (["migrate", "--shared-nothing", "vm01"], ExitCode.USAGE, "destination host is needed"),
    ],
)
def test_bad_input_and_unknown_vms(fast_lab: Lab, argv: list[str], code: int, needle: str) -> None:
    res = hv(*argv)
    assert res.code == code, res.err
    assert needle in res.err
    assert "Traceback" not in res.err
    assert fast_lab.calls(template="migrate_start") == 0
    if code == ExitCode.USAGE:
        assert fast_lab.calls() == 0


def test_a_vm_on_two_hosts_is_ambiguous(fast_lab: Lab) -> None:
    with fast_lab.store.transaction() as est:
        vm = next(v for v in est.all("vm") if v["name"] == "vm02")
        twin = {**vm, "key": "twin", "id": "twin", "host": "hostB"}
        est.put("vm", "twin", twin, host="hostB")
    res = hv("migrate", "--shared-nothing", "vm02", "hv12")
    assert res.code == ExitCode.NOT_FOUND
    assert "more than one host: hostA, hostB" in res.err
    assert "--from" in res.err


def test_a_move_failing_half_way_cleans_the_planned_vm_and_keeps_the_vm(fast_lab: Lab) -> None:
    set_vm(fast_lab, "vm02", lab_fail_migration=50)
    res = hv("migrate", "--shared-nothing", "vm02", "hostB", *FAST)
    assert res.code == ExitCode.REMOTE
    assert "failed at migration destination 'HOSTB'" in res.err
    assert "planned VM it left on hostB was removed" in res.err
    assert vm_record(fast_lab, "vm02")["host"].lower() == "hosta"
    assert planned_vms(fast_lab) == []
    # The fault fires once: the next attempt goes through.
    assert hv("migrate", "--shared-nothing", "vm02", "hostB", *FAST).code == 0


def test_faults_while_polling_never_start_a_second_move(fast_lab: Lab) -> None:
    set_speed(fast_lab, 50)  # vm01 takes ~0.1 s of real time
    store = fast_lab.store
    injected = threading.Event()

    from hvauto.ops import migrate as ops

    def on_progress(p: ops.MoveProgress) -> None:
        if not injected.is_set():
            injected.set()
            store.set_fault("hostA", fail_next=5, kind="timeout")  # the answers of five polls are lost

    from hvauto.remote.retry import NO_RETRY

    with fast_lab.session(retry=NO_RETRY) as session:
        res = ops.migrate(session, vm="vm01", dest="hostB", on_progress=on_progress, poll_interval=0.01)
    assert res.changed and res.verified
    assert injected.is_set()
    assert fast_lab.calls(host="hostA", template="migrate_start") == 1
    assert store.calls(host="hostA", template="migrate_status") >= 6


def test_a_lost_answer_to_the_start_is_reinspected_not_resent(fast_lab: Lab) -> None:
    from hvauto.ops import migrate as ops
    from hvauto.remote.retry import RetryPolicy

    store = fast_lab.store
    with fast_lab.session(retry=RetryPolicy(attempts=4, initial=0.01, maximum=0.01, jitter=0)) as session:
        original = session.run_script

        def run_script(host: str, script: Any, **kw: Any) -> Any:
            if script.template == "migrate_start":
                store.set_fault(host, fail_next=1, kind="timeout")
            return original(host, script, **kw)

        session.run_script = run_script  # type: ignore[method-assign]
        with pytest.raises(Exception) as info:
            ops.migrate(session, vm="vm01", dest="hostB", poll_interval=0.01)
    assert "nothing was sent again" in str(info.value)
    assert store.calls(host="hostA", template="migrate_start") == 1


def test_a_running_move_is_resumed_not_restarted(fast_lab: Lab) -> None:
    # About a second over the one 10 GbE migration uplink: still running when the preflight looks, even when busy.
    set_speed(fast_lab, 20)
    with fast_lab.session() as session:
        session.run("hostA", "migrate_start", {"VmId": vm_record(fast_lab, "vm01")["id"], "DestinationHost": "hostB.lab.test",
                                               "DestinationStoragePath": "D:\\Hyper-V\\vm01", "IncludeStorage": True})
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert res.code == 0, res.err
    assert "resumed watching" in res.out
    assert fast_lab.calls(template="migrate_start") == 1


def test_cancel_ends_the_job_and_removes_the_planned_vm(fast_lab: Lab) -> None:
    set_speed(fast_lab, 0.01)  # the move would take minutes
    vm_id = vm_record(fast_lab, "vm01")["id"]
    with fast_lab.session() as session:
        session.run("hostA", "migrate_start", {"VmId": vm_id, "DestinationHost": "hostB.lab.test",
                                               "DestinationStoragePath": "D:\\Hyper-V\\vm01", "IncludeStorage": True})
    assert len(planned_vms(fast_lab)) == 1
    res = hv("migrate", "--cancel", "vm01")
    assert res.code == 0, res.err
    assert "cancelled 1 migration job on hostA" in res.out and "removed the planned VM from hostB" in res.out
    assert planned_vms(fast_lab) == []
    assert vm_record(fast_lab, "vm01")["host"].lower() == "hosta"
    again = hv("migrate", "--cancel", "vm01")
    assert again.code == 0 and "nothing to cancel" in again.out


def test_completion_is_applied_exactly_once_under_concurrent_polls(fast_lab: Lab) -> None:
    set_speed(fast_lab, 10**6)
    vm_id = vm_record(fast_lab, "vm01")["id"]
    with fast_lab.session() as session:
        session.run("hostA", "migrate_start", {"VmId": vm_id, "DestinationHost": "hostB.lab.test",
                                               "DestinationStoragePath": "D:\\Hyper-V\\vm01", "IncludeStorage": True})

    def poll(host: str) -> None:
        with fast_lab.session() as s:
            s.run(host, "migrate_status", {"VmId": vm_id})

    threads = [threading.Thread(target=poll, args=(h,)) for h in ("hostA", "hostB") * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert meta(fast_lab, "migrations_applied") == "1"
    assert vm_record(fast_lab, "vm01")["host"].lower() == "hostb"
    assert vm_record(fast_lab, "vm01")["disks"][0]["path"] == "D:\\Hyper-V\\vm01\\vm01.vhdx"


def test_live_move_needs_storage_on_a_share(fast_lab: Lab) -> None:
    res = hv("migrate", "--live", "vm01", "hostB", "-o", "json", *FAST)
    assert res.code == ExitCode.PREFLIGHT
    assert {p["check"] for p in res.json()["problems"]} >= {"vm.storage"}
    share = "\\\\fs01.lab.test\\VMs\\vm01\\vm01.vhdx"
    set_vm(fast_lab, "vm01", path="\\\\fs01.lab.test\\VMs\\vm01",
           disks=[{"path": share, "size": 60 * GiB, "file_size": 22 * GiB}])
    # Every file on a share, but the share does not exist yet: still blocked, with the fix.
    missing = hv("migrate", "--live", "vm01", "hostB", "-o", "json", *FAST)
    assert missing.code == ExitCode.PREFLIGHT
    assert [p["fix"] for p in missing.json()["problems"] if p["check"] == "dest.share"] == [
        "hvauto smb share create VMs --server fs01 --path PATH --hosts hostA,hostB"]
    assert hv("smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs",
              "--hosts", "hostA,hostB").code == 0
    ok = hv("migrate", "--live", "vm01", "hostB", *FAST)
    assert ok.code == 0, ok.err
    moved = vm_record(fast_lab, "vm01")
    assert moved["host"].lower() == "hostb" and moved["disks"][0]["path"] == share


def test_storage_move_moves_the_files_on_the_same_host(fast_lab: Lab) -> None:
    res = hv("storage", "move", "vm02", "C:\\VMs\\vm02", *FAST)
    assert res.code == 0, res.err
    rec = vm_record(fast_lab, "vm02")
    assert rec["host"].lower() == "hosta" and rec["disks"][0]["path"] == "C:\\VMs\\vm02\\vm02.vhdx"
    again = hv("storage", "move", "vm02", "C:\\VMs\\vm02", *FAST)
    assert again.code == 0 and "nothing to do" in again.out
    assert fast_lab.calls(template="storage_move_start") == 1


# -- evacuate ---------------------------------------------------------------------------------------------------

def test_evacuate_empties_hostA_within_the_migration_limits(fast_lab: Lab) -> None:
    set_speed(fast_lab, 200)
    set_migration(fast_lab, "hostB", max_vm_migrations=1)
    res = hv("evacuate", "hostA", "-o", "json", *FAST)
    assert res.code == 0, res.err
    result = res.json_lines()[-1]
    assert {v["vm"]: v["status"] for v in result["vms"]} == {"vm01": "moved", "vm02": "moved", "web01": "moved"}
    assert {v["dest"] for v in result["vms"]} == {"hostB"}  # hv12 fits none of them (version, switch, migration)
    assert hv("vm", "list", "hostA", "-o", "json").json()["vms"] == []
    assert meta(fast_lab, "peak_submitted_max_vm_migrations/hostb") == "1"
    assert int(meta(fast_lab, "peak_submitted_max_vm_migrations/hosta") or 0) <= 2


def test_evacuate_runs_moves_in_parallel_up_to_the_limit(fast_lab: Lab) -> None:
    set_speed(fast_lab, 50)
    res = hv("evacuate", "hostA", *FAST)
    assert res.code == 0, res.err
    assert meta(fast_lab, "peak_max_vm_migrations/hosta") == "2"
    assert meta(fast_lab, "peak_submitted_max_vm_migrations/hosta") == "2"


def test_evacuate_with_one_failure_moves_the_others_and_says_so(fast_lab: Lab) -> None:
    set_speed(fast_lab, 200)
    set_vm(fast_lab, "vm02", lab_fail_migration=40)
    res = hv("evacuate", "hostA", *FAST)
    assert res.code == ExitCode.PARTIAL, res.err
    assert "2 moved, 1 failed" in res.out
    rows = {line.split()[0]: line for line in res.out.splitlines()[2:]}
    assert "failed" in rows["vm02"] and "moved" in rows["vm01"] and "moved" in rows["web01"]
    assert vm_record(fast_lab, "vm02")["host"].lower() == "hosta"
    assert planned_vms(fast_lab) == []


def test_evacuate_where_nothing_fits_is_a_blocking_preflight(fast_lab: Lab) -> None:
    res = hv("evacuate", "hostA", "--to", "hv12", *FAST)
    assert res.code == ExitCode.PREFLIGHT
    assert "0 moved" in res.out and "3 skipped" in res.out
    assert fast_lab.calls(template="migrate_start") == 0


def test_evacuate_what_if_places_and_changes_nothing(fast_lab: Lab) -> None:
    before = estate(fast_lab)
    res = hv("evacuate", "hostA", "--what-if")
    assert res.code == 0, res.err
    assert "3 would move" in res.out
    assert estate(fast_lab) == before


# -- Ctrl-C -------------------------------------------------------------------------------------------------------

def _interrupt_at_first_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.cli import migrate as cli

    def interrupt(self: object, p: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.Bar, "__call__", interrupt)


def test_ctrl_c_without_a_terminal_leaves_the_move_running_and_says_how_to_follow_it(
        fast_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    set_speed(fast_lab, 20)
    with monkeypatch.context() as m:
        _interrupt_at_first_progress(m)
        res = hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert res.code == ExitCode.INTERRUPTED
    assert "hvauto migrate --watch vm01" in res.err and "hvauto migrate --cancel vm01" in res.err
    assert fast_lab.calls(template="migrate_cancel") == 0
    watched = hv("migrate", "--watch", "vm01", *FAST)
    assert watched.code == 0, watched.err
    assert "Completed" in watched.out
    assert vm_record(fast_lab, "vm01")["host"].lower() == "hostb"
    assert fast_lab.calls(template="migrate_start") == 1


def test_ctrl_c_on_a_terminal_asks_and_cancels(fast_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    set_speed(fast_lab, 1)
    _interrupt_at_first_progress(monkeypatch)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []

    def confirm(text: str, **kw: Any) -> bool:
        asked.append(text)
        return True

    monkeypatch.setattr(typer, "confirm", confirm)
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert res.code == ExitCode.INTERRUPTED
    assert asked and "Cancel the migration of vm01" in asked[0]
    assert "migration cancelled" in res.err
    assert fast_lab.calls(template="migrate_cancel") == 1
    assert vm_record(fast_lab, "vm01")["host"].lower() == "hosta"
    assert planned_vms(fast_lab) == []


def test_lab_speed_sets_the_time_scale(lab: Lab) -> None:
    assert hv("lab", "speed", "25").code == 0
    assert meta(lab, "time_scale") == "25.0"
    assert "25.0" in hv("lab", "speed").out


def test_a_clustered_vm_moves_live_through_the_cluster(fast_lab: Lab) -> None:
    csv = "C:\\ClusterStorage\\Volume1\\vm01\\vm01.vhdx"
    for host in ("hostA", "hostB"):
        with fast_lab.store.transaction() as est:
            h = est.get("host", host)
            assert h is not None
            est.put("host", host, {**h, "cluster": "clu1"}, host=host)
    set_vm(fast_lab, "vm01", clustered=True, disks=[{"path": csv, "size": 60 * GiB, "file_size": 22 * GiB}])
    blocked = hv("migrate", "--shared-nothing", "vm01", "hostB", "-o", "json", *FAST)
    assert blocked.code == ExitCode.PREFLIGHT
    vm_problem = next(p for p in blocked.json()["problems"] if p["check"] == "vm.clustered")
    assert vm_problem["fix"] == "hvauto migrate --live vm01 hostB"
    res = hv("migrate", "--live", "vm01", "hostB", "-o", "json", *FAST)
    assert res.code == 0, res.err
    assert res.json_lines()[-1]["mode"] == "cluster-live"
    assert fast_lab.calls(template="migrate_cluster_start") == 1
    assert fast_lab.calls(template="migrate_start") == 0
    moved = vm_record(fast_lab, "vm01")
    assert moved["host"].lower() == "hostb" and moved["disks"][0]["path"] == csv


def test_a_vm_already_moving_elsewhere_is_not_moved_again(fast_lab: Lab) -> None:
    set_speed(fast_lab, 0.01)
    with fast_lab.session() as session:
        session.run("hostA", "storage_move_start", {"VmId": vm_record(fast_lab, "vm01")["id"],
                                                    "DestinationStoragePath": "C:\\VMs\\vm01"})
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST)
    assert res.code == ExitCode.PREFLIGHT
    assert "already being moved (a storage move)" in res.err and "hvauto migrate --cancel vm01" in res.err
    assert fast_lab.calls(template="migrate_start") == 0


def test_ctrl_c_during_evacuate_starts_no_more_moves_and_leaves_running_ones(
        fast_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    set_speed(fast_lab, 1)
    _interrupt_at_first_progress(monkeypatch)
    res = hv("evacuate", "hostA", *FAST)
    assert res.code == ExitCode.INTERRUPTED
    assert "hvauto migrate --watch VM" in res.err
    started = fast_lab.calls(template="migrate_start")
    assert 1 <= started <= 2  # the moves already started (at most the limit); the third never starts
    with fast_lab.store.transaction() as est:
        assert sum(1 for j in est.all("migration_job") if j["state"] == 4 and j["job_type"] in MOVE_JOB_TYPES) == started


def test_evacuate_max_parallel_caps_the_moves_below_the_host_limits(fast_lab: Lab) -> None:
    set_speed(fast_lab, 100)
    res = hv("evacuate", "hostA", "--max-parallel", "1", *FAST)
    assert res.code == 0, res.err
    assert meta(fast_lab, "peak_submitted_max_vm_migrations/hosta") == "1"


def test_lab_moves_share_the_migration_link_recomputed_as_moves_end(fast_lab: Lab) -> None:
    """Two moves over hostA's LiveMigration vNIC (one 10 GbE uplink, not the sum of all four NICs) share it while
    both run; when the smaller ends, the other gets the whole link."""
    set_speed(fast_lab, 1)
    set_vm(fast_lab, "vm01", state="Off", disks=[{"path": "D:\\Hyper-V\\vm01\\vm01.vhdx", "size": 60 * GiB,
                                                  "file_size": 10 * GiB}])
    set_vm(fast_lab, "vm02", disks=[{"path": "D:\\Hyper-V\\vm02\\vm02.vhdx", "size": 60 * GiB,
                                     "file_size": 30 * GiB}])
    with fast_lab.session() as session:
        for name in ("vm01", "vm02"):
            _start(fast_lab, name)
        link = 10 * 10**9 / 8
        shift = 20.0
        with fast_lab.store.transaction() as est:
            for j in est.all("migration_job"):
                moved = {k: float(j[k]) - shift for k in ("queued_at", "started_at", "advanced_at") if j.get(k)}
                est.put("migration_job", j["key"], {**j, **moved}, host=j["source"])
        session.run("hostA", "migrate_status", {"VmId": vm_record(fast_lab, "vm02")["id"]})
    with fast_lab.store.transaction() as est:
        jobs = {j["vm_name"]: j for j in est.all("migration_job") if j["job_type"] in MOVE_JOB_TYPES}
    small, big = jobs["vm01"], jobs["vm02"]
    together = 10 * GiB / (link / 2)  # ~17.2 s: both at half the link
    assert small["state"] == 7
    assert float(small["finished_at"]) - float(small["started_at"]) == pytest.approx(together, rel=1e-3)
    # vm02: half the link until vm01 ended, then all of it (not half of it to the end, as a rate fixed at its start).
    expected = link / 2 * together + link * (shift - together)
    assert big["state"] == 4
    assert float(big["bytes_done"]) == pytest.approx(expected, rel=0.01)


# -- the move through the migration service (MigrateVirtualSystemToHost) and its job -------------------------

def _start(lab: Lab, name: str = "vm01", **extra: Any) -> dict[str, Any]:
    with lab.session() as session:
        return session.run("hostA", "migrate_start", {
            "VmId": vm_record(lab, name)["id"], "DestinationHost": "hostB.lab.test",
            "DestinationStoragePath": f"D:\\Hyper-V\\{name}", "IncludeStorage": True, **extra}).data


def test_the_start_returns_the_jobs_identity_and_a_move_outlives_its_session(fast_lab: Lab) -> None:
    set_speed(fast_lab, 20)  # about a second: 26 GiB over hostA's one 10 GbE migration uplink
    started = _start(fast_lab, ListenerAddress=["10.0.50.22"])  # the session is closed when this returns
    assert started["return_value"] == 4096
    job = started["job"]
    assert job["job_type"] == 306 and job["vm_id"].lower() == vm_record(fast_lab, "vm01")["id"].lower()
    assert set(started) == {"return_value", "job"}  # nothing from the PowerShell-job world
    res = hv("migrate", "--watch", "vm01", "-o", "json", *FAST)
    assert res.code == 0, res.err
    final = res.json_lines()[-1]
    assert final["job"]["instance_id"] == job["instance_id"] and final["job"]["job_state"] == 7
    assert vm_record(fast_lab, "vm01")["host"].lower() == "hostb"
    # The watch knows what the move copies (disks and memory), not "0 B of 0 B".
    progress = [e for e in res.json_lines() if e.get("event") == "progress"]
    assert progress and all(p["bytes_total"] == (22 + 4) * GiB for p in progress)


def test_a_check_job_of_the_same_vm_is_never_taken_for_the_move(fast_lab: Lab) -> None:
    set_speed(fast_lab, 0.01)
    job = _start(fast_lab)["job"]
    with fast_lab.session() as session:
        jobs = session.run("hostA", "migrate_status", {"VmId": job["vm_id"]}).data["jobs"]
    assert {j["job_type"] for j in jobs} == {300, 306}  # "Creating Remote Virtual Machine" runs beside it
    from hvauto.ops import migrate as ops

    check = next(j for j in jobs if j["job_type"] == 300)
    assert ops.pick_job([check]) is None and ops.pick_job([check], job["instance_id"]) is None
    assert ops.pick_job(jobs)["instance_id"] == job["instance_id"]
    # A finished check of the preflight lingers too, newer than an old finished move: the move is still the one.
    old = {**ops.pick_job(jobs), "job_state": 7, "start_time": "2020-01-01T00:00:00+00:00"}
    newer_check = {**check, "job_type": 302, "job_state": 7, "start_time": "2030-01-01T00:00:00+00:00"}
    assert ops.pick_job([newer_check, old]) == old


@pytest.mark.parametrize("state", [11, 32768])
def test_job_state_11_is_still_running_and_32768_is_success(state: int) -> None:
    from hvauto import hyperv

    assert (state in hyperv.ACTIVE_JOB_STATES) == (state == 11)
    assert (state in hyperv.SUCCESS_JOB_STATES) == (state == 32768)


def test_a_failure_inside_the_job_is_reported_with_the_jobs_error_and_no_success(
        fast_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The call is accepted (4096); the destination then refuses the connection: the job ends in Exception."""
    from hvauto.ops import migrate as ops

    real = ops.preflight

    def preflight_then_the_network_goes(*args: Any, **kw: Any) -> Any:
        pre = real(*args, **kw)
        with fast_lab.store.transaction() as est:
            est.delete("vnic", "hostB/LiveMigration")  # hostB no longer listens on 10.0.50.22
        return pre

    monkeypatch.setattr("hvauto.ops.migrate.move.preflight", preflight_then_the_network_goes)
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", "-o", "json", *FAST)
    assert res.code == ExitCode.REMOTE, res.err
    lines = res.json_lines()
    assert [ln["event"] for ln in lines if ln["event"] == "result"] == []  # nothing claims success
    error = lines[-1]
    assert error["event"] == "error"
    assert "actively refused it. (0x8007274D)" in error["message"]
    assert error["records"][0]["fqid"] == "MigrationJobException,ErrorCode=32768"  # the job's state and error
    assert error["hint"] == "vm01 is still on hostA"
    assert fast_lab.calls(host="hostA", template="migrate_start") == 1
    assert vm_record(fast_lab, "vm01")["host"].lower() == "hosta"


def test_a_refused_start_is_a_structured_error_naming_the_code(fast_lab: Lab) -> None:
    set_speed(fast_lab, 0.01)
    _start(fast_lab)
    from hvauto.errors import RemoteScriptError

    with pytest.raises(RemoteScriptError) as info:
        _start(fast_lab)  # the VM is being moved already: the service refuses, no job
    rec = info.value.records[0]
    assert rec.fqid == "MigrateVirtualSystemToHost,ReturnValue=32775"
    assert "invalid state" in rec.message


def test_a_destination_without_a_listener_address_blocks_the_preflight(fast_lab: Lab) -> None:
    with fast_lab.store.transaction() as est:
        est.delete("vnic", "hostB/LiveMigration")
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", "-o", "json", *FAST)
    assert res.code == ExitCode.PREFLIGHT
    listener = [p for p in res.json()["problems"] if p["check"] == "dest.listener"]
    assert len(listener) == 1 and listener[0]["blocking"]
    assert listener[0]["fix"].startswith("hvauto host migration hostB --networks ")
    assert fast_lab.calls(template="migrate_start") == 0


def test_the_destinations_listener_addresses_reach_the_start(fast_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.lab import transport as lab_transport

    seen: list[dict[str, Any]] = []
    real = lab_transport.execute

    def recording(store: Any, host: str, template: str, version: str, params: Any, **kw: Any) -> Any:
        if template == "migrate_start":
            seen.append(dict(params))
        return real(store, host, template, version, params, **kw)

    monkeypatch.setattr(lab_transport, "execute", recording)
    assert hv("migrate", "--shared-nothing", "vm01", "hostB", *FAST).code == 0
    assert [p["ListenerAddress"] for p in seen] == [["10.0.50.22"]]


def test_a_cancel_the_job_refuses_is_reported_not_counted(fast_lab: Lab) -> None:
    set_speed(fast_lab, 0.01)
    job = _start(fast_lab)["job"]
    with fast_lab.store.transaction() as est:
        j = est.get("migration_job", job["instance_id"])
        assert j is not None
        # 95% through: switching over (the lab refuses a Terminate from 90% on)
        total = float(j["disk_bytes"]) + float(j["memory_bytes"])
        est.put("migration_job", j["key"], {**j, "bytes_done": 0.95 * total, "advanced_at": time.time()},
                host="hostA")
    res = hv("migrate", "--cancel", "vm01", "-o", "json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["cancelled_jobs"] == [] and "4097" in out["refused_jobs"][0]
    assert "invalid state transition" in out["refused_jobs"][0]
