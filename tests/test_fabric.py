"""hvauto fabric plan/apply/validate through the real CLI against the in-process lab."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hvauto.errors import ExitCode
from hvauto.lab.handlers.fabric import LBFO_DEPRECATED
from hvauto.script import Script

from .conftest import Lab, hv

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "playbooks" / "fabric-converged.yaml"


def example() -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def write(tmp_path: Path, doc: dict[str, Any], name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


def vnics(lab: Lab, host: str) -> dict[str, dict[str, Any]]:
    with lab.store.transaction() as est:
        return {v["name"]: v for v in est.all("vnic", host=host)}


def switch(lab: Lab, host: str, name: str) -> dict[str, Any] | None:
    with lab.store.transaction() as est:
        return est.get("switch", f"{host}/{name}")


# -- the example spec: hostA and hostB (2022, SET), hv12 (2012 R2, LBFO) ------------------------------------

def test_example_plans_on_hostA_and_hostB_without_changing_anything(lab: Lab) -> None:
    before = lab.store.snapshot()
    res = hv("fabric", "plan", "hostA,hostB", "--spec", str(EXAMPLE), "-o", "json")
    assert res.code == 0, res.err
    doc = res.json()
    for host in ("hostA", "hostB"):
        plan = doc["hosts"][host]
        assert plan["teaming"] == "set" and plan["changed"] is True
        actions = [c["action"] for c in plan["changes"]]
        assert actions[0] == "create-switch"
        # Management first: its vNIC comes up before anything else on the new switch.
        assert [c["target"] for c in plan["changes"] if c["action"] == "add-vnic"][0] == "Management"
        assert plan["params"]["EmbeddedTeaming"] is True
        assert plan["params"]["SwitchAdapters"] == ["NIC3", "NIC4"]
        assert lab.calls(host=host, template="fabric_get") == 1  # one round trip per host
    assert lab.store.snapshot() == before
    assert lab.calls(template="fabric_apply") == 0


def test_example_applies_on_hostA_and_hostB_and_a_second_apply_changes_nothing(lab: Lab) -> None:
    res = hv("fabric", "apply", "hostA,hostB", "--spec", str(EXAMPLE), "-o", "json")
    assert res.code == 0, res.err
    assert res.json()["applied"] is True and res.json()["changed"] is True
    for host, last in (("hostA", "21"), ("hostB", "22")):
        sw = switch(lab, host, "Converged")
        assert sw is not None
        assert sw["embedded_teaming"] is True and sw["adapters"] == ["NIC3", "NIC4"]
        assert sw["bandwidth_mode"] == "Weight" and sw["default_flow_weight"] == 50
        nics = vnics(lab, host)
        assert {n: (v["switch"], v["weight"], v["vlan"]) for n, v in nics.items() if v["switch"] == "Converged"} == {
            "Management": ("Converged", 10, 10), "LiveMigration": ("Converged", 30, 50),
            "Cluster": ("Converged", 10, 60)}
        assert nics["Management"]["addresses"] == [f"10.0.10.{last}/24"]
        assert nics["Management"]["gateway"] == "10.0.10.1"
        # The old path and the VMs' switch are untouched.
        assert nics["External"]["addresses"] == [f"10.0.0.{last}/24"]
        assert switch(lab, host, "External") is not None
        assert lab.calls(host=host, template="fabric_apply") == 1
    snap = lab.store.snapshot()
    again = hv("fabric", "apply", "hostA,hostB", "--spec", str(EXAMPLE), "-o", "json")
    assert again.code == 0, again.err
    assert again.json()["changed"] is False
    assert all(not h["changed"] for h in again.json()["hosts"].values())
    assert lab.store.snapshot() == snap
    assert lab.calls(template="fabric_apply") == 2
    table = hv("fabric", "apply", "hostA", "--spec", str(EXAMPLE))
    assert "no changes (already so)" in table.out


def test_the_same_spec_on_hv12_builds_an_lbfo_team_under_the_switch(lab: Lab) -> None:
    res = hv("fabric", "apply", "hv12", "--spec", str(EXAMPLE), "-o", "json")
    assert res.code == 0, res.err
    plan = res.json()["hosts"]["hv12"]
    assert plan["version"] == "2012r2" and plan["teaming"] == "lbfo"
    assert plan["steps"][0] == "created LBFO team Converged-Team"
    with lab.store.transaction() as est:
        team = est.get("team", "hv12/Converged-Team")
        host = est.get("host", "hv12")
    assert team is not None and team["members"] == ["NIC3", "NIC4"] and team["load_balancing"] == "Dynamic"
    sw = switch(lab, "hv12", "Converged")
    assert sw is not None and sw["embedded_teaming"] is False and sw["adapters"] == ["Converged-Team"]
    assert host is not None
    assert host["hyperv"]["migration"]["networks"] == ["10.0.50.0/24"]
    assert host["hyperv"]["migration"]["use_any_network"] is False
    again = hv("fabric", "apply", "hv12", "--spec", str(EXAMPLE), "-o", "json")
    assert again.code == 0 and again.json()["changed"] is False


def test_the_apply_script_for_2012r2_has_no_set_and_builds_the_team(lab: Lab) -> None:
    session = lab.session()
    script: Script = session.render("hv12", "fabric_apply", {"TeamName": "T", "TeamMembers": ["NIC3"]},
                                    version="2012r2")
    assert "New-NetLbfoTeam" in script.body
    assert "EnableEmbeddedTeaming" not in script.body
    assert "Get-VMSwitchTeam" not in session.render("hv12", "fabric_get", version="2012r2").body
    assert "-EnableEmbeddedTeaming $EmbeddedTeaming" in session.render("hostA", "fabric_apply", {}).body


# -- refusals --------------------------------------------------------------------------------------------

def test_an_lbfo_spec_on_a_2022_host_is_refused_with_the_reason(lab: Lab, tmp_path: Path) -> None:
    doc = example()
    doc["switch"]["teaming"] = "lbfo"
    before = lab.store.snapshot()
    res = hv("fabric", "apply", "hostA", "--spec", write(tmp_path, doc))
    assert res.code == ExitCode.PREFLIGHT
    assert "LBFO" in res.err and "2022" in res.err and "Switch Embedded Teaming" in res.err
    assert lab.store.snapshot() == before
    assert lab.calls(template="fabric_apply") == 0


def test_the_lab_refuses_a_switch_on_an_lbfo_team_on_2022_with_hyperv_s_message(lab: Lab) -> None:
    res = lab.session().run("hostB", "fabric_apply", {
        "TeamName": "T1", "TeamMembers": ["NIC3", "NIC4"], "SwitchName": "S", "CreateSwitch": True,
        "SwitchAdapters": ["T1"], "EmbeddedTeaming": False, "BandwidthMode": "Weight"}, check=False)
    assert not res.ok
    assert res.errors[0].message == LBFO_DEPRECATED


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"SwitchName": "S", "CreateSwitch": True, "SwitchAdapters": ["NIC1"], "EmbeddedTeaming": False},
         "'NIC1' is already bound to switch External"),
        ({"TeamName": "T", "TeamMembers": ["NIC1", "NIC2"]}, "'NIC1' to team 'T': it is bound to switch External"),
        ({"SwitchName": "External", "DefaultFlowWeight": 20}, "uses the Absolute minimum bandwidth mode"),
        ({"SwitchName": "External", "Weights": [{"Vnic": "External", "Weight": 10}]},
         "cannot be changed afterwards"),
        ({"SwitchName": "S", "CreateSwitch": True, "SwitchAdapters": ["NIC3", "NIC9"], "EmbeddedTeaming": True},
         "'NIC9'"),
    ],
    ids=["adapter-bound", "team-member-bound", "default-flow-on-absolute", "weight-on-absolute", "no-such-adapter"],
)
def test_the_lab_answers_impossible_requests_with_hyperv_errors(lab: Lab, params: dict[str, Any], needle: str) -> None:
    before = lab.store.snapshot()
    res = lab.session().run("hostA", "fabric_apply", params, check=False)
    assert not res.ok
    assert needle in res.errors[0].message
    assert lab.store.snapshot() == before


def test_a_bandwidth_mode_change_means_re_creating_the_switch_and_is_refused_while_vms_are_attached(
        lab: Lab, tmp_path: Path) -> None:
    doc = example()
    doc["switch"].update(name="External", adapters=["NIC1"], teaming="none")
    doc["vnics"] = [v for v in doc["vnics"] if v["role"] != "management"]
    doc["hosts"] = {"hostA": {"addresses": {"LiveMigration": "10.0.50.21/24", "Cluster": "10.0.60.21/24"}}}
    spec = write(tmp_path, doc)
    res = hv("fabric", "plan", "hostA", "--spec", spec, "-o", "json")
    assert res.code == ExitCode.PREFLIGHT, res.err  # the VMs on the switch block it, as apply says below
    change = res.json()["hosts"]["hostA"]["changes"][0]
    assert change["action"] == "recreate-switch" and change["disruptive"] is True
    assert "bandwidth mode Absolute -> Weight" in change["detail"]
    before = lab.store.snapshot()
    refused = hv("fabric", "apply", "hostA", "--spec", spec)
    assert refused.code == ExitCode.PREFLIGHT
    assert "VMs are attached: vm01, vm02, web01" in refused.err
    assert "--force" in refused.err
    # --force lifts the VM refusal, but the switch also carries the only management path: still refused.
    forced = hv("fabric", "apply", "hostA", "--spec", spec, "--force")
    assert forced.code == ExitCode.PREFLIGHT
    assert "removes the management path" in forced.err
    assert lab.store.snapshot() == before


def test_a_re_create_without_vms_or_management_on_it_goes_ahead_when_forced(lab: Lab, tmp_path: Path) -> None:
    doc = example()
    doc["switch"].update(name="External", adapters=["NIC1"], teaming="none")
    doc["vnics"] = [v for v in doc["vnics"] if v["role"] != "management"]
    doc["hosts"] = {"hostB": {"addresses": {"LiveMigration": "10.0.50.22/24", "Cluster": "10.0.60.22/24"}}}
    # hostB's management moves to NIC2 first (as a console session would), so the switch is free to go.
    with lab.store.transaction() as est:
        nic = est.get("adapter", "hostB/NIC2")
        assert nic is not None
        nic.update(addresses=["10.0.0.32/24"], gateway="10.0.0.1")
        est.put("adapter", nic["key"], nic, host="hostB")
    res = hv("fabric", "apply", "hostB", "--spec", write(tmp_path, doc), "-o", "json")
    assert res.code == 0, res.err
    assert res.json()["hosts"]["hostB"]["steps"][0] == "removed switch External"
    sw = switch(lab, "hostB", "External")
    assert sw is not None and sw["bandwidth_mode"] == "Weight"


def test_the_management_vnic_comes_up_before_the_old_path_goes(lab: Lab, tmp_path: Path) -> None:
    doc = example()
    doc["switch"].update(adapters=["NIC3", "NIC4"])
    doc["prune_vnics"] = True
    doc["hosts"] = {"hostB": {"addresses": {"Management": "10.0.10.22/24", "LiveMigration": "10.0.50.22/24",
                                            "Cluster": "10.0.60.22/24"}}}
    spec = write(tmp_path, doc)
    first = hv("fabric", "apply", "hostB", "--spec", spec, "-o", "json")
    assert first.code == 0, first.err
    # Now an extra vNIC on Converged that the spec does not list holds an address: pruned, after the check.
    with lab.store.transaction() as est:
        est.put("vnic", "hostB/Old", {"key": "hostB/Old", "host": "hostB", "name": "Old", "switch": "Converged",
                                      "weight": None, "vlan": None, "addresses": ["10.0.70.22/24"], "gateway": None},
                host="hostB")
    doc["hosts"]["hostB"]["addresses"]["Management"] = "10.0.10.122/24"
    res = hv("fabric", "apply", "hostB", "--spec", write(tmp_path, doc, "moved.yaml"), "-o", "json")
    assert res.code == 0, res.err
    steps = res.json()["hosts"]["hostB"]["steps"]
    up = steps.index("management address 10.0.10.122 is up on Management")
    assert steps.index("address 10.0.10.122/24 on Management") < up
    assert up < steps.index("removed address 10.0.10.22 from Management")
    assert up < steps.index("removed host vNIC Old (not in the spec)")
    assert vnics(lab, "hostB")["Management"]["addresses"] == ["10.0.10.122/24"]


def test_a_spec_that_leaves_no_management_address_is_refused(lab: Lab, tmp_path: Path) -> None:
    doc = example()
    doc["switch"].update(name="External", adapters=["NIC1"], teaming="none", bandwidth_mode="Absolute")
    doc["switch"].pop("default_flow_weight")
    doc["vnics"] = [{"name": "LiveMigration", "role": "live_migration", "vlan": 50}]
    doc["prune_vnics"] = True
    doc["hosts"] = {}
    res = hv("fabric", "apply", "hostB", "--spec", write(tmp_path, doc))
    assert res.code == ExitCode.PREFLIGHT
    assert "would have no management address" in res.err
    assert vnics(lab, "hostB")["External"]["addresses"] == ["10.0.0.22/24"]


def test_set_members_must_be_identical(lab: Lab, tmp_path: Path) -> None:
    with lab.store.transaction() as est:
        nic = est.get("adapter", "hostA/NIC4")
        assert nic is not None
        nic.update(link_speed_bps=25 * 10**9, driver="Broadcom NetXtreme-E")
        est.put("adapter", nic["key"], nic, host="hostA")
    res = hv("fabric", "plan", "hostA", "--spec", str(EXAMPLE))
    assert res.code == ExitCode.PREFLIGHT
    assert "[BLOCKING] SET members must be identical" in res.out
    refused = hv("fabric", "apply", "hostA", "--spec", str(EXAMPLE))
    assert refused.code == ExitCode.PREFLIGHT


def test_switch_names_across_a_group_are_checked(lab: Lab) -> None:
    res = hv("fabric", "plan", "hyperv", "--spec", str(EXAMPLE), "-o", "json")
    assert res.code == 0, res.err
    names = [p for p in res.json()["problems"] if p["check"] == "switch-names"]
    assert names and names[0]["message_id"] == 33012 and "hv12" in names[0]["message"]
    assert names[0]["blocking"] is False


# -- validation: every problem, no remote call -------------------------------------------------------------

def test_weights_over_100_and_live_migration_on_management_fail_validation_with_every_problem(
        lab: Lab, tmp_path: Path) -> None:
    doc = example()
    doc["vnics"][0]["weight"] = 3             # management below 5
    doc["vnics"][1]["weight"] = 60            # sum: 3 + 60 + 10 + 50 = 123
    doc["vnics"][1]["vlan"] = 10              # live migration on the management VLAN
    doc["migration_networks"] = ["10.0.10.0/24"]   # ... and on the management subnet
    doc["storage"] = {"iscsi_adapters": ["NIC3"]}  # iSCSI on a switch uplink
    spec = write(tmp_path, doc)
    res = hv("fabric", "plan", "hostA", "--spec", spec)
    assert res.code == ExitCode.USAGE
    for needle in ("add up to 123", "at least 5", "shares VLAN 10 with management",
                   "overlaps the management network", "iSCSI belongs on its own adapters"):
        assert needle in res.err, needle
    assert spec in res.err and "vnics[1].vlan" in res.err
    assert lab.calls() == 0
    for action in ("plan", "apply"):
        assert hv("fabric", action, "hostA", "--spec", spec).code == ExitCode.USAGE
    assert lab.calls() == 0


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (lambda d: d["switch"].update(bandwidth_mode="Fast", adapters="NIC3"),
         ["switch.bandwidth_mode: must be one of", "switch.adapters: expected a list, got a string"]),
        (lambda d: d.update(extra=1), ["extra: unknown key"]),
        (lambda d: d["vnics"][2].update(vlan=5000), ["vnics[2].vlan: must be at most 4094"]),
        (lambda d: d["hosts"]["hostA"]["addresses"].pop("Management"),
         ["hosts.hostA.addresses.Management: missing"]),
        (lambda d: d["hosts"]["hostA"]["addresses"].update(Cluster="10.0.61.21/24"), ["outside Cluster's subnet"]),
        (lambda d: d["hosts"]["hostB"]["addresses"].update(Cluster="10.0.60.21/24"), ["10.0.60.21 is also given"]),
        (lambda d: d["vnics"][0].update(gateway="10.0.11.1", subnet="10.0.10.0/33"),
         ["vnics[0].subnet: '10.0.10.0/33' is not an IPv4 subnet"]),
        (lambda d: d["vnics"][0].update(gateway="10.0.11.1"), ["vnics[0].gateway: 10.0.11.1 is outside"]),
        (lambda d: (d["vnics"][1].pop("subnet"), d["hosts"]["hostB"]["addresses"].update(LiveMigration="10.0.10.52/24")),
         ["hosts.hostB.addresses.LiveMigration: 10.0.10.52/24 is on the management network"]),
    ],
    ids=["schema-types", "unknown-key", "vlan-range", "no-management-address", "wrong-subnet", "duplicate-address",
         "bad-subnet", "gateway-outside", "lm-address-on-management"],
)
def test_bad_specs_fail_before_any_remote_call(lab: Lab, tmp_path: Path, mutate: Any, needles: list[str]) -> None:
    doc = example()
    mutate(doc)
    res = hv("fabric", "apply", "hostA,hostB", "--spec", write(tmp_path, doc))
    assert res.code == ExitCode.USAGE, res.out + res.err
    for needle in needles:
        assert needle in res.err, (needle, res.err)
    assert "Traceback" not in res.err
    assert lab.calls() == 0


def test_validate_needs_no_host(lab: Lab) -> None:
    res = hv("fabric", "validate", "--spec", str(EXAMPLE), "hyperv")
    assert res.code == 0, res.err
    assert "valid" in res.out
    assert lab.calls() == 0


def test_a_missing_or_broken_spec_file_is_usage(lab: Lab, tmp_path: Path) -> None:
    assert hv("fabric", "plan", "hostA", "--spec", str(tmp_path / "nope.yaml")).code == ExitCode.USAGE
    bad = tmp_path / "bad.yaml"
    bad.write_text("fabric: [1\n")
    res = hv("fabric", "plan", "hostA", "--spec", str(bad))
    assert res.code == ExitCode.USAGE and "not valid YAML" in res.err
    assert lab.calls() == 0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\xff\xfe\x00binary", "bad.yaml:1: cannot read: not UTF-8 text (byte 0xff)"),
        (b"switch: [1\n", "bad.yaml:2: not valid YAML: expected ',' or ']'"),
    ],
)
def test_an_unreadable_spec_is_one_line_of_usage(lab: Lab, tmp_path: Path, content: bytes, needle: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    res = hv("fabric", "validate", "--spec", str(bad))
    assert res.code == ExitCode.USAGE, res.err
    assert needle in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1, res.err
    assert lab.calls() == 0


def test_the_schema_ships_inside_the_package() -> None:
    from hvauto import schemas

    schema = schemas.load("fabric.schema.json")
    assert schema["properties"]["switch"]["$ref"] == "#/$defs/switch"
    assert schemas.validate(schema, yaml.safe_load(EXAMPLE.read_text())) == []


def test_a_host_down_is_reported_with_the_others_plans(lab: Lab) -> None:
    assert hv("lab", "fault", "hostB", "--down").code == 0
    res = hv("--retries", "1", "fabric", "plan", "hostA,hostB", "--spec", str(EXAMPLE), "-o", "json")
    assert res.code == ExitCode.PARTIAL
    doc = res.json()
    assert {h for h, p in doc["hosts"].items() if p["ok"]} == {"hostA"}
    assert doc["hosts"]["hostB"]["error"]["error"] == "ConnectError"
    assert res.json_lines()[-1]["event"] == "error" and res.json_lines()[-1]["code"] == ExitCode.PARTIAL
    refused = hv("--retries", "1", "fabric", "apply", "hostA,hostB", "--spec", str(EXAMPLE))
    assert refused.code == ExitCode.PARTIAL
    assert lab.calls(template="fabric_apply") == 0  # nothing applied anywhere while a host cannot be read


def test_the_operation_raises_for_a_failed_host_when_called_by_name(lab: Lab) -> None:
    """The runbook engine calls hvauto.ops.fabric.apply(session, host=..., spec=...): a failure must not pass."""
    from hvauto.errors import ConnectError
    from hvauto.ops import fabric
    from hvauto.remote.retry import RetryPolicy

    lab.store.set_fault("hostB", down=True)
    with lab.session(retry=RetryPolicy(attempts=1)) as session, pytest.raises(ConnectError):
        fabric.plan(session, host="hostB", spec=EXAMPLE)


def _weights(d: dict[str, Any]) -> None:
    d["vnics"][0]["weight"] = 20   # Management 10 -> 20
    d["vnics"][1]["weight"] = 20   # LiveMigration 30 -> 20


def _members(d: dict[str, Any]) -> None:
    d.pop("storage")
    d["switch"]["adapters"] = ["NIC2", "NIC3", "NIC4"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        # Decreases first: the sum of weights never passes 100 on the way.
        (_weights, [("set-weight", "LiveMigration", "30 -> 20"), ("set-weight", "Management", "10 -> 20")]),
        (lambda d: d["vnics"][2].update(vlan=61), [("set-vlan", "Cluster", "60 -> 61")]),
        (lambda d: d["vnics"][2].pop("vlan"), [("set-vlan", "Cluster", "60 -> untagged")]),
        (lambda d: d["switch"].update(default_flow_weight=40),
         [("set-default-flow-weight", "Converged", "50 -> 40")]),
        (_members, [("set-members", "Converged", "NIC3, NIC4 -> NIC2, NIC3, NIC4")]),
        (lambda d: d.update(migration_networks=["10.0.50.0/24", "10.0.51.0/24"]),
         [("add-migration-network", "10.0.51.0/24", "")]),
        (lambda d: d["hosts"]["hostA"]["addresses"].update(Cluster="10.0.60.31/24"),
         [("add-address", "Cluster", "10.0.60.31/24"),
          ("remove-address", "Cluster", "10.0.60.21/24 (after the management check)")]),
    ],
    ids=["weights", "vlan", "untag", "default-flow", "set-members", "migration-network", "readdress"],
)
def test_a_changed_spec_changes_only_what_differs_then_settles(lab: Lab, tmp_path: Path, mutate: Any,
                                                               expected: list[tuple[str, str, str]]) -> None:
    assert hv("fabric", "apply", "hostA", "--spec", str(EXAMPLE)).code == 0
    doc = example()
    mutate(doc)
    spec = write(tmp_path, doc)
    res = hv("fabric", "apply", "hostA", "--spec", spec, "-o", "json")
    assert res.code == 0, res.err
    changes = [(c["action"], c["target"], c["detail"]) for c in res.json()["hosts"]["hostA"]["changes"]]
    assert changes == expected
    again = hv("fabric", "plan", "hostA", "--spec", spec, "-o", "json")
    assert again.json()["changed"] is False


def test_spec_hosts_outside_the_inventory_are_warned_about(lab: Lab, tmp_path: Path) -> None:
    doc = example()
    doc["hosts"]["hostZ"] = {"addresses": {"Management": "10.0.10.99/24"}}
    res = hv("fabric", "plan", "hostA", "--spec", write(tmp_path, doc))
    assert res.code == 0, res.err
    assert "hosts.hostZ: not a host in the inventory" in res.err


def test_the_lock_out_guard_stops_the_script_before_the_old_path_goes(lab: Lab) -> None:
    before = lab.store.snapshot()
    res = lab.session().run("hostA", "fabric_apply", {
        "SwitchName": "External", "ManagementVnic": "External", "ManagementAddress": "10.0.0.99",
        "DropAddresses": [{"Vnic": "External", "Address": "10.0.0.21"}]}, check=False)
    assert not res.ok
    assert "not up on vEthernet (External)" in res.errors[0].message
    assert "old management path was left in place" in res.errors[0].message
    assert lab.store.snapshot() == before


def _put_vnic(lab: Lab, host: str, name: str, switch: str, addresses: list[str]) -> None:
    with lab.store.transaction() as est:
        est.put("vnic", f"{host}/{name}", {"key": f"{host}/{name}", "host": host, "name": name, "switch": switch,
                                           "weight": None, "vlan": None, "addresses": addresses, "gateway": None},
                host=host)


@pytest.mark.parametrize(
    ("host", "mutate", "setup", "needle"),
    [
        ("hv12", lambda d: d["switch"].update(teaming="set"), None,
         "Switch Embedded Teaming needs Windows Server 2016 or later; hv12 runs Windows Server 2012 R2"),
        ("hostA", lambda d: d["switch"].update(adapters=["NIC3", "NIC7"]), None, "adapter NIC7 not found"),
        ("hostA", lambda d: d["storage"].update(iscsi_adapters=["NIC1"]), None,
         "iSCSI adapter NIC1 is bound to switch External"),
        ("hostA", lambda d: d["switch"].update(adapters=["NIC1", "NIC3"]), None,
         "adapter NIC1 is already bound to switch External"),
        ("hostA", lambda d: None, lambda lab: _put_vnic(lab, "hostA", "Management", "External", []),
         "host vNIC Management is on switch External, not Converged"),
        ("hostA", lambda d: None, lambda lab: _put_vnic(lab, "hostA", "Spare", "External", ["10.0.10.21/24"]),
         "10.0.10.21 is already in use on Spare"),
    ],
    ids=["set-on-2012r2", "missing-adapter", "iscsi-bound", "uplink-bound", "management-elsewhere", "address-in-use"],
)
def test_plan_time_problems_block_the_apply(lab: Lab, tmp_path: Path, host: str, mutate: Any, setup: Any,
                                            needle: str) -> None:
    doc = example()
    mutate(doc)
    if setup is not None:
        setup(lab)
    spec = write(tmp_path, doc)
    plan = hv("fabric", "plan", host, "--spec", spec)
    assert plan.code == ExitCode.PREFLIGHT, plan.err  # the plan lists its blocking problems and says so
    assert f"[BLOCKING] {needle}" in plan.out
    assert hv("fabric", "apply", host, "--spec", spec, "--what-if").code == ExitCode.PREFLIGHT
    before = lab.store.snapshot()
    res = hv("fabric", "apply", host, "--spec", spec)
    assert res.code == ExitCode.PREFLIGHT
    assert needle in res.err
    assert lab.store.snapshot() == before
    assert lab.calls(template="fabric_apply") == 0


def test_a_vnic_on_another_switch_is_moved(lab: Lab) -> None:
    _put_vnic(lab, "hostA", "LiveMigration", "External", [])
    res = hv("fabric", "apply", "hostA", "--spec", str(EXAMPLE), "-o", "json")
    assert res.code == 0, res.err
    moves = [c for c in res.json()["hosts"]["hostA"]["changes"] if c["action"] == "move-vnic"]
    assert moves == [{"action": "move-vnic", "target": "LiveMigration", "disruptive": True,
                      "detail": "from switch External to Converged (removed and added again)"}]
    assert vnics(lab, "hostA")["LiveMigration"]["switch"] == "Converged"
    assert hv("fabric", "plan", "hostA", "--spec", str(EXAMPLE), "-o", "json").json()["changed"] is False


def test_an_existing_team_under_another_switch_is_not_taken(lab: Lab, tmp_path: Path) -> None:
    assert hv("fabric", "apply", "hv12", "--spec", str(EXAMPLE)).code == 0
    doc = example()
    doc["switch"]["name"] = "Converged2"
    res = hv("fabric", "plan", "hv12", "--spec", write(tmp_path, doc))
    assert "[BLOCKING] adapter Converged-Team is already bound to switch Converged" in res.out
