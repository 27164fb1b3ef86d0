"""Hostile input is refused where it enters: a clear error, exit 2 (or 3 for configuration), no traceback.

Text that is not UTF-8 (a byte 0xff in an argument becomes a lone surrogate), YAML alias bombs and
recursion, files too large, FIFOs and devices: for every YAML and TOML input hvauto reads.
"""

from __future__ import annotations

from typing import Any

import pytest

from hvauto.errors import ExitCode, ValidationError
from hvauto.render import default_renderer

from .conftest import Lab, hv

BAD = "D:\\S\udcff"  # what Python makes of the bytes b"D:\\S\xff" in an argument


@pytest.mark.parametrize("argv", [
    ["smb", "share", "create", "VMs", "--server", "fs01", "--path", BAD, "--hosts", "hostA"],
    ["smb", "share", "create", "VMs", "--server", "fs01", "--path", BAD, "--hosts", "hostA", "--render"],
    ["switch", "create", "hostA", "L\udcffab", "-t", "private"],
    ["vm", "list", "hostA", "-n", "vm\udcff"],
    ["runbook", "run", "rb.yml", "--var", "x=\udcff"],
])
def test_an_argument_that_is_not_utf8_is_refused_before_anything(lab: Lab, argv: list[str]) -> None:
    before = lab.store.call_counts()
    res = hv(*argv, "-o", "json")
    assert res.code == ExitCode.USAGE, res.err
    assert "not valid UTF-8" in res.err and "byte 0xff" in res.err and "Traceback" not in res.err
    assert res.json()["event"] == "error" and res.json()["code"] == ExitCode.USAGE
    assert lab.store.call_counts() == before  # no host was asked anything


def test_a_value_with_a_lone_surrogate_from_anywhere_is_refused_at_render() -> None:
    with pytest.raises(ValidationError) as info:
        default_renderer().render("switch_create", "2022", {"Name": "x\ud800", "SwitchType": "Private"})
    assert "lone surrogate" in str(info.value) and info.value.exit_code == ExitCode.USAGE
    with pytest.raises(ValidationError):
        default_renderer().render("vm_list", "2022", {"Name": ["ok", "b\udcffad"]})


def test_a_runbook_variable_from_a_file_with_a_lone_surrogate_is_refused(lab: Lab) -> None:
    (lab.dir / "rb.yml").write_text('name: x\nvars:\n  sw: "L\\ud800b"\nsteps:\n'
                                    '  - switch.create: {name: "{{ sw }}", type: private}\n    hosts: hostA\n')
    res = hv("runbook", "run", "rb.yml")
    assert res.code == ExitCode.USAGE, res.err
    assert "rb.yml:3:" in res.err and "lone surrogate" in res.err and "Traceback" not in res.err
    assert lab.calls(template="switch_create") == 0


# -- what a host or a user can put on the screen ------------------------------------------------------

HOSTILE_NAME = "vm02\x1b[2J\x1b]0;PWNED\x07\r\nhostA fake01 Running"


def test_a_hostile_vm_name_is_shown_escaped_and_kept_exact_in_json(lab: Lab) -> None:
    with lab.store.transaction() as est:
        vm = next(v for v in est.all("vm") if v["name"] == "vm02")
        vm["name"] = HOSTILE_NAME
        est.put("vm", vm["key"], vm, host=vm["host"])
    shown = hv("vm", "list", "hostA")
    assert shown.code == 0, shown.err
    for ch in "\x1b\x07\r":
        assert ch not in shown.out
    assert "\\x1b[2J" in shown.out and "\\x07" in shown.out
    assert not any(line.startswith("hostA fake01") for line in shown.out.splitlines())  # no fake row
    rows = [line for line in shown.out.splitlines()[1:] if line.strip()]
    assert len(rows) == len(hv("vm", "list", "-o", "json", "hostA").json()["vms"])
    assert HOSTILE_NAME in {v["name"] for v in hv("vm", "list", "-o", "json", "hostA").json()["vms"]}


def test_control_characters_in_an_error_are_escaped(lab: Lab) -> None:
    res = hv("migrate", "--shared-nothing", "nosuch\x1b]0;PWNED\x07", "hostB")
    assert res.code == ExitCode.NOT_FOUND
    assert "\x1b" not in res.err and "\x07" not in res.err and "\\x1b]0;PWNED\\x07" in res.err


def test_hvauto_s_own_progress_redraw_still_works() -> None:
    import io

    from hvauto.text import SafeStream

    raw = io.StringIO()
    stream = SafeStream(raw)
    stream.write_raw("\r")
    stream.write("vm\x1b 50%\n")
    assert raw.getvalue() == "\rvm\\x1b 50%\n"


def test_the_debug_log_follows_the_state_directory(lab: Lab, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.ops import hosts

    def boom(*_: object, **__: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.delenv("HVAUTO_LOG_DIR", raising=False)
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(hosts, "facts", boom)
    res = hv("host", "show", "hostA")
    assert res.code == ExitCode.ERROR
    log = tmp_path / "state" / "hvauto-debug.log"
    assert str(log) in res.err and "ZeroDivisionError: a bug" in log.read_text()


def test_the_lab_estate_which_holds_passwords_is_the_owner_s_only(lab: Lab) -> None:
    import stat

    state = lab.paths.state
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    lab.store.close()
    state.chmod(0o644)  # as an older hvauto left it
    from hvauto.lab.store import LabStore

    LabStore(state).close()
    fresh = LabStore(state)
    fresh.fault("hostA")
    fresh.close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_a_windows_line_end_is_a_line_end_but_a_lone_carriage_return_is_shown() -> None:
    from hvauto.text import escape_controls

    assert escape_controls("Failed.\r\nAt line 1") == "Failed.\nAt line 1"
    assert escape_controls("ok\rhostA fake") == "ok\\x0dhostA fake"
    assert escape_controls("a\nb", lines=True) == "a\\x0ab"
    assert escape_controls("\u202eevil") == "\\u202eevil"
