"""iSCSI with MPIO in a fabric spec: two dedicated adapters, two paths per target, never in a team."""

from __future__ import annotations

from pathlib import Path

import yaml

from hvauto.errors import ExitCode
from tests.conftest import Lab, hv

SPEC = Path(__file__).resolve().parent.parent / "playbooks" / "fabric-iscsi.yaml"
TARGET = "iqn.1991-05.com.microsoft:san01-vms-target"


def _sessions(lab: Lab, host: str) -> list[tuple[str, str]]:
    with lab.store.transaction() as est:
        return sorted((s["initiator"], s["portal"]) for s in est.all("iscsi_session", host=host)
                      if s["target"] == TARGET and s["multipath"] and s["persistent"])


def test_two_dedicated_adapters_give_two_paths_per_target_and_a_rerun_is_a_noop(lab: Lab) -> None:
    plan = hv("fabric", "plan", "hostA,hostB", "--spec", str(SPEC), "-o", "json").json()
    actions = [c["action"] for c in plan["hosts"]["hostA"]["changes"]]
    assert actions == ["install-mpio", "claim-iscsi", "add-initiator-address", "add-initiator-address",
                       "add-portal", "add-portal", "connect-target", "connect-target"]
    assert lab.calls(template="fabric_apply") == 0
    res = hv("fabric", "apply", "hostA,hostB", "--spec", str(SPEC), "-o", "json")
    assert res.code == 0, res.err
    doc = res.json()
    assert f"verified: {TARGET} over 2 paths (MPIO)" in doc["hosts"]["hostA"]["steps"]
    assert _sessions(lab, "hostA") == [("10.0.70.21", "10.0.70.10"), ("10.0.71.21", "10.0.71.10")]
    assert _sessions(lab, "hostB") == [("10.0.70.22", "10.0.70.10"), ("10.0.71.22", "10.0.71.10")]
    before = lab.calls(template="fabric_apply")
    again = hv("fabric", "apply", "hostA,hostB", "--spec", str(SPEC))
    assert again.code == 0 and "no changes (already so)" in again.out
    assert lab.calls(template="fabric_apply") == before


def test_an_iscsi_adapter_in_the_team_is_refused_with_the_reason(lab: Lab, tmp_path: Path) -> None:
    doc = yaml.safe_load(SPEC.read_text())
    doc["switch"].update(adapters=["NIC1", "NIC3"], teaming="set")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    res = hv("fabric", "plan", "hostA", "--spec", str(bad))
    assert res.code == ExitCode.USAGE
    assert "storage.iscsi_adapters: NIC3 is also a switch uplink: iSCSI belongs on its own adapters with MPIO" in res.err
    assert lab.calls() == 0


def test_a_path_that_reaches_no_portal_and_a_missing_address_are_design_errors(lab: Lab, tmp_path: Path) -> None:
    doc = yaml.safe_load(SPEC.read_text())
    doc["hosts"]["hostA"]["iscsi_addresses"] = {"NIC3": "10.0.99.21/24"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    res = hv("fabric", "plan", "hostA", "--spec", str(bad))
    assert res.code == ExitCode.USAGE
    assert "hosts.hostA.iscsi_addresses.NIC3: 10.0.99.21/24 reaches no portal" in res.err
    assert "hosts.hostA.iscsi_addresses: no initiator address for NIC4" in res.err


def test_the_lab_refuses_what_windows_refuses(lab: Lab) -> None:
    from hvauto.errors import RemoteScriptError

    with lab.session() as s:
        for params, says in [
            ({"ClaimIscsi": True}, "is not recognized"),  # the MPIO cmdlets need the feature
            ({"IscsiPortals": [{"Portal": "10.0.70.10", "Port": 3260, "Initiator": "10.0.70.99"}]},
             "is not an address of this computer"),
            ({"IscsiConnect": [{"Target": TARGET, "Portal": "10.0.70.10", "Port": 3260, "Initiator": "10.0.70.21"}]},
             "Target portal not found"),
        ]:
            try:
                s.run("hostA", "fabric_apply", params)
            except RemoteScriptError as exc:
                assert says in str(exc), str(exc)
            else:
                raise AssertionError(f"the lab accepted {params}")


def test_render_shows_the_iscsi_cmdlets(lab: Lab) -> None:
    res = hv("fabric", "apply", "hostA", "--spec", str(SPEC), "--render")
    assert res.code == 0, res.err
    for text in ("Install-WindowsFeature -Name 'Multipath-IO'", "Enable-MSDSMAutomaticClaim -BusType iSCSI",
                 "New-IscsiTargetPortal", "-IsMultipathEnabled $true -IsPersistent $true"):
        assert text in res.out
    assert lab.calls() == 0
