"""The real CLI and back-ends (pypsrp, pywinrm) against the lab served over WinRM on loopback."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from hvauto.errors import AuthError, ExitCode, OperationTimeout, RemoteScriptError
from hvauto.remote.base import Progress
from hvauto.remote.retry import NO_RETRY, RetryPolicy
from hvauto.script import Script
from tests.conftest import Lab, hv
from tests.wire.conftest import OPERATION_TIMEOUT, READ_TIMEOUT, WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]

FAST_RETRY = RetryPolicy(attempts=3, initial=0.3, maximum=1.0, jitter=0.1)

#: Every command that talks to hosts, with arguments that exercise it (reads, failures).
COMMANDS: list[list[str]] = [
    ["vm", "list", "-o", "json"],
    ["vm", "list", "hostA", "-n", "vm01", "-n", "web01", "-o", "json"],
    ["vm", "list", "fs01", "-o", "json"],
    ["host", "show", "hostA", "-o", "json"],
    ["host", "show", "hv12", "-o", "json"],
    ["host", "show", "dc01", "-o", "json"],
    ["host", "list", "-o", "json"],
]


def normalized(out: str) -> Any:
    try:
        doc = json.loads(out)
    except ValueError:
        return out
    text = json.dumps(doc, sort_keys=True)
    return json.loads(text.replace('"transport": "psrp"', '"transport": "lab"')
                      .replace('"transport": "winrm"', '"transport": "lab"'))


def strip_addresses(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: strip_addresses(v) for k, v in doc.items() if k not in ("address", "transport")}
    if isinstance(doc, list):
        return [strip_addresses(v) for v in doc]
    return doc


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_same_results_as_the_in_process_lab(lab: Lab, wire: WireLab, argv: list[str]) -> None:
    here = hv("-i", str(lab.paths.inventory), *argv)
    there = hv("-i", str(wire.inventory_path), *argv)
    assert (there.code, there.err) == (here.code, here.err)
    assert strip_addresses(normalized(there.out)) == strip_addresses(normalized(here.out))
    assert "Traceback" not in there.err


def test_hostile_values_arrive_as_data(wire: WireLab, monkeypatch: pytest.MonkeyPatch) -> None:
    import hvauto.lab.wire.server as server_mod

    seen: list[dict[str, Any]] = []
    real = server_mod.execute

    def spy(store: Any, host: str, template: str, version: str, params: Any, **kw: Any) -> Any:
        seen.append(dict(params))
        return real(store, host, template, version, params, **kw)

    monkeypatch.setattr(server_mod, "execute", spy)
    hostile = "x'; Remove-VM -Name * -Force; '$(Stop-Computer)`\"é中 <&> _x000D_\r\n#> "
    items = ["a'b", "$env:PATH", "@(1)", "\u2603", ""]
    with wire.session(retry=NO_RETRY) as s:
        res = s.run("hostA", "lab_probe", {"Mode": "echo", "Text": hostile, "Items": items})
    assert res.data == {"text": hostile, "items": items}
    assert seen == [{"Mode": "echo", "Text": hostile, "Items": items}]
    assert res.warnings == ["probe warning"]


def test_write_error_fails_the_run(wire: WireLab) -> None:
    with wire.session(retry=NO_RETRY) as s, pytest.raises(RemoteScriptError) as info:
        s.run("hostA", "lab_probe", {"Mode": "write_error", "Text": "the disk is full"})
    rec = info.value.record
    assert rec.message == "the disk is full"
    assert rec.category == "InvalidOperation"
    assert rec.fqid == "HvautoProbe"
    assert rec.terminating is False


def test_a_terminating_error_carries_category_and_fqid(wire: WireLab) -> None:
    with wire.session(retry=NO_RETRY) as s, pytest.raises(RemoteScriptError) as info:
        s.run("hostA", "lab_probe", {"Mode": "throw", "Text": "boom"})
    assert (info.value.record.category, info.value.record.fqid) == ("InvalidOperation", "HvautoProbeThrown")


def test_a_binding_failure_fails_the_pipeline_with_its_record(wire: WireLab) -> None:
    with wire.session(retry=NO_RETRY) as s:
        good = s.render("hostA", "lab_probe", {"Mode": "echo"})
        bad = Script(good.template, good.version, good.body, {**good.params, "Bogus": "1"}, good.safe_to_resend)
        with pytest.raises(RemoteScriptError) as info:
            s.run_script("hostA", bad)
    rec = info.value.record
    assert rec.category == "InvalidArgument"
    assert rec.fqid == "NamedParameterNotFound"
    assert "'Bogus'" in rec.message


@pytest.mark.parametrize("change", ["a comment", "a cmdlet", "the machine line's hash"])
def test_a_body_that_is_not_the_rendered_template_is_refused(wire: WireLab, change: str) -> None:
    """The endpoint recognises a script by its machine line, then runs it only if the body is exactly
    what the renderer produces for that template and version."""
    with wire.session(retry=NO_RETRY) as s:
        good = s.render("hostA", "vm_list")
        if change == "a comment":
            body = good.body.replace("# Exact names only", "# exact names only", 1)
        elif change == "a cmdlet":
            body = good.body.replace("Get-VM |", "Get-VM | Stop-VM -Passthru |", 1)
        else:
            line, rest = good.body.split("\n", 1)
            body = line[:-8] + "00000000\n" + rest
        assert body != good.body
        with pytest.raises(RemoteScriptError) as info:
            s.run_script("hostA", Script(good.template, good.version, body, good.params))
    assert info.value.record.fqid == "HvautoLabNotATemplate"
    assert wire.store.calls(template="vm_list") == 1  # the refused run, recorded as an error


def test_an_idle_pool_dropped_by_the_server_is_reopened(psrp_wire: WireLab) -> None:
    with psrp_wire.session(retry=NO_RETRY) as s:
        s.run("hostA", "vm_list")
        psrp_wire.fault("hostA", idle_timeout=0.3)
        time.sleep(0.6)
        assert s.run("hostA", "vm_list").ok
    assert psrp_wire.server.requests("hostA", "Create") == 2


@pytest.mark.parametrize("kind", ["http503", "reset"])
@pytest.mark.parametrize("action", ["Create", "Command"])
def test_a_503_or_reset_before_the_command_is_retried_with_backoff(wire: WireLab, kind: str, action: str) -> None:
    if action == "Command" and wire.backend == "psrp":
        pytest.skip("a failed PSRP Command may have started the script: retried only when idempotent (below)")
    wire.fault("hostA", fail_next=1, kind=kind, fail_on=action)
    started = time.monotonic()
    with wire.session(retry=FAST_RETRY) as s:
        res = s.run("hostA", "lab_probe", {"Mode": "echo", "Text": "once"})  # not idempotent
    assert res.data["text"] == "once"
    assert time.monotonic() - started >= FAST_RETRY.initial
    assert wire.store.calls(host="hostA", template="lab_probe") == 1
    assert wire.server.requests("hostA", action) >= 2


def test_an_idempotent_step_is_retried_after_a_lost_command(psrp_wire: WireLab) -> None:
    psrp_wire.fault("hostA", fail_next=1, kind="reset", fail_on="Command")
    with psrp_wire.session(retry=FAST_RETRY) as s:
        assert s.run("hostA", "vm_list").ok
    assert psrp_wire.server.requests("hostA", "Command") == 2


def test_a_non_idempotent_step_is_not_resent_after_a_lost_command(psrp_wire: WireLab) -> None:
    psrp_wire.fault("hostA", fail_next=1, kind="reset", fail_on="Command")
    with psrp_wire.session(retry=FAST_RETRY) as s, pytest.raises(Exception) as info:
        s.run("hostA", "lab_probe", {"Mode": "echo"})
    assert getattr(info.value, "sent", None) is True
    assert psrp_wire.server.requests("hostA", "Command") == 1


def test_401_is_not_retried(wire: WireLab) -> None:
    wire.fault("hostA", fail_next=1, kind="auth")
    res = hv("-i", str(wire.inventory_path), "vm", "list", "hostA")
    assert res.code == ExitCode.AUTH
    assert "Traceback" not in res.err
    assert wire.server.requests("hostA") == 1
    assert wire.store.fault("hostA")["fail_next"] == 0


def test_bad_password_is_401_and_never_shown(wire: WireLab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_PASSWORD", "wrong-Pa55word")
    res = hv("-i", str(wire.inventory_path), "vm", "list", "hostA")
    assert res.code == ExitCode.AUTH
    assert "wrong-Pa55word" not in res.err + res.out
    assert wire.server.requests("hostA") == 1


def test_a_hung_request_ends_at_the_read_timeout(wire: WireLab) -> None:
    if wire.tls:
        pytest.skip("timing does not depend on TLS: the plain-HTTP case covers it")
    wire.fault("hostA", fail_next=1, kind="hang", fail_on="Command")
    started = time.monotonic()
    with wire.session(retry=NO_RETRY) as s, pytest.raises(OperationTimeout) as info:
        s.run("hostA", "vm_list")
    took = time.monotonic() - started
    assert READ_TIMEOUT - 0.5 <= took < READ_TIMEOUT + 5
    assert "hostA" in str(info.value)
    assert "timeout" in str(info.value).lower() or "time" in str(info.value).lower()


def test_a_hung_request_through_the_cli_is_one_clear_line(wire: WireLab) -> None:
    if wire.tls:
        pytest.skip("timing does not depend on TLS: the plain-HTTP case covers it")
    wire.fault("hostA", fail_next=1, kind="hang", fail_on="Command")
    res = hv("-i", str(wire.inventory_path), "--retries", "1", "vm", "list", "hostA")
    assert res.code == ExitCode.TIMEOUT
    assert res.err.startswith("hvauto: error: hostA:")
    assert "Traceback" not in res.err


def test_the_quota_fault_is_reported_as_a_quota(wire: WireLab) -> None:
    wire.fault("hostA", fail_next=5, kind="quota", fail_on="Create")
    res = hv("-i", str(wire.inventory_path), "--retries", "1", "vm", "list", "hostA")
    assert res.code == ExitCode.UNREACHABLE
    assert "QUOTA" in res.err


def test_a_long_operation_long_polls_and_streams_its_progress(wire: WireLab) -> None:
    if wire.tls:
        pytest.skip("timing does not depend on TLS: the plain-HTTP case covers it")
    wire.fault("hostA", stretch=OPERATION_TIMEOUT * 3)
    heard: list[tuple[float, Progress]] = []
    started = time.monotonic()
    with wire.session(retry=NO_RETRY) as s:
        res = s.run("hostA", "lab_probe", {"Mode": "echo", "Count": 3},
                    on_progress=lambda p: heard.append((time.monotonic() - started, p)))
    assert res.ok
    receives = wire.server.requests("hostA", "Receive")
    assert receives >= 3, "the client did not long-poll"
    if wire.backend == "psrp":
        assert [p.percent for _, p in heard] == [33, 66, 100]
        assert heard[-1][0] - heard[0][0] >= OPERATION_TIMEOUT  # they came over time, not at the end
        assert [p.status for p in res.progress] == ["1 of 3", "2 of 3", "3 of 3"]


def test_a_handler_reporting_progress_as_it_runs_is_heard_as_it_runs(psrp_wire: WireLab) -> None:
    heard: list[float] = []
    started = time.monotonic()
    with psrp_wire.session(retry=NO_RETRY) as s:
        res = s.run("hostA", "lab_probe", {"Mode": "slow", "Count": 4},
                    on_progress=lambda p: heard.append(time.monotonic() - started))
    done = time.monotonic() - started
    assert res.ok and len(heard) == 4
    assert heard[0] < done - 1.0  # the first record arrived while the handler still ran


def test_tls_validation_is_on(wire: WireLab, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if not wire.tls:
        pytest.skip("plain HTTP")
    from hvauto.lab.wire import certs

    other = certs.generate(tmp_path / "other-ca")
    monkeypatch.setenv("HVAUTO_CA_PATH", str(other.ca))
    res = hv("-i", str(wire.inventory_path), "--retries", "1", "vm", "list", "hostA")
    assert res.code == ExitCode.UNREACHABLE
    assert "certificate" in res.err.lower() or "tls" in res.err.lower()


def test_auth_error_type(psrp_wire: WireLab) -> None:
    psrp_wire.fault("hostA", fail_next=1, kind="auth")
    with psrp_wire.session(retry=FAST_RETRY) as s, pytest.raises(AuthError):
        s.run("hostA", "vm_list")


def test_latency_is_added_to_every_request(wire: WireLab) -> None:
    with wire.session(retry=NO_RETRY) as s:
        s.run("hostA", "vm_list")  # warm: pool open, TLS session
        wire.fault("hostA", delay=0.2)
        before = wire.server.requests("hostA")
        started = time.monotonic()
        s.run("hostA", "vm_list")
        took = time.monotonic() - started
    requests = wire.server.requests("hostA") - before - (1 if wire.backend == "psrp" else 0)  # Delete at close
    assert requests >= 3
    assert took >= 0.2 * requests


def test_a_step_deadline_stops_a_long_operation(wire: WireLab) -> None:
    if wire.tls:
        pytest.skip("timing does not depend on TLS: the plain-HTTP case covers it")
    wire.fault("hostA", stretch=30)
    started = time.monotonic()
    with wire.session(retry=NO_RETRY) as s, pytest.raises(OperationTimeout) as info:
        s.run("hostA", "lab_probe", {"Mode": "echo", "Count": 2}, timeout=1.5)
    assert time.monotonic() - started < 1.5 + OPERATION_TIMEOUT + 2
    assert "no result within 1.5s" in str(info.value)
    # The client gave up on the shell; deleting it ends the operation on the host too.
    assert wire.server.requests("hostA", "Delete") >= 1, wire.server.request_counts()
    deadline = time.monotonic() + 2
    while any(t.name.startswith("lab-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name.startswith("lab-")]


def test_a_script_that_is_not_a_template_fails_as_data(psrp_wire: WireLab) -> None:
    """The endpoint runs no PowerShell: anything but an hvauto template fails its pipeline, clearly."""
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    files = psrp_wire.paths.state.parent
    wsman = WSMan("127.0.0.1", port=psrp_wire.server.port, path="wsman/hostA", ssl=True, auth="basic",
                  username="LAB\\Administrator", password=psrp_wire.paths.password.read_text().strip(),
                  cert_validation=str(files / "ca.pem"), operation_timeout=OPERATION_TIMEOUT)
    with wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-Process | Stop-Process")
        ps.invoke()
        assert ps.had_errors
        assert ps.streams.error[-1].fq_error == "HvautoLabNotATemplate"
        assert "cannot run this pipeline" in str(ps.streams.error[-1])


def test_winrs_runs_only_powershell(wire: WireLab) -> None:
    if wire.backend != "winrm" or wire.tls:
        pytest.skip("one WinRS case is enough")
    from winrm.protocol import Protocol

    proto = Protocol(wire.server.url("hostA"), transport="basic", username="LAB\\Administrator",
                     password=wire.paths.password.read_text().strip(), message_encryption="never", ca_trust_path=True,
                     operation_timeout_sec=OPERATION_TIMEOUT, read_timeout_sec=READ_TIMEOUT)
    shell = proto.open_shell()
    try:
        cid = proto.run_command(shell, "cmd.exe", ["/c", "format", "c:"])
        out, err, code = proto.get_command_output(shell, cid)
        assert code == 1 and b"is not recognized" in err
    finally:
        proto.close_shell(shell)
