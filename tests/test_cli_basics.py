"""The CLI skeleton against the in-process lab: listing, showing, and one clear line per failure."""

from __future__ import annotations

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv


def test_vm_list_json_lists_the_lab_vms(lab: Lab) -> None:
    res = hv("vm", "list", "-o", "json")
    assert res.code == 0, res.err
    names = {(v["host"], v["name"]) for v in res.json()["vms"]}
    assert names == {("hostA", "vm01"), ("hostA", "vm02"), ("hostA", "web01")}
    vm01 = next(v for v in res.json()["vms"] if v["name"] == "vm01")
    assert vm01["state"] == "Running"
    assert vm01["memory_startup"] == 4 * 1024**3
    assert vm01["disks"][0]["path"].startswith("D:\\Hyper-V\\vm01\\")
    assert vm01["disks"][0]["size"] == 60 * 1024**3


def test_vm_list_asks_every_hyperv_host_once(lab: Lab) -> None:
    hv("vm", "list")
    for host in ("hostA", "hostB", "hv12"):
        assert lab.calls(host=host, template="vm_list") == 1
    assert lab.calls(host="fs01") == 0


def test_host_show_hv12_reports_2012r2_and_credssp(lab: Lab) -> None:
    res = hv("host", "show", "hv12")
    assert res.code == 0, res.err
    assert "Windows Server 2012 R2" in res.out
    assert "CredSSP" in res.out
    data = hv("host", "show", "hv12", "-o", "json").json()
    assert data["os_version"] == "2012r2"
    assert data["migration"]["auth_type"] == "CredSSP"
    assert data["migration"]["enabled"] is False


def test_host_list_needs_no_remote_call(lab: Lab) -> None:
    res = hv("host", "list", "-o", "json")
    assert res.code == 0
    assert [h["name"] for h in res.json()["hosts"]] == ["dc01", "fs01", "hostA", "hostB", "hv12"]
    assert lab.calls() == 0


@pytest.mark.parametrize(
    ("setup_args", "argv", "code", "needle"),
    [
        ([], ["vm", "list", "nosuchhost"], ExitCode.NOT_FOUND, "unknown host 'nosuchhost'"),
        (["lab", "fault", "hostB", "--down"], ["vm", "list", "hostB"], ExitCode.UNREACHABLE, "cannot connect"),
        ([], ["host", "show", "nosuchhost"], ExitCode.NOT_FOUND, "unknown host"),
    ],
)
def test_failures_are_one_clear_line_with_a_distinct_code(
    lab: Lab, setup_args: list[str], argv: list[str], code: int, needle: str
) -> None:
    if setup_args:
        assert hv(*setup_args).code == 0
    res = hv("--retries", "1", *argv)
    assert res.code == code
    assert needle in res.err
    assert "Traceback" not in res.err + res.out


def test_bad_credentials_exit_auth(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_USERNAME", "LAB\\Administrator")
    monkeypatch.setenv("HVAUTO_PASSWORD", "not-the-password")
    res = hv("vm", "list", "hostA")
    assert res.code == ExitCode.AUTH
    assert "password is incorrect" in res.err
    assert "not-the-password" not in res.err + res.out
    assert "Traceback" not in res.err


def test_good_credentials_from_the_environment(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_USERNAME", "LAB\\Administrator")
    monkeypatch.setenv("HVAUTO_PASSWORD", lab.password)
    assert hv("vm", "list", "hostA").code == 0


def test_no_inventory_points_to_lab_init(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    res = hv("vm", "list")
    assert res.code == ExitCode.CONFIG
    assert "no inventory" in res.err
    assert "hvauto lab init" in res.err


def test_one_host_down_others_still_reported(lab: Lab) -> None:
    hv("lab", "fault", "hostB", "--down")
    res = hv("--retries", "1", "vm", "list", "-o", "json")
    assert res.code == ExitCode.PARTIAL
    doc = res.json()
    assert {v["name"] for v in doc["vms"]} == {"vm01", "vm02", "web01"}
    assert set(doc["errors"]) == {"hostB"}


def test_transient_faults_are_retried(lab: Lab) -> None:
    hv("lab", "fault", "hostA", "--fail-next", "2", "--kind", "transient")
    res = hv("vm", "list", "hostA", "-o", "json")
    assert res.code == 0, res.err
    assert lab.store.calls(host="hostA", template="vm_list") == 3


def test_permanent_faults_are_not_retried(lab: Lab) -> None:
    hv("lab", "fault", "hostA", "--fail-next", "1", "--kind", "permanent")
    res = hv("vm", "list", "hostA")
    assert res.code == ExitCode.REMOTE
    assert "HvautoLabInjectedFault" in res.err
    assert lab.store.calls(host="hostA", template="vm_list") == 1


def test_render_prints_powershell_and_contacts_no_host(lab: Lab) -> None:
    res = hv("vm", "list", "hostA", "--render")
    assert res.code == 0
    assert "$hvautoEnvelope = '" in res.out
    assert "param(" in res.out
    assert lab.calls() == 0


def test_render_without_os_version_uses_the_oldest_and_says_so(lab: Lab) -> None:
    res = hv("host", "show", "hv12", "--render")
    assert res.code == 0
    assert "Windows Server 2012 (Windows PowerShell 3.0)" in res.out
    assert "oldest supported" in res.err
    assert lab.calls() == 0


def test_lab_reset_restores_the_estate(lab: Lab) -> None:
    before = lab.store.snapshot()
    with lab.store.transaction() as est:
        est.delete("vm", before["vm"][0]["key"])
    assert lab.store.snapshot() != before
    assert hv("lab", "reset").code == 0
    assert lab.store.snapshot() == before


def test_lab_init_refuses_to_overwrite_a_foreign_inventory(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "hvauto.toml").write_text("[hosts.x]\n")
    res = hv("lab", "init", str(tmp_path))
    assert res.code == ExitCode.USAGE
    assert (tmp_path / "hvauto.toml").read_text() == "[hosts.x]\n"


def test_unknown_command_is_usage(lab: Lab) -> None:
    res = hv("vm", "lst")
    assert res.code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("argv", "version"),
    [
        (["vm", "list", "hostA", "--render", "--name", "it's $(evil) `n"], "2022"),
        (["host", "show", "hv12", "--render"], "2012"),
    ],
)
def test_rendered_text_passes_the_template_checks(lab: Lab, argv: list[str], version: str) -> None:
    from hvauto import pscheck

    res = hv(*argv)
    assert res.code == 0, res.err
    assert "evil" not in res.out  # the value travels base64-encoded in the envelope
    assert pscheck.check_script(res.out, version) == []
