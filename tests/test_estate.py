"""A lab estate is data: the shipped schema, the default estate, `lab init --estate FILE`, and its errors."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from hvauto import schemas
from hvauto.errors import ExitCode, ValidationError
from hvauto.inventory import load
from hvauto.lab import estatefile
from hvauto.lab.estate import GiB

from .conftest import hv

ROOT = Path(__file__).resolve().parent.parent

SMALL = """\
hosts:
  - name: hvx
    os: "2019"
    roles: [hyperv]
    memory: 64 GiB
    drives: [{letter: D, size: 1 TiB}]
    nics: [{name: NIC1}]
    switches: [{name: LAN, adapters: [NIC1]}]
    vnics: [{name: LAN, switch: LAN, addresses: [10.1.0.5/24]}]
    hyperv: {migration: {enabled: true, auth: Kerberos}}
    vms:
      - {name: app1, state: "Off", version: "9.0", memory: {startup: 2 GiB}, disks: [{size: 40 GiB}],
         adapters: [{switch: LAN}]}
  - {name: hvy, os: "2012", roles: [hyperv], inventory_os: false, hyperv: {}}
computers: [{name: hvx}, {name: hvy}]
"""


def test_the_schema_is_valid_and_the_default_estate_follows_it() -> None:
    schemas.check_schema(schemas.load("estate.schema.json"))
    loaded = estatefile.read(estatefile.default_path())
    assert {h["name"] for h in loaded.objects["host"]} == {"dc01", "fs01", "hostA", "hostB", "hv12"}
    assert ("hv12", ("hyperv",), None) in loaded.inventory


def test_the_default_estate_is_right_by_hyper_v_rules() -> None:
    """Every host that accepts moves only on its migration networks has an address on one of them."""
    objects = estatefile.read(estatefile.default_path()).objects
    for host in objects["host"]:
        mig = (host.get("hyperv") or {}).get("migration") or {}
        if not mig.get("enabled") or mig.get("use_any_network"):
            continue
        nets = [ipaddress.ip_network(n) for n in mig["networks"]]
        addresses = [ipaddress.ip_interface(a).ip for v in objects["vnic"] if v["host"] == host["name"]
                     for a in v["addresses"]]
        assert any(a in n for a in addresses for n in nets), host["name"]


def test_the_readme_example_is_a_valid_estate() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Your own lab estate"):]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None
    loaded = estatefile.parse(example.group(1), "README.md")
    vm = loaded.objects["vm"][0]
    assert vm["memory_dynamic"] and vm["memory_assigned"] == 6 * GiB
    assert vm["disks"][0]["parent"] == {"path": "D:\\Base\\ws2022.vhdx", "file_size": 12 * GiB}
    share = loaded.objects["share"][0]
    assert share["access"][0]["sid"].endswith("-" + str(next(
        c["sid"] for c in loaded.objects["computer"] if c["name"] == "hostA").rsplit("-", 1)[1]))


def test_lab_init_loads_an_estate_file_and_reset_restores_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.yaml").write_text(SMALL, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    res = hv("lab", "init", "lab1", "--estate", "mine.yaml")
    assert res.code == 0, res.err
    inv = load(tmp_path / "lab1" / "hvauto.toml")
    assert sorted(inv.hosts) == ["hvx", "hvy"]
    assert inv.hosts["hvx"].os == "2019" and inv.hosts["hvy"].os is None
    monkeypatch.chdir(tmp_path / "lab1")
    vms = hv("vm", "list", "hvx", "-o", "json").json()["vms"]
    assert [(v["name"], v["version"], v["state"]) for v in vms] == [("app1", "9.0", "Off")]
    assert hv("vm", "list", "hvy", "-o", "json").json()["vms"] == []
    assert hv("host", "show", "hvy", "-o", "json").code == 0
    assert hv("lab", "reset").code == 0
    assert [v["name"] for v in hv("vm", "list", "hvx", "-o", "json").json()["vms"]] == ["app1"]


@pytest.mark.parametrize(("edit", "needle"), [
    (("memory: {startup: 2 GiB}", "memory: {startup: two}"), ":12: hosts[0].vms[0].memory.startup: 'two' is not"),
    (('os: "2019"', 'os: "2008"'), ":3: hosts[0].os: must be one of 2012, 2012r2"),
    (("switch: LAN, addresses", "switch: WAN, addresses"), ":9: hosts[0].vnics[0].switch: hvx has no switch named 'WAN'"),
    (("adapters: [{switch: LAN}]", "adapters: [{switch: LAM}]"),
     "hosts[0].vms[0].adapters[0].switch: hvx has no switch named 'LAM'"),
    (("vms:\n", "vm:\n"), ":11: hosts[0].vm: unknown key 'vm' (did you mean 'vms'?)"),
    (("drives: [{letter: D, size: 1 TiB}]", "drives: [{letter: E, size: 1 TiB}]"),
     "hosts[0].vms[0]: D:\\Hyper-V\\app1 is on drive D:, which hvx does not have"),
])
def test_an_invalid_estate_file_is_exit_2_naming_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           edit: tuple[str, str], needle: str) -> None:
    (tmp_path / "bad.yaml").write_text(SMALL.replace(*edit), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    res = hv("lab", "init", "lab1", "--estate", "bad.yaml")
    assert res.code == ExitCode.USAGE
    assert "invalid lab estate" in res.err and needle in res.err, res.err
    assert "Traceback" not in res.err
    assert not (tmp_path / "lab1").exists()  # nothing half-done


def test_a_share_granting_an_unknown_account_names_it() -> None:
    text = SMALL + """\
groups: [{name: HV Hosts, rid: 1300}]
"""
    text = text.replace("  - {name: hvy,", """  - name: fsx
    os: "2022"
    drives: [{letter: D, size: 1 TiB}]
    shares:
      - {name: VMs, path: 'D:\\VMs', access: [{account: 'LAB\\hvx$', right: Full}, {account: 'LAB\\HV Hosts', right: Full},
         {account: 'LAB\\nobody$', right: Full}]}
  - {name: hvy,""")
    with pytest.raises(ValidationError) as info:
        estatefile.parse(text, "e.yaml")
    assert info.value.problems == [
        "e.yaml:19: hosts[1].shares[0].access[2].account: 'LAB\\nobody$' is not an account of LAB (a computer is "
        "LAB\\NAME$) nor a well-known one"]


def test_two_vms_may_share_a_name_and_two_hosts_a_vmid(tmp_path: Path) -> None:
    text = SMALL.replace("""  - {name: hvy, os: "2012", roles: [hyperv], inventory_os: false, hyperv: {}}""", """\
      - {name: app1, id: 0a1b2c3d-0000-4000-8000-000000000001, state: "Off", version: "9.0", memory: {startup: 1 GiB}}
  - name: hvy
    os: "2019"
    drives: [{letter: D, size: 1 TiB}]
    hyperv: {}
    vms:
      - {name: twin, id: 0a1b2c3d-0000-4000-8000-000000000001, state: "Off", version: "9.0", memory: {startup: 1 GiB}}
""")
    vms = estatefile.parse(text, "e.yaml").objects["vm"]
    assert len(vms) == 3 and len({v["key"] for v in vms}) == 3


def test_a_script_that_fails_half_way_keeps_what_it_did_before(lab: Any) -> None:
    """A PowerShell script is no transaction: the folder it created stays when the share step then throws."""
    from hvauto.errors import RemoteScriptError

    with lab.session() as session, pytest.raises(RemoteScriptError) as info:
        session.run("fs01", "smb_share_apply", {"Name": "Half", "Path": "D:\\Shares\\Half", "CreateFolder": True,
                                                "CreateShare": True, "ShareGrantSid": []})
    assert "without explicit Full Access" in info.value.records[0].message
    with lab.store.transaction() as est:
        assert est.get("folder", "fs01/D:\\Shares\\Half") is not None
        assert est.get("share", "fs01/Half") is None
