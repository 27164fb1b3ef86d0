"""hvauto host migration: idempotent live-migration settings, through the real CLI against the lab."""

from __future__ import annotations

from typing import Any

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv

HV12_FIX = ["host", "migration", "hv12", "--enable", "--auth", "kerberos", "--networks", "10.0.50.0/24"]


def migration_of(host: str) -> dict[str, Any]:
    res = hv("host", "show", host, "-o", "json")
    assert res.code == 0, res.err
    mig = res.json()["migration"]
    assert isinstance(mig, dict)
    return mig


def test_hv12_passes_the_migration_checks_after_one_command(lab: Lab) -> None:
    before = migration_of("hv12")
    assert (before["enabled"], before["auth_type"], before["use_any_network"]) == (False, "CredSSP", True)
    res = hv(*HV12_FIX)
    assert res.code == 0, res.err
    assert "enable live migration" in res.out and "CredSSP -> Kerberos" in res.out
    after = migration_of("hv12")
    assert after["enabled"] is True
    assert after["auth_type"] == "Kerberos"
    assert after["use_any_network"] is False
    assert after["networks"] == ["10.0.50.0/24"]
    assert lab.calls(host="hv12", template="host_migration_set") == 1
    again = hv(*HV12_FIX)
    assert again.code == 0
    assert "already so" in again.out
    assert lab.calls(host="hv12", template="host_migration_set") == 1


def test_migration_preflight_no_longer_blames_hv12s_settings(lab: Lab) -> None:
    """The checks of hvauto migrate (migration enabled, Kerberos, named networks) pass for hv12 afterwards."""
    settings_checks = {"dest.migration", "dest.auth", "dest.networks"}

    def hv12_checks() -> set[str]:
        res = hv("migrate", "--shared-nothing", "vm02", "hv12", "--what-if", "-o", "json")
        return {p["check"] for p in res.json()["problems"] if p["host"] == "hv12"}

    assert {"dest.migration", "dest.auth"} <= hv12_checks()
    assert hv(*HV12_FIX).code == 0
    assert not hv12_checks() & settings_checks


def test_a_host_without_a_version_in_the_inventory_is_asked_its_facts_once(lab: Lab) -> None:
    """hv12 has no `os` in the lab inventory: the facts read gives its version; the change renders without a probe."""
    res = hv("host", "migration", "hv12", "--max-vm", "3")
    assert res.code == 0, res.err
    assert lab.calls(host="hv12", template="host_facts") == 1
    assert lab.calls(host="hv12", template="host_migration_set") == 1


def test_what_if_changes_nothing(lab: Lab) -> None:
    before = lab.store.snapshot()
    res = hv(*HV12_FIX, "--what-if")
    assert res.code == 0, res.err
    assert "would change" in res.out
    assert lab.store.snapshot() == before
    assert lab.calls(template="host_migration_set") == 0


def test_a_group_and_every_option(lab: Lab) -> None:
    res = hv("host", "migration", "hyperv", "--enable", "--auth", "kerberos", "--networks", "10.0.50.0/24,10.0.51.0/24",
             "--performance", "smb", "--max-vm", "4", "--max-storage", "3", "-o", "json")
    assert res.code == 0, res.err
    doc = res.json()
    assert set(doc["hosts"]) == {"hostA", "hostB", "hv12"}
    for host in ("hostA", "hostB", "hv12"):
        s = doc["hosts"][host]["settings"]
        assert (s["enabled"], s["auth_type"], s["use_any_network"]) == (True, "Kerberos", False)
        assert sorted(s["networks"]) == ["10.0.50.0/24", "10.0.51.0/24"]
        assert (s["max_vm_migrations"], s["max_storage_migrations"], s["performance_option"]) == (4, 3, "SMB")
        assert migration_of(host) == s


def test_networks_are_set_exactly_and_any_network_can_come_back(lab: Lab) -> None:
    assert hv("host", "migration", "hostA", "--networks", "10.0.52.0/24").code == 0
    assert migration_of("hostA")["networks"] == ["10.0.52.0/24"]
    assert hv("host", "migration", "hostA", "--use-any-network").code == 0
    assert migration_of("hostA")["use_any_network"] is True
    res = hv("host", "migration", "hostA", "--disable")
    assert res.code == 0 and migration_of("hostA")["enabled"] is False


def test_credssp_is_warned_about(lab: Lab) -> None:
    res = hv("host", "migration", "hostB", "--auth", "credssp")
    assert res.code == 0, res.err
    assert "Credential Guard" in res.err
    assert migration_of("hostB")["auth_type"] == "CredSSP"


def test_credssp_is_refused_on_2025_before_any_remote_call(lab: Lab) -> None:
    inv = lab.paths.inventory
    inv.write_text(inv.read_text().replace('[hosts.hostB]\nroles = ["hyperv"]\nos = "2022"',
                                           '[hosts.hostB]\nroles = ["hyperv"]\nos = "2025"'))
    with lab.store.transaction() as est:
        host = est.get("host", "hostB")
        assert host is not None
        host.update(os="2025", os_version="10.0.26100")
        est.put("host", "hostB", host, host="hostB")
    res = hv("host", "migration", "hostB", "--auth", "credssp")
    assert res.code == ExitCode.PREFLIGHT
    assert "Credential Guard" in res.err and "--auth kerberos" in res.err
    assert lab.calls() == 0
    assert hv("host", "migration", "hostB", "--auth", "kerberos").code == 0


def test_performance_needs_2012r2(lab: Lab) -> None:
    inv = lab.paths.inventory
    inv.write_text(inv.read_text().replace('[hosts.hv12]\nroles = ["hyperv"]', '[hosts.hv12]\nroles = ["hyperv"]\nos = "2012"'))
    with lab.store.transaction() as est:
        host = est.get("host", "hv12")
        assert host is not None
        host.update(os="2012", os_version="6.2.9200")
        est.put("host", "hv12", host, host="hv12")
    res = hv("host", "migration", "hv12", "--performance", "compression")
    assert res.code == ExitCode.PREFLIGHT
    assert "2012 R2" in res.err
    assert lab.calls() == 0
    script = lab.session().render("hv12", "host_migration_set", {"PerformanceOption": "SMB"}, version="2012")
    assert "-VirtualMachineMigrationPerformanceOption" not in script.body


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--networks", "10.0.50.0/33"], "is not a subnet"),
        (["--networks", "10.0.50.0/24", "--use-any-network"], "contradict"),
        (["--max-vm", "0"], "out of range"),
        (["--auth", "ntlm"], "Invalid value"),
    ],
)
def test_bad_options_are_usage_errors_with_no_remote_call(lab: Lab, argv: list[str], needle: str) -> None:
    res = hv("host", "migration", "hv12", *argv)
    assert res.code == ExitCode.USAGE
    assert needle in res.err
    assert lab.calls() == 0


def test_one_host_down_the_others_still_change(lab: Lab) -> None:
    assert hv("lab", "fault", "hostB", "--down").code == 0
    res = hv("--retries", "1", "host", "migration", "hyperv", "--max-vm", "3", "-o", "json")
    assert res.code == ExitCode.PARTIAL
    doc = res.json()
    assert {h for h, m in doc["hosts"].items() if not m["ok"]} == {"hostB"}
    assert {h: m["settings"]["max_vm_migrations"] for h, m in doc["hosts"].items() if m["ok"]} == {"hostA": 3,
                                                                                                 "hv12": 3}
