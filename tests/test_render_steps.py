"""``--render`` tells the whole truth: every step of every command, in order, and no host contacted.

Data-driven over every command that takes ``--render``. For each case:

* the render (``-o json``: one ``step`` event per step) makes no lab call and changes nothing,
  and shows the change steps (the cmdlets that do the work) and none of what must not run;
* the real command, run afterwards on the same estate, sends no template to any host that the
  render did not list for that host (the render is never a subset of the truth).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import Lab, hv

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "playbooks" / "fabric-converged.yaml")
SHARE = ["VMs", "--server", "fs01"]
CREATE = ["smb", "share", "create", *SHARE, "--path", "D:\\Shares\\VMs", "--hosts", "hostA,hostB"]
START = ["migrate", "--shared-nothing", "vm01", "hostB", "--from", "hostA"]


@dataclass
class Case:
    id: str
    argv: list[str]
    #: Templates the render must list (the steps that do the work).
    templates: list[str]
    #: Text that must appear in the rendered scripts (the cmdlet or WMI method of the change).
    shows: list[str] = field(default_factory=list)
    #: Text that must appear in no rendered script.
    never: list[str] = field(default_factory=list)
    #: Commands run first (on the lab) to set the scene; "start-move": vm01's move to hostB, left running.
    setup: list[list[str] | str] = field(default_factory=list)
    #: Lab speed for the real run (a running move for --cancel / --watch needs a slow one).
    speed: float = 2000
    #: The real run must send these templates too (the scenario really exercises the change).
    real_sends: list[str] = field(default_factory=list)


CASES = [
    Case("migrate-shared-nothing", START, ["vm_list", "migrate_source_preflight", "migrate_dest_preflight",
                                           "ad_computer_get", "migrate_start", "migrate_status", "migrate_cleanup"],
         shows=["MigrateVirtualSystemToHost", "Msvm_VirtualSystemMigrationService"],
         never=["Move-VM ", "Compare-VM", "-DestinationHost"], real_sends=["migrate_start"]),
    Case("migrate-storage-path", [*START, "--storage-path", "D:\\Moved\\vm01"], ["migrate_start"],
         shows=["MigrateVirtualSystemToHost"], never=["Move-VM ", "Compare-VM"], real_sends=["migrate_start"]),
    Case("migrate-live", ["migrate", "--live", "vm01", "hostB", "--from", "hostA"],
         ["migrate_start", "migrate_cluster_start"], shows=["MigrateVirtualSystemToHost"], never=["Compare-VM"]),
    Case("migrate-cancel", ["migrate", "--cancel", "vm01", "--from", "hostA"], ["migrate_cancel", "migrate_cleanup"],
         shows=["RequestStateChange", "DestroySystem"], setup=["start-move"], speed=0.01,
         real_sends=["migrate_cancel"]),
    Case("migrate-watch", ["migrate", "--watch", "vm01", "--from", "hostA"], ["migrate_status"],
         shows=["Msvm_MigrationJob"], never=["RequestStateChange"]),
    Case("storage-move", ["storage", "move", "vm01", "D:\\Moved\\vm01", "--host", "hostA"],
         ["storage_move_start", "migrate_status"], shows=["MigrateVirtualSystemToHost"], never=["Move-VMStorage"],
         real_sends=["storage_move_start"]),
    Case("evacuate", ["evacuate", "hostA", "--to", "hostB"], ["vm_list", "migrate_dest_preflight", "migrate_start"],
         shows=["MigrateVirtualSystemToHost"], never=["Move-VM ", "Compare-VM"], real_sends=["migrate_start"]),
    Case("host-migration", ["host", "migration", "hostA", "--max-vm", "3"], ["host_facts", "host_migration_set"],
         shows=["Set-VMHost -MaximumVirtualMachineMigrations"], real_sends=["host_migration_set"]),
    Case("host-migration-group", ["host", "migration", "hyperv", "--networks", "10.0.50.0/24", "--auth", "kerberos"],
         ["host_migration_set"], shows=["Add-VMMigrationNetwork", "Remove-VMMigrationNetwork"],
         real_sends=["host_migration_set"]),
    Case("host-show", ["host", "show", "hostA"], ["host_facts"]),
    Case("vm-list", ["vm", "list"], ["vm_list", "host_facts"], never=["Set-VM", "Remove-VM"]),
    Case("switch-list", ["switch", "list", "hostA"], ["switch_list"]),
    Case("switch-create", ["switch", "create", "hostA", "Lab2", "-t", "private"], ["switch_list", "switch_create"],
         shows=["New-VMSwitch"], real_sends=["switch_create"]),
    Case("switch-remove", ["switch", "remove", "hostA", "Lab2"], ["fabric_get", "switch_remove"],
         shows=["Remove-VMSwitch"], setup=[["switch", "create", "hostA", "Lab2", "-t", "private"]],
         real_sends=["switch_remove"]),
    Case("fabric-plan", ["fabric", "plan", "hostB", "--spec", SPEC], ["fabric_get"], never=["New-VMSwitch"]),
    Case("fabric-apply", ["fabric", "apply", "hostB", "--spec", SPEC], ["fabric_get", "fabric_apply"],
         shows=["New-VMSwitch", "Add-VMNetworkAdapter", "Set-VMNetworkAdapter"]),
    Case("smb-create", CREATE, ["smb_share_get", "smb_share_apply", "ad_computer_get", "ad_delegation_set"],
         shows=["New-SmbShare", "Grant-SmbShareAccess", "msDS-AllowedToDelegateTo"],
         real_sends=["smb_share_apply", "ad_delegation_set"]),
    Case("smb-show", ["smb", "share", "show", *SHARE], ["smb_share_get"], setup=[CREATE]),
    Case("smb-grant", ["smb", "share", "grant", *SHARE, "--hosts", "hv12"], ["smb_share_get", "smb_share_apply"],
         shows=["Grant-SmbShareAccess"], setup=[CREATE], real_sends=["smb_share_apply"]),
    Case("smb-revoke", ["smb", "share", "revoke", *SHARE, "--hosts", "hostB"], ["smb_share_get", "smb_share_apply"],
         shows=["Revoke-SmbShareAccess"], setup=[CREATE], real_sends=["smb_share_apply"]),
    Case("smb-remove", ["smb", "share", "remove", *SHARE], ["smb_share_get", "smb_share_remove"],
         shows=["Remove-SmbShare"], setup=[CREATE], real_sends=["smb_share_remove"]),
    Case("delegation-grant", ["delegation", "grant", "hostA", "--to", "hv12"], ["ad_computer_get", "ad_delegation_set"],
         shows=["Set-ADComputer", "msDS-AllowedToDelegateTo"], real_sends=["ad_delegation_set"]),
    Case("delegation-revoke", ["delegation", "revoke", "hostA", "--to", "hostB"], ["ad_delegation_set"],
         shows=["Set-ADComputer -Identity $computer -Remove"], real_sends=["ad_delegation_set"]),
    Case("delegation-show", ["delegation", "show", "hostA"], ["ad_computer_get"]),
    Case("vm-show", ["vm", "show", "vm01", "--from", "hostA", "--no-moves"], ["vm_show"]),
    Case("doctor", ["doctor"], ["doctor_host", "ad_computer_get"], never=["Set-", "New-VM", "Remove-VM"]),
]


def _speed(lab: Lab, factor: float) -> None:
    assert hv("lab", "speed", str(factor)).code == 0


def _start_move(lab: Lab) -> None:
    vm_id = next(v["id"] for v in hv("vm", "list", "hostA", "-o", "json").json()["vms"] if v["name"] == "vm01")
    with lab.session() as session:
        session.run("hostA", "migrate_start", {"VmId": vm_id, "DestinationHost": "hostB.lab.test",
                                               "DestinationStoragePath": "D:\\Hyper-V\\vm01", "IncludeStorage": True})


def _calls(lab: Lab) -> list[tuple[str, str]]:
    conn = lab.store._conn()
    return [(str(h).lower(), str(t)) for h, t in conn.execute("SELECT host, template FROM calls ORDER BY rowid")]


def _render(argv: list[str]) -> list[dict[str, object]]:
    res = hv(*argv, "--render", "-o", "json")
    assert res.code == 0, res.err
    events = [json.loads(line) for line in res.out.splitlines() if line.strip()]
    assert events and all(e["event"] == "step" for e in events)
    assert [e["step"] for e in events] == list(range(1, len(events) + 1))
    return events


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_render_shows_every_step_and_contacts_no_host(lab: Lab, case: Case) -> None:
    _speed(lab, case.speed)
    for argv in case.setup:
        if argv == "start-move":
            _start_move(lab)
            continue
        res = hv(*argv)
        assert res.code == 0, (argv, res.err)
    before_calls, before_state = lab.calls(), lab.store.snapshot()
    events = _render(case.argv)
    assert lab.calls() == before_calls, "a render contacted a host"
    assert lab.store.snapshot() == before_state
    templates = [str(e["template"]) for e in events]
    for t in case.templates:
        assert t in templates, (t, templates)
    scripts = "\n".join(str(e["script"]) for e in events)
    for text in case.shows:
        assert text in scripts, text
    for text in case.never:
        assert text not in scripts, text
    # The change steps say so, and a step that needs an earlier read's answer names it.
    for e in events:
        assert e["read_only"] is (not any(e["template"].endswith(s) for s in  # type: ignore[union-attr]
                                         ("_set", "_apply", "_create", "_remove", "_start", "_cancel", "_cleanup")))
        for holder in e["placeholders"]:  # type: ignore[union-attr]
            assert holder in _strings(e["params"])

    # The truth: the real run sends nothing the render did not show, to that host.
    rendered = {(str(e["host"]).lower(), str(e["template"])) for e in events}
    start = len(_calls(lab))
    hv(*case.argv)
    sent = _calls(lab)[start:]
    assert sent, "the real run sent nothing"
    assert set(sent) <= rendered, sorted(set(sent) - rendered)
    for t in case.real_sends:
        assert t in {tmpl for _, tmpl in sent}, (t, sent)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [s for v in value for s in _strings(v)] if isinstance(value, list) else []


@pytest.mark.parametrize("argv", [
    ["migrate", "--shared-nothing", "vm01", "hostB", "--from", "nosuch"],
    ["migrate", "--shared-nothing", "vm01", "hostB", "--from", "hostA", "--storage-path", "relative\\path"],
    ["storage", "move", "vm01", "not-a-path", "--host", "hostA"],
    ["evacuate", "hostA", "--to", "nosuch"],
    ["host", "migration", "nosuch", "--max-vm", "2"],
    ["host", "migration", "hostA", "--max-vm", "0"],
    ["switch", "create", "nosuch", "X", "-t", "private"],
    ["switch", "create", "hostA", "X", "-t", "external"],
    ["smb", "share", "create", *SHARE, "--path", "relative", "--hosts", "hostA"],
    ["smb", "share", "create", *SHARE, "--path", "D:\\S", "--hosts", "nosuch"],
    ["smb", "share", "grant", *SHARE, "--hosts", "nosuch"],
    ["delegation", "grant", "hostA", "--to", "nosuch"],
    ["delegation", "grant", "hostA", "--to", "hostB", "--services", "bogus"],
])
def test_render_validates_its_input_as_the_command_does(lab: Lab, argv: list[str]) -> None:
    real = hv(*argv, "--what-if") if argv[0] not in ("smb",) or argv[2] != "show" else hv(*argv)
    rendered = hv(*argv, "--render")
    assert rendered.code == real.code == 2, (rendered.err, real.err)
    assert rendered.out == ""
    assert lab.calls() == 0


def test_render_that_cannot_know_the_source_says_so_and_exits_2(lab: Lab) -> None:
    res = hv("migrate", "--shared-nothing", "vm01", "hostB", "--render")
    assert res.code == 2 and "--from" in res.err
    assert res.out == "" and lab.calls() == 0


def test_render_text_numbers_every_step_and_names_the_placeholders(lab: Lab) -> None:
    res = hv(*START, "--render")
    assert res.code == 0, res.err
    heads = [line for line in res.out.splitlines() if line.startswith("# ==== step ")]
    assert len(heads) == len(_render(START))
    words = " ".join(line[2:].strip() for line in res.out.splitlines() if line.startswith("# "))
    assert "<VMId of vm01>" in words and "<listener addresses of hostB>" in words
    headers = res.out
    for e in _render(START):
        headers = headers.replace(str(e["script"]), "")
    assert all(len(line) <= 80 for line in headers.splitlines()), max(headers.splitlines(), key=len)


def test_a_real_run_refuses_a_placeholder(lab: Lab) -> None:
    from hvauto.errors import TemplateError
    from hvauto.steps import ph

    with lab.session() as session, pytest.raises(TemplateError, match="placeholder"):
        session.run("hostA", "migrate_status", {"VmId": ph("VMId")})
    assert lab.calls() == 0
