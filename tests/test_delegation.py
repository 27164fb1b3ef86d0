"""hvauto delegation: constrained delegation written on the AD host, through the real CLI against the lab."""

from __future__ import annotations

from typing import Any

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv

MIG = "Microsoft Virtual System Migration Service"
HOSTB_TO_HOSTA = [f"{MIG}/hostA", f"{MIG}/hostA.lab.test", "cifs/hostA", "cifs/hostA.lab.test"]


def computer(lab: Lab, name: str) -> dict[str, Any]:
    with lab.store.transaction() as est:
        found = est.get("computer", name)
    assert found is not None
    return found


def set_computer(lab: Lab, name: str, **changes: Any) -> None:
    with lab.store.transaction() as est:
        c = est.get("computer", name)
        assert c is not None
        c.update(changes)
        est.put("computer", name, c)


def test_grant_adds_the_four_spns_and_protocol_transition(lab: Lab) -> None:
    assert not computer(lab, "hostB")["allowed_to_delegate_to"]
    res = hv("delegation", "grant", "hostB", "--to", "hostA")
    assert res.code == 0, res.err
    for spn in HOSTB_TO_HOSTA:
        assert f"added {spn}" in res.out
    assert "'use any authentication protocol'" in res.out
    assert "after replication" in res.err and "fresh Kerberos ticket" in res.err
    shown = hv("delegation", "show", "hostB", "-o", "json")
    assert shown.code == 0, shown.err
    data = shown.json()
    assert sorted(data["allowed_to_delegate_to"]) == sorted(HOSTB_TO_HOSTA)
    assert data["trusted_to_auth_for_delegation"] is True
    assert data["targets"] == [{"host": "hostA", "migration": True, "cifs": True, "partial": []}]
    assert data["problems"] == []
    # Written on the AD host, in one call; nothing ran on the Hyper-V hosts but the CredSSP check.
    assert lab.calls(host="dc01", template="ad_delegation_set") == 1
    assert lab.calls(host="hostA") == 0


def test_a_mesh_grant_asks_each_host_its_facts_once(lab: Lab) -> None:
    """The CredSSP check's facts read also gives hv12's version (not in the inventory) for protocol transition."""
    res = hv("delegation", "grant", "--mesh", "hyperv", "--what-if")
    assert res.code == 0, res.err
    for host in ("hostA", "hostB", "hv12"):
        assert lab.calls(host=host, template="host_facts") == 1


def test_a_second_grant_changes_nothing_and_says_so(lab: Lab) -> None:
    assert hv("delegation", "grant", "hostB", "--to", "hostA").code == 0
    before = lab.store.snapshot()
    res = hv("delegation", "grant", "hostB", "--to", "hostA")
    assert res.code == 0, res.err
    assert "already so: nothing to change" in res.out
    assert "replication" not in res.err
    assert lab.store.snapshot() == before
    assert lab.calls(template="ad_delegation_set") == 1


def test_grant_never_replaces_the_existing_list(lab: Lab) -> None:
    set_computer(lab, "hostB", allowed_to_delegate_to=["HOST/backup01", "cifs/HOSTA"])
    res = hv("delegation", "grant", "hostB", "--to", "hostA", "-o", "json")
    assert res.code == 0, res.err
    added = res.json()["sources"][0]["add"]
    assert "cifs/hostA" not in added and len(added) == 3  # SPNs compare case-insensitively
    spns = computer(lab, "hostB")["allowed_to_delegate_to"]
    assert spns[:2] == ["HOST/backup01", "cifs/HOSTA"]
    assert len(spns) == 5


def test_what_if_changes_nothing(lab: Lab) -> None:
    before = lab.store.snapshot()
    res = hv("delegation", "grant", "hostB", "--to", "hostA", "--what-if")
    assert res.code == 0, res.err
    assert f"would add {MIG}/hostA.lab.test" in res.out
    assert "what if: 5 changes; nothing changed" in res.out  # 4 SPNs and protocol transition
    assert lab.store.snapshot() == before
    assert lab.calls(template="ad_delegation_set") == 0


def test_services_choose_the_spns(lab: Lab) -> None:
    assert hv("delegation", "grant", "hostB", "--to", "hostA", "--services", "cifs").code == 0
    assert sorted(computer(lab, "hostB")["allowed_to_delegate_to"]) == ["cifs/hostA", "cifs/hostA.lab.test"]


def test_mesh_covers_every_ordered_pair(lab: Lab) -> None:
    res = hv("delegation", "grant", "--mesh", "hyperv")
    assert res.code == 0, res.err
    hosts = ["hostA", "hostB", "hv12"]
    for src in hosts:
        spns = {s.lower() for s in computer(lab, src)["allowed_to_delegate_to"]}
        for dest in hosts:
            if dest != src:
                assert f"{MIG}/{dest}.lab.test".lower() in spns and f"cifs/{dest}".lower() in spns
    # Protocol transition where the source runs 2016+; hv12 runs 2012 R2.
    assert computer(lab, "hostB")["trusted_to_auth_for_delegation"] is True
    assert computer(lab, "hv12")["trusted_to_auth_for_delegation"] is False
    # hv12 migrates with CredSSP, which would ignore the delegation: said, not silently accepted.
    assert "hv12 authenticates live migration with CredSSP" in res.err


def test_credssp_on_2025_is_called_out_with_the_reason(lab: Lab) -> None:
    with lab.store.transaction() as est:
        h = est.get("host", "hv12")
        assert h is not None
        h["os"], h["os_version"] = "2025", "10.0.26100"
        est.put("host", "hv12", h, host="hv12")
    res = hv("delegation", "grant", "hv12", "--to", "hostA")
    assert res.code == 0, res.err
    assert "cannot be used for live migration on Windows Server 2025" in res.err


def test_revoke_removes_only_that_destination(lab: Lab) -> None:
    set_computer(lab, "hostB", allowed_to_delegate_to=["HOST/backup01"])
    assert hv("delegation", "grant", "hostB", "--to", "hostA").code == 0
    res = hv("delegation", "revoke", "hostB", "--to", "hostA")
    assert res.code == 0, res.err
    assert "removed cifs/hostA.lab.test" in res.out
    assert computer(lab, "hostB")["allowed_to_delegate_to"] == ["HOST/backup01"]
    assert "nothing to change" in hv("delegation", "revoke", "hostB", "--to", "hostA").out


def test_show_reports_the_lab_default_and_half_configured_accounts(lab: Lab) -> None:
    data = hv("delegation", "show", "hostA", "-o", "json").json()
    assert data["targets"] == [{"host": "hostB", "migration": True, "cifs": True, "partial": []}]
    set_computer(lab, "hostB", allowed_to_delegate_to=[f"{MIG}/hostA"], trusted_to_auth_for_delegation=False)
    res = hv("delegation", "show", "hostB")
    assert res.code == 0, res.err
    assert f"missing {MIG}/hostA.lab.test" in res.err
    assert "Kerberos only" in res.err


BAD = [
    (["delegation", "grant", "hostB", "--to", "nosuch"], "unknown destination host 'nosuch'"),
    (["delegation", "grant", "nosuch", "--to", "hostA"], "unknown source host 'nosuch'"),
    (["delegation", "grant", "hostA", "--to", "hostA"], "cannot delegate to itself"),
    (["delegation", "grant", "hostB"], "no destination given"),
    (["delegation", "grant", "hostB", "--to", "hostA", "--services", "http"], "unknown service(s) http"),
    (["delegation", "grant", "--mesh", "nosuchgroup"], "unknown group 'nosuchgroup'"),
    (["delegation", "grant", "hostB", "--mesh", "hyperv"], "--mesh GROUP takes no SRC"),
    (["delegation", "revoke", "hostB", "--to", "ghost"], "unknown destination host 'ghost'"),
]


@pytest.mark.parametrize(("argv", "needle"), BAD, ids=[n for _, n in BAD])
def test_bad_input_exits_2_with_no_remote_call(lab: Lab, argv: list[str], needle: str) -> None:
    res = hv(*argv)
    assert res.code == ExitCode.USAGE, res.err
    assert needle in res.err
    assert lab.calls() == 0


def test_show_of_an_unknown_host_is_not_found(lab: Lab) -> None:
    # A read command: the host is not there (4), not bad input (2, what a changing command says).
    res = hv("delegation", "show", "ghost")
    assert res.code == ExitCode.NOT_FOUND, res.err
    assert "unknown host 'ghost'" in res.err
    assert lab.calls() == 0


def test_share_create_delegates_cifs_for_each_host(lab: Lab) -> None:
    res = hv("smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs", "--hosts", "hostB")
    assert res.code == 0, res.err
    assert sorted(computer(lab, "hostB")["allowed_to_delegate_to"]) == ["cifs/fs01", "cifs/fs01.lab.test"]
    before = computer(lab, "hv12")
    res = hv("smb", "share", "grant", "VMs", "--server", "fs01", "--hosts", "hv12", "--no-delegation")
    assert res.code == 0, res.err
    assert computer(lab, "hv12") == before


def test_grant_lets_the_migration_preflight_pass(lab: Lab) -> None:
    """`delegation grant hostB --to hostA` is what `migrate --shared-nothing vm01 hostA` asks for from hostB."""
    with lab.store.transaction() as est:
        vm = next(v for v in est.all("vm", host="hostA") if v["name"] == "vm01")
        vm["host"] = "hostB"
        est.put("vm", vm["key"], vm, host="hostB")
    res = hv("migrate", "--shared-nothing", "vm01", "hostA", "--what-if")
    assert res.code == ExitCode.PREFLIGHT
    said = res.out + res.err
    assert "hostB may not delegate to hostA" in said
    assert "fix: hvauto delegation grant hostB --to hostA" in said
    assert hv("delegation", "grant", "hostB", "--to", "hostA").code == 0
    res = hv("migrate", "--shared-nothing", "vm01", "hostA", "--what-if")
    assert res.code == 0, res.err
    assert "preflight: no problems found" in res.out
    assert "delegat" not in res.out + res.err
