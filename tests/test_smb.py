"""hvauto smb share: provisioning shares for VM storage through the real CLI against the lab."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from hvauto.errors import ExitCode
from hvauto.lab.estate import DOMAIN_SID, OS_INFO
from hvauto.lab.handlers import smb as lab_smb
from hvauto.ops.smb import Grantee, ShareAce, ShareState, plan_share

from .conftest import Lab, hv

SHARE = ["VMs", "--server", "fs01"]
CREATE = ["smb", "share", "create", *SHARE, "--path", "D:\\Shares\\VMs", "--hosts", "hostA,hostB"]
EVERYONE = "S-1-1-0"
HOST_A_SID = f"{DOMAIN_SID}-1102"
HOST_B_SID = f"{DOMAIN_SID}-1103"


def show(lab: Lab) -> dict[str, Any]:
    res = hv("smb", "share", "show", *SHARE, "-o", "json")
    assert res.code == 0, res.err
    data: dict[str, Any] = res.json()
    return data


def set_os(lab: Lab, host: str, os: str) -> None:
    """Make a lab host (and the inventory's idea of it) run another Windows Server version."""
    text = lab.paths.inventory.read_text()
    block = f"[hosts.{host}]\n"
    head, tail = text.split(block, 1)
    body, rest = tail.split("\n\n", 1)
    body = "\n".join(line for line in body.splitlines() if not line.startswith("os ="))
    lab.paths.inventory.write_text(f"{head}{block}{body}\nos = \"{os}\"\n\n{rest}")
    with lab.store.transaction() as est:
        rec = est.get("host", host)
        assert rec is not None
        rec["os"] = os
        rec["os_version"], rec["caption"], rec["ps_version"] = OS_INFO[os]
        est.put("host", host, rec, host=host)


def hand_made_share(lab: Lab, path: str = "D:\\Shares\\VMs", **access: list[str]) -> None:
    """What an admin's `New-SmbShare -Name VMs -Path ...` left behind (the lab's own New-SmbShare)."""
    with lab.store.transaction() as est:
        lab_smb.create_folder(est, "fs01", path)
        lab_smb.new_smb_share(est, "fs01", "VMs", path, **access)


# -- create, show, idempotency --------------------------------------------------------------------------

def test_create_grants_full_on_share_and_folder_and_show_lists_it(lab: Lab) -> None:
    res = hv(*CREATE)
    assert res.code == 0, res.err
    assert "done: create share VMs" in res.out
    # One round trip to read, one to apply (and read back) on the file server.
    assert lab.calls(host="fs01", template="smb_share_get") == 1
    assert lab.calls(host="fs01") == 2
    data = show(lab)
    share = {a["account"]: a for a in data["share_acl"]}
    assert set(share) == {"LAB\\hostA$", "LAB\\hostB$"}
    assert all(a["type"] == "Allow" and a["right"] == "Full" for a in share.values())
    assert share["LAB\\hostA$"]["sid"] == HOST_A_SID
    folder = {a["account"]: a for a in data["folder_acl"] if not a["inherited"]}
    for account in ("LAB\\hostA$", "LAB\\hostB$"):
        ace = folder[account]
        assert (ace["type"], ace["rights"]) == ("Allow", "FullControl")
        assert ace["inheritance"] == "ContainerInherit, ObjectInherit" and ace["propagation"] == "None"
    assert EVERYONE not in {a["sid"] for a in data["share_acl"] + data["folder_acl"]}
    assert "Everyone" not in res.out + str(data)
    hosts = {h["host"]: h for h in data["hosts"]}
    assert hosts["hostA"]["can_use"] and hosts["hostB"]["can_use"] and hosts["hostA"]["delegation"]
    assert not hosts["hv12"]["can_use"]
    assert data["problems"] == []


def test_second_run_changes_nothing_and_says_so(lab: Lab) -> None:
    assert hv(*CREATE).code == 0
    before = lab.store.snapshot()
    res = hv(*CREATE)
    assert res.code == 0, res.err
    assert "already as asked: nothing to change" in res.out
    assert "nothing to change" in res.out.split("delegation:", 1)[1]
    assert lab.store.snapshot() == before
    assert lab.calls(template="smb_share_apply") == 1
    assert lab.calls(template="ad_delegation_set") == 2  # hostA and hostB, first run only
    data = hv(*CREATE, "-o", "json").json()
    assert data["changed"] is False and data["changes"] == []


def test_what_if_prints_the_plan_and_changes_nothing(lab: Lab) -> None:
    before = lab.store.snapshot()
    res = hv(*CREATE, "--what-if")
    assert res.code == 0, res.err
    assert "would: create folder D:\\Shares\\VMs" in res.out
    assert "would: create share VMs" in res.out and "LAB\\hostA$" in res.out
    assert "nothing changed" in res.out
    assert lab.store.snapshot() == before
    assert lab.calls(template="smb_share_apply") == 0
    assert lab.calls(template="ad_delegation_set") == 0


def test_create_with_admins_group_and_flags(lab: Lab) -> None:
    res = hv(*CREATE, "--group", "Hyper-V Admins", "--admins", "LAB\\Administrator", "--encrypt")
    assert res.code == 0, res.err
    data = show(lab)
    accounts = {a["account"] for a in data["share_acl"]}
    assert accounts == {"LAB\\hostA$", "LAB\\hostB$", "LAB\\Hyper-V Admins", "LAB\\Administrator"}
    assert {a["account"] for a in data["folder_acl"] if not a["inherited"]} == accounts
    assert data["settings"]["encrypt_data"] is True


def test_a_clustered_host_brings_its_cluster_account(lab: Lab) -> None:
    text = lab.paths.inventory.read_text()
    lab.paths.inventory.write_text(text.replace('[hosts.hostA]\n', '[hosts.hostA]\ncluster = "clus1"\n'))
    with lab.store.transaction() as est:
        est.put("computer", "clus1", {"key": "clus1", "name": "clus1", "sam": "clus1$", "dns": "clus1.lab.test",
                                      "sid": f"{DOMAIN_SID}-1300", "os": "2022", "allowed_to_delegate_to": [],
                                      "trusted_to_auth_for_delegation": False})
    res = hv(*CREATE)
    assert res.code == 0, res.err
    data = show(lab)
    assert "LAB\\clus1$" in {a["account"] for a in data["share_acl"]}
    assert f"{DOMAIN_SID}-1300" in {a["sid"] for a in data["folder_acl"] if a["rights"] == "FullControl"}


def test_flags_are_turned_on_for_an_existing_share(lab: Lab) -> None:
    assert hv(*CREATE).code == 0
    res = hv(*CREATE, "--encrypt", "--continuously-available", "-o", "json")
    assert res.code == 0, res.err
    assert {"action": "set", "target": "share VMs", "detail": "SMB encryption on",
            "disruptive": False} in res.json()["changes"]
    settings = show(lab)["settings"]
    assert settings["encrypt_data"] is True and settings["continuously_available"] is True


# -- reconciling a share made by hand ------------------------------------------------------------------

def test_new_smbshare_without_access_lists_grants_everyone_read(lab: Lab) -> None:
    hand_made_share(lab)
    data = show(lab)
    assert [(a["sid"], a["type"], a["right"]) for a in data["share_acl"]] == [(EVERYONE, "Allow", "Read")]
    assert data["share_acl"][0]["account"] == "Everyone"
    assert "Everyone has access to the share" in data["problems"]


def test_extras_are_reported_and_pruned_only_when_asked(lab: Lab) -> None:
    hand_made_share(lab)
    res = hv(*CREATE)
    assert res.code == 0, res.err
    assert "extra (kept; --prune removes it): share: Everyone (S-1-1-0) has Allow Read" in res.err
    data = show(lab)
    assert EVERYONE in {a["sid"] for a in data["share_acl"]}
    # Set-SmbPathAcl would copy Everyone to the folder: with an extra kept, the folder is set ACE by ACE.
    assert EVERYONE not in {a["sid"] for a in data["folder_acl"]}
    res = hv(*CREATE, "--prune")
    assert res.code == 0, res.err
    assert "done: revoke share VMs: Everyone (S-1-1-0, Allow Read)" in res.out
    data = show(lab)
    assert {a["sid"] for a in data["share_acl"]} == {HOST_A_SID, HOST_B_SID}
    assert data["problems"] == []


def test_prune_leaves_deny_entries_and_says_so(lab: Lab) -> None:
    hand_made_share(lab, full=["LAB\\hostA$"], read=["BUILTIN\\Users"], no_access=["LAB\\hv12$"])
    res = hv(*CREATE, "--prune")
    assert res.code == 0, res.err
    assert "done: revoke share VMs: BUILTIN\\Users" in res.out
    assert "extra (kept; a deny entry; Unblock-SmbShareAccess removes it): share: LAB\\hv12$" in res.err
    data = show(lab)
    assert {(a["account"], a["type"]) for a in data["share_acl"]} == {
        ("LAB\\hostA$", "Allow"), ("LAB\\hostB$", "Allow"), ("LAB\\hv12$", "Deny")}
    assert "share: LAB\\hv12$ is denied access" in data["problems"]


def test_access_is_compared_by_sid_not_by_name(lab: Lab) -> None:
    # Hosts already granted under another spelling (by SID, lower-case name) count as granted.
    hand_made_share(lab, full=[HOST_A_SID, "lab\\HOSTB$"])
    res = hv(*CREATE, "-o", "json")
    assert res.code == 0, res.err
    changes = res.json()["changes"]
    assert not any(c["target"].startswith("share") for c in changes)
    assert any(c["target"].startswith("folder") and "LAB\\hostA$" in c["detail"] for c in changes)


def test_an_existing_share_on_another_path_is_not_touched(lab: Lab) -> None:
    with lab.store.transaction() as est:
        est.put("volume", "fs01/E", {"key": "fs01/E", "host": "fs01", "letter": "E", "size": 1 << 40,
                                     "used_other": 0}, host="fs01")
    hand_made_share(lab, path="E:\\Other", full=["LAB\\hostA$"])
    before = lab.store.snapshot()
    res = hv(*CREATE)
    assert res.code == ExitCode.PREFLIGHT
    assert "already shares E:\\Other, not D:\\Shares\\VMs" in res.err
    assert lab.store.snapshot() == before


def test_an_account_that_does_not_resolve_stops_before_any_change(lab: Lab) -> None:
    before = lab.store.snapshot()
    res = hv(*CREATE, "--admins", "LAB\\nobody-here")
    assert res.code == ExitCode.PREFLIGHT
    assert "LAB\\nobody-here: Some or all identity references could not be translated." in res.err
    assert lab.store.snapshot() == before


# -- 2012 / 2012 R2 ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("os", "path_acl"), [("2012", False), ("2012r2", True), ("2022", True)])
def test_folder_acl_per_version(lab: Lab, os: str, path_acl: bool) -> None:
    set_os(lab, "fs01", os)
    res = hv(*CREATE, "-o", "json")
    assert res.code == 0, res.err
    folder = [c for c in res.json()["changes"] if c["target"].startswith("folder ") and c["action"] != "create"]
    assert any("Set-SmbPathAcl" in c["detail"] for c in folder) is path_acl
    # ACE by ACE: one change per host; Set-SmbPathAcl: one change for the whole folder ACL.
    assert len(folder) == (1 if path_acl else 2)
    data = show(lab)
    for sid in (HOST_A_SID, HOST_B_SID):
        assert any(a["sid"] == sid and a["rights"] == "FullControl" and not a["inherited"] for a in data["folder_acl"])
    assert hv(*CREATE).out.count("nothing to change") >= 1


# -- grant, revoke ---------------------------------------------------------------------------------------

def test_grant_and_revoke_hosts(lab: Lab) -> None:
    assert hv("smb", "share", "create", *SHARE, "--path", "D:\\Shares\\VMs", "--hosts", "hostA").code == 0
    res = hv("smb", "share", "grant", *SHARE, "--hosts", "hostB")
    assert res.code == 0, res.err
    assert {a["sid"] for a in show(lab)["share_acl"]} == {HOST_A_SID, HOST_B_SID}
    assert "nothing to change" in hv("smb", "share", "grant", *SHARE, "--hosts", "hostB").out
    res = hv("smb", "share", "revoke", *SHARE, "--hosts", "hostB")
    assert res.code == 0, res.err
    data = show(lab)
    assert {a["sid"] for a in data["share_acl"]} == {HOST_A_SID}
    assert HOST_B_SID not in {a["sid"] for a in data["folder_acl"]}
    # The last entry never goes: a share with an empty ACL is of no use to anyone.
    res = hv("smb", "share", "revoke", *SHARE, "--hosts", "hostA")
    assert res.code == ExitCode.PREFLIGHT
    assert "no access entries" in res.err


def test_grant_on_a_missing_share_is_not_found(lab: Lab) -> None:
    res = hv("smb", "share", "grant", *SHARE, "--hosts", "hostB")
    assert res.code == ExitCode.NOT_FOUND
    assert "no share named 'VMs' on fs01" in res.err


# -- remove ----------------------------------------------------------------------------------------------

def put_vm_on_share(lab: Lab, server: str = "fs01") -> None:
    with lab.store.transaction() as est:
        vm = next(v for v in est.all("vm", host="hostA") if v["name"] == "vm02")
        vm["disks"][0]["path"] = f"\\\\{server}\\VMs\\vm02\\vm02.vhdx"
        est.put("vm", vm["key"], vm, host="hostA")


@pytest.mark.parametrize("server", ["fs01", "FS01.lab.test"])
def test_remove_refuses_while_vm_files_are_on_it(lab: Lab, server: str) -> None:
    assert hv(*CREATE).code == 0
    put_vm_on_share(lab, server)
    res = hv("smb", "share", "remove", *SHARE)
    assert res.code == ExitCode.PREFLIGHT
    assert "hostA: VM vm02 uses" in res.err
    assert show(lab)["name"] == "VMs"
    res = hv("smb", "share", "remove", *SHARE, "--force")
    assert res.code == 0, res.err
    assert hv("smb", "share", "show", *SHARE).code == ExitCode.NOT_FOUND
    with lab.store.transaction() as est:
        assert lab_smb.get_folder(est, "fs01", "D:\\Shares\\VMs") is not None  # the data stays


def test_remove_refuses_while_files_are_open(lab: Lab) -> None:
    assert hv(*CREATE).code == 0
    with lab.store.transaction() as est:
        est.put("smb_open_file", "1", {"key": "1", "host": "fs01", "path": "D:\\Shares\\VMs\\x\\x.vhdx",
                                       "client": "10.0.0.99", "user": "LAB\\someone$"}, host="fs01")
    res = hv("smb", "share", "remove", *SHARE)
    assert res.code == ExitCode.PREFLIGHT
    assert "10.0.0.99 (LAB\\someone$) has D:\\Shares\\VMs\\x\\x.vhdx open" in res.err


def test_remove_an_unused_share_then_again(lab: Lab) -> None:
    assert hv(*CREATE).code == 0
    before = lab.store.snapshot()
    assert "what if: remove share VMs" in hv("smb", "share", "remove", *SHARE, "--what-if").out
    assert lab.store.snapshot() == before
    res = hv("smb", "share", "remove", *SHARE)
    assert res.code == 0, res.err
    assert "the folder D:\\Shares\\VMs and its data stay" in res.out
    res = hv("smb", "share", "remove", *SHARE)
    assert res.code == 0 and "nothing to do" in res.out


# -- validation: exit 2, no remote call -------------------------------------------------------------------

BAD_INPUT = [
    (["smb", "share", "create", "V/Ms", "--server", "fs01", "--path", "D:\\S", "--hosts", "hostA"], "contains /"),
    (["smb", "share", "create", "VM*", "--server", "fs01", "--path", "D:\\S", "--hosts", "hostA"], "contains *"),
    (["smb", "share", "create", "x" * 81, "--server", "fs01", "--path", "D:\\S", "--hosts", "hostA"], "at most 80"),
    (["smb", "share", "create", "ADMIN$", "--server", "fs01", "--path", "D:\\S", "--hosts", "hostA"],
     "administrative share"),
    (["smb", "share", "create", "VMs", "--server", "fs01", "--path", "Shares\\VMs", "--hosts", "hostA"],
     "not an absolute local path"),
    (["smb", "share", "create", "VMs", "--server", "fs01", "--path", "\\\\fs01\\VMs", "--hosts", "hostA"],
     "is a UNC path"),
    (["smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\a\\..\\b", "--hosts", "hostA"],
     "contains . or .."),
    (["smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\a|b", "--hosts", "hostA"], "contains |"),
    (["smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\S", "--hosts", "hostA,nosuch"],
     "unknown host 'nosuch'"),
    (["smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\S", "--hosts", "dc01"],
     "dc01 is not a Hyper-V host"),
    (["smb", "share", "create", "VMs", "--server", "nosuchfs", "--path", "D:\\S", "--hosts", "hostA"],
     "unknown file server 'nosuchfs'"),
    (["smb", "share", "show", "a:b", "--server", "fs01"], "contains :"),
    (["smb", "share", "grant", "VMs", "--server", "fs01", "--hosts", "ghost"], "unknown host 'ghost'"),
    (["smb", "share", "revoke", "VMs", "--server", "fs01", "--hosts", "fs01"], "fs01 is not a Hyper-V host"),
    (["smb", "share", "remove", "<VMs>", "--server", "fs01"], "contains < >"),
]


@pytest.mark.parametrize(("argv", "needle"), BAD_INPUT, ids=[" ".join(a[2:4]) + ":" + n for a, n in BAD_INPUT])
def test_bad_input_exits_2_with_no_remote_call(lab: Lab, argv: list[str], needle: str) -> None:
    res = hv(*argv)
    assert res.code == ExitCode.USAGE, res.err
    assert needle in res.err
    assert "Traceback" not in res.err
    assert lab.calls() == 0


def test_every_problem_is_reported_at_once(lab: Lab) -> None:
    res = hv("smb", "share", "create", "a?b", "--server", "fs01", "--path", "relative", "--hosts", "nosuch")
    assert res.code == ExitCode.USAGE
    for needle in ("contains ?", "not an absolute local path", "unknown host 'nosuch'"):
        assert needle in res.err
    assert lab.calls() == 0


def test_render_prints_the_read_step_and_contacts_no_host(lab: Lab) -> None:
    res = hv(*CREATE, "--render")
    assert res.code == 0, res.err
    assert "Get-SmbShareAccess" in res.out and "$hvautoEnvelope" in res.out
    assert lab.calls() == 0


def _rendered_values(out: str) -> dict[str, Any]:
    encoded = re.search(r"\$hvautoEnvelope = '([A-Za-z0-9+/=]+)'", out)
    assert encoded is not None, out
    values: dict[str, Any] = json.loads(base64.b64decode(encoded.group(1)))
    return values


@pytest.mark.parametrize(
    ("argv", "accounts"),
    [
        ([*CREATE, "--group", "Hyper-V Hosts", "--admins", "alice"],
         ["LAB\\hostA$", "LAB\\hostB$", "LAB\\Hyper-V Hosts", "LAB\\alice"]),
        (["smb", "share", "show", *SHARE], ["LAB\\hostA$", "LAB\\hostB$"]),
    ],
)
def test_render_binds_the_accounts_the_run_reads(lab: Lab, argv: list[str], accounts: list[str]) -> None:
    """The read step --render prints asks about the same accounts as the command itself (group, admins, hosts)."""
    res = hv(*argv, "--render")
    assert res.code == 0, res.err
    assert [a for a in _rendered_values(res.out)["Account"] if a in accounts] == accounts
    assert lab.calls() == 0


# -- the plan's Set-SmbPathAcl decision (data-driven) ------------------------------------------------------

def _state(share_acl: list[tuple[str, str, str]] | None) -> ShareState:
    return ShareState(server="fs01", name="VMs", exists=share_acl is not None, path="D:\\Shares\\VMs",
                      settings={} if share_acl is not None else None,
                      share_acl=[ShareAce(sid, sid, t, r) for sid, t, r in share_acl or []],
                      folder_exists=True, folder_acl=[], open_files=[], resolved={}, unresolved={})


A, B = Grantee("LAB\\hostA$", HOST_A_SID), Grantee("LAB\\hostB$", HOST_B_SID)
PATH_ACL_CASES = [
    ("new share", None, False, True, True),
    ("new share on 2012", None, False, False, False),
    ("extra kept", [(EVERYONE, "Allow", "Read")], False, True, False),
    ("extra pruned", [(EVERYONE, "Allow", "Read")], True, True, True),
    ("host has Read only", [(HOST_A_SID, "Allow", "Read")], False, True, True),
    ("host denied", [(HOST_A_SID, "Deny", "Full")], True, True, False),
    ("extra deny kept even with prune", [(EVERYONE, "Deny", "Full")], True, True, False),
]


@pytest.mark.parametrize(("acl", "prune", "supported", "expected"), [c[1:] for c in PATH_ACL_CASES],
                         ids=[c[0] for c in PATH_ACL_CASES])
def test_set_smbpathacl_only_when_the_share_acl_is_exactly_the_wanted_principals(
        acl: list[tuple[str, str, str]] | None, prune: bool, supported: bool, expected: bool) -> None:
    plan = plan_share(_state(acl), [A, B], create=True, prune=prune, path_acl_supported=supported)
    assert plan.use_path_acl is expected


# -- broad principals (issue 12) ----------------------------------------------------------------------

@pytest.mark.parametrize("admin", ["NT AUTHORITY\\Authenticated Users", "S-1-5-11", "BUILTIN\\Users"])
def test_a_broad_principal_is_refused_by_sid_unless_allowed(lab: Lab, admin: str) -> None:
    argv = ["smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs", "--hosts", "hostA",
            "--admins", admin, "--no-delegation"]
    res = hv(*argv)
    assert res.code == ExitCode.PREFLIGHT, res.err
    assert "gives every VM's disks to nearly every user" in res.err and "--allow-broad" in res.err
    assert lab.calls(template="smb_share_apply") == 0
    allowed = hv(*argv, "--allow-broad")
    assert allowed.code == 0, allowed.err
    assert lab.calls(template="smb_share_apply") == 1


def test_broad_domain_groups_are_known_by_rid() -> None:
    from hvauto.ops.smb.acl import broad

    assert broad("S-1-5-21-1004336348-1177238915-682003330-513") == "Domain Users"
    assert broad("S-1-5-21-1004336348-1177238915-682003330-512") is None  # Domain Admins names its members
    assert broad("S-1-5-21-1004336348-1177238915-682003330-1105") is None
    assert broad("S-1-5-32-544") is None  # BUILTIN\Administrators
