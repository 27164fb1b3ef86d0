"""hvauto switch list/create/remove through the real CLI against the lab."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv


def switches(host: str) -> dict[str, dict[str, object]]:
    res = hv("switch", "list", host, "-o", "json")
    assert res.code == 0, res.err
    return {s["name"]: s for s in res.json()["switches"]}


def test_list_shows_uplinks_modes_and_attached_vms(lab: Lab) -> None:
    res = hv("switch", "list", "-o", "json")
    assert res.code == 0, res.err
    found = {(s["host"], s["name"]): s for s in res.json()["switches"]}
    assert set(found) == {("hostA", "External"), ("hostB", "External"), ("hv12", "Ext2012")}
    ext = found[("hostA", "External")]
    assert ext["adapters"] == ["NIC1"] and ext["bandwidth_mode"] == "Absolute"
    assert ext["vms"] == ["vm01", "vm02", "web01"]
    assert found[("hostB", "External")]["vms"] == []
    table = hv("switch", "list", "hostA")
    assert "vm01,vm02,web01" in table.out


@pytest.mark.parametrize(
    ("argv", "kind", "adapters", "embedded"),
    [
        (["Lab-Internal", "--type", "internal"], "Internal", [], False),
        (["Lab-Private", "--type", "private"], "Private", [], False),
        (["Storage", "--adapter", "NIC2", "--no-management-os"], "External", ["NIC2"], False),
        (["VMs", "-a", "NIC3", "-a", "NIC4", "--bandwidth-mode", "weight"], "External", ["NIC3", "NIC4"], True),
    ],
    ids=["internal", "private", "external", "set"],
)
def test_create_is_idempotent(lab: Lab, argv: list[str], kind: str, adapters: list[str], embedded: bool) -> None:
    res = hv("switch", "create", "hostB", *argv)
    assert res.code == 0, res.err
    assert "created" in res.out
    sw = switches("hostB")[argv[0]]
    assert (sw["type"], sw["adapters"], sw["embedded_teaming"]) == (kind, adapters, embedded)
    again = hv("switch", "create", "hostB", *argv)
    assert again.code == 0
    assert "already exists" in again.out
    assert lab.calls(host="hostB", template="switch_create") == 1


def test_create_on_a_bound_adapter_is_refused_first_and_the_lab_refuses_it_as_hyperv_does(lab: Lab) -> None:
    res = hv("switch", "create", "hostA", "Second", "--adapter", "NIC1")
    assert res.code == ExitCode.PREFLIGHT
    assert "adapter NIC1 (bound to switch External) is in use" in res.err
    assert lab.calls(template="switch_create") == 0
    from hvauto.errors import RemoteScriptError

    with lab.session() as s, pytest.raises(RemoteScriptError, match="already bound to switch External"):
        s.run("hostA", "switch_create", {"Name": "Second", "BandwidthMode": "Absolute", "NetAdapterName": ["NIC1"],
                                         "AllowManagementOS": True})
    assert "Second" not in switches("hostA")


def test_several_adapters_need_set_on_2012r2(lab: Lab) -> None:
    res = hv("switch", "create", "hv12", "Team", "-a", "NIC3", "-a", "NIC4")
    assert res.code == ExitCode.USAGE
    assert "Switch Embedded Teaming" in res.err
    assert lab.calls(template="switch_create") == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["X", "--type", "external"], "needs at least one physical adapter"),
        (["X", "--type", "internal", "--adapter", "NIC2"], "has no physical adapter"),
        (["Bad*Name", "--type", "internal"], "wildcard"),
        (["two\nlines", "--type", "internal"], "control characters"),
    ],
)
def test_bad_create_input_is_usage_with_no_remote_call(lab: Lab, argv: list[str], needle: str) -> None:
    res = hv("switch", "create", "hostB", *argv)
    assert res.code == ExitCode.USAGE
    assert needle in res.err
    assert lab.calls() == 0


def test_create_refuses_an_existing_switch_of_another_type(lab: Lab) -> None:
    res = hv("switch", "create", "hostB", "External", "--type", "internal")
    assert res.code == ExitCode.USAGE
    assert "exists as External" in res.err


def test_remove_refuses_attached_vms_and_the_management_path(lab: Lab) -> None:
    before = lab.store.snapshot()
    res = hv("switch", "remove", "hostA", "External")
    assert res.code == ExitCode.PREFLIGHT
    assert "VMs are attached to switch External: vm01, vm02, web01" in res.err
    assert "carries the management path (10.0.0.21/24)" in res.err
    forced = hv("switch", "remove", "hostA", "External", "--force")
    assert forced.code == ExitCode.PREFLIGHT
    assert "VMs are attached" not in forced.err and "management path" in forced.err
    assert lab.store.snapshot() == before
    assert lab.calls(template="switch_remove") == 0


def test_remove_with_force_disconnects_the_vms(lab: Lab) -> None:
    with lab.store.transaction() as est:
        nic = est.get("adapter", "hostA/NIC2")
        assert nic is not None
        nic.update(addresses=["10.0.0.31/24"], gateway="10.0.0.1")
        est.put("adapter", nic["key"], nic, host="hostA")
    res = hv("switch", "remove", "hostA", "External", "--force")
    assert res.code == 0, res.err
    assert "VMs disconnected: vm01, vm02, web01" in res.out
    assert "External" not in switches("hostA")
    vms = hv("vm", "list", "hostA", "-o", "json").json()["vms"]
    assert all(v["switches"] == [""] for v in vms)


def test_remove_of_an_empty_name_is_usage_with_no_remote_call(lab: Lab) -> None:
    res = hv("switch", "remove", "hostA", " ")
    assert res.code == ExitCode.USAGE
    assert "switch name is empty" in res.err
    assert lab.calls() == 0


def test_remove_is_idempotent(lab: Lab) -> None:
    assert hv("switch", "create", "hostB", "Tmp", "--type", "private").code == 0
    res = hv("switch", "remove", "hostB", "Tmp")
    assert res.code == 0 and "removed switch Tmp" in res.out
    again = hv("switch", "remove", "hostB", "Tmp")
    assert again.code == 0 and "nothing to remove" in again.out
    assert lab.calls(host="hostB", template="switch_remove") == 1


def test_what_if_changes_nothing(lab: Lab) -> None:
    assert hv("switch", "create", "hostB", "Tmp", "--type", "private").code == 0
    before = lab.store.snapshot()
    assert "would create" in hv("switch", "create", "hostB", "W", "--type", "internal", "--what-if").out
    assert "would remove switch Tmp" in hv("switch", "remove", "hostB", "Tmp", "--what-if").out
    assert lab.store.snapshot() == before
    assert lab.calls(template="switch_create") == 1 and lab.calls(template="switch_remove") == 0


@pytest.mark.parametrize(
    ("argv", "templates"),
    [
        (["switch", "create", "hostB", "VMs", "-a", "NIC3", "-a", "NIC4"], ["switch_list", "switch_create"]),
        (["switch", "remove", "hostB", "External"], ["fabric_get", "switch_remove"]),
        (["switch", "list", "hostA"], ["switch_list"]),
        # hv12's version is not in the inventory: the run asks it first, and the render says so.
        (["fabric", "plan", "hostA,hv12", "--spec", "PLAYBOOK"], ["host_facts", "fabric_get", "fabric_get"]),
        (["fabric", "apply", "hostA", "--spec", "PLAYBOOK"], ["fabric_get", "fabric_apply", "fabric_get"]),
        (["host", "migration", "hv12", "--enable"], ["host_facts", "host_migration_set"]),
    ],
    ids=["switch-create", "switch-remove", "switch-list", "fabric-plan", "fabric-apply", "host-migration"],
)
def test_render_prints_each_step_and_contacts_no_host(lab: Lab, argv: list[str], templates: list[str]) -> None:
    from .test_fabric import EXAMPLE

    argv = [str(EXAMPLE) if a == "PLAYBOOK" else a for a in argv]
    res = hv(*argv, "--render")
    assert res.code == 0, res.err
    assert [line.split()[4] for line in res.out.splitlines() if line.startswith("# ==== step ")] == templates
    assert res.out.count("$hvautoEnvelope = '") == len(templates)
    assert lab.calls() == 0


def test_render_of_a_bad_spec_is_still_refused(lab: Lab, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fabric: 2\n")
    res = hv("fabric", "plan", "hostA", "--spec", str(bad), "--render")
    assert res.code == ExitCode.USAGE
    assert "fabric: must be 1" in res.err and "switch: is required" in res.err
    assert lab.calls() == 0
