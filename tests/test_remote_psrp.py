"""PSRPTransport at the pypsrp boundary, without a network.

The fakes stand in for pypsrp's WSMan and RunspacePool and for the network half of
PowerShell. The real ``PowerShell.add_script``/``add_parameter``/``close`` still run, and
each pipeline is serialized with pypsrp's own Serializer, so the tests see the CLIXML that
would go on the wire. Error and warning records are real pypsrp objects, deserialized from
the CLIXML a host sends.
"""

from __future__ import annotations

import time
import traceback
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
from pypsrp.complex_objects import ObjectMeta, PSInvocationState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.messages import ErrorRecordMessage, ProgressRecord, WarningRecord
from pypsrp.powershell import PowerShell
from pypsrp.serializer import Serializer
from pypsrp.shell import SignalCode
from pypsrp.wsman import WSMan as RealWSMan
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import ProtocolError as Urllib3ProtocolError

from hvauto.credentials import Credentials, Secret
from hvauto.errors import (
    AuthError,
    ConfigError,
    ConnectError,
    OperationTimeout,
    ProtocolError,
    QuotaError,
    TLSError,
    TransportError,
)
from hvauto.inventory import HostConfig
from hvauto.remote import _wsman, open_transport, psrp
from hvauto.remote.base import Progress, Transport
from hvauto.script import Script

PASSWORD = "Tr0ub4dor&3-hunter2"
SIGNAL_TERMINATE = SignalCode.TERMINATE

# -- records as a host sends them --------------------------------------------------------


def error_xml(message: str, *, category: int = 0, fqid: str = "", target: str = "",
              exc_type: str = "System.Exception") -> str:
    cat_message = f"Category{category}: ({target}:String) [], {exc_type.rsplit('.', 1)[-1]}"
    return (
        '<Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.ErrorRecord</T><T>System.Object</T></TN>'
        f"<ToString>{escape(message)}</ToString><MS>"
        f'<Obj N="Exception" RefId="1"><TN RefId="1"><T>{exc_type}</T><T>System.Exception</T><T>System.Object</T>'
        f"</TN><ToString>{exc_type}: {escape(message)}</ToString><Props><S N=\"Message\">{escape(message)}</S>"
        '<Nil N="InnerException" /></Props></Obj>'
        f'<S N="TargetObject">{escape(target)}</S><S N="FullyQualifiedErrorId">{escape(fqid)}</S>'
        f'<Nil N="InvocationInfo" /><I32 N="ErrorCategory_Category">{category}</I32>'
        f'<S N="ErrorCategory_Message">{escape(cat_message)}</S><B N="SerializeExtendedInfo">false</B>'
        '<S N="ErrorDetails_ScriptStackTrace">at &lt;ScriptBlock&gt;, &lt;No file&gt;: line 7</S></MS></Obj>'
    )


def error_rec(message: str, **kw: Any) -> ErrorRecordMessage:
    rec = Serializer().deserialize(error_xml(message, **kw), ObjectMeta("Obj", object=ErrorRecordMessage))
    assert isinstance(rec, ErrorRecordMessage)
    return rec


def warning_rec(message: str) -> WarningRecord:
    xml = (
        '<Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.WarningRecord</T>'
        "<T>System.Management.Automation.InformationalRecord</T><T>System.Object</T></TN>"
        f'<ToString>{escape(message)}</ToString><MS><S N="InformationalRecord_Message">{escape(message)}</S>'
        '<B N="InformationalRecord_SerializeInvocationInfo">false</B></MS></Obj>'
    )
    rec = Serializer().deserialize(xml, ObjectMeta("Obj", object=WarningRecord))
    assert isinstance(rec, WarningRecord)
    return rec


OK_JSON = '{"ok": true, "result": {"name": "web01"}, "error": null}'

# -- the fake host -----------------------------------------------------------------------


@dataclass
class Pipeline:
    """What the host does with the next pipeline it is sent."""

    outputs: list[Any] = field(default_factory=lambda: [OK_JSON])
    errors: list[Any] = field(default_factory=list)
    warnings: list[Any] = field(default_factory=list)
    progress: list[ProgressRecord] = field(default_factory=list)
    final: int = PSInvocationState.COMPLETED
    polls: int = 1
    poll_delay: float = 0.0
    begin_error: BaseException | None = None
    poll_error: BaseException | None = None


class FakeShell:
    def __init__(self, host: FakeHost) -> None:
        self.host = host

    def signal(self, code: str, command_id: str) -> None:
        self.host.signals.append((code, command_id))


class FakeHost:
    """Records what the transport asks of pypsrp and answers from a queue of Pipelines."""

    def __init__(self) -> None:
        self.wsman_kwargs: list[dict[str, Any]] = []
        self.pools: list[FakePool] = []
        self.pipelines: list[FakePowerShell] = []
        self.script: deque[Pipeline] = deque()
        self.signals: list[tuple[str, str]] = []
        self.open_errors: deque[BaseException] = deque()
        self.alive: bool | BaseException = True

    def queue(self, *pipelines: Pipeline) -> None:
        self.script.extend(pipelines)

    @property
    def opened(self) -> int:
        return sum(1 for p in self.pools if p.opened)


class FakeHTTP:
    """pypsrp's _TransportHTTP, as far as the transport touches it: the requests session it builds."""

    def __init__(self) -> None:
        self.session: requests.Session | None = None

    def _build_session(self) -> requests.Session:
        return requests.Session()


class FakeWSMan:
    host: FakeHost

    def __init__(self, **kwargs: Any) -> None:
        self.host.wsman_kwargs.append(kwargs)
        self.closed = False
        self.transport = FakeHTTP()

    def close(self) -> None:
        self.closed = True


class FakePool:
    host: FakeHost

    def __init__(self, connection: FakeWSMan) -> None:
        self.connection = connection
        self.protocol_version = "2.3"
        self.shell = FakeShell(self.host)
        self.pipelines: dict[str, Any] = {}
        self.opened = False
        self.closed = 0
        self.alive_checks = 0
        self.host.pools.append(self)

    def open(self) -> None:
        if self.host.open_errors:
            raise self.host.open_errors.popleft()
        self.opened = True

    def is_alive(self) -> bool:
        assert self.opened and not self.closed, "is_alive() on a pool that is not open"
        self.alive_checks += 1
        if isinstance(self.host.alive, BaseException):
            raise self.host.alive
        return self.host.alive

    def close(self) -> None:
        self.closed += 1


class FakePowerShell(PowerShell):
    """pypsrp's PowerShell with the network half replaced by the host's script."""

    host: FakeHost

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        assert pool.opened and not pool.closed, "a pipeline on a pool that is not open"
        self.host.pipelines.append(self)
        self.wire: ET.Element | None = None
        self.poll_timeouts: list[int | None] = []
        self._plan: Pipeline | None = None

    def begin_invoke(self, *args: Any, **kwargs: Any) -> None:
        assert not args and not kwargs, "no pipeline input: values go as parameters"
        self.wire = Serializer().serialize(self.commands[0])
        self._plan = self.host.script.popleft()
        if self._plan.begin_error is not None:
            raise self._plan.begin_error
        self._command_id = self.id
        self.state = PSInvocationState.RUNNING

    def poll_invoke(self, timeout: int | None = None) -> None:
        plan = self._plan
        assert plan is not None and self.state == PSInvocationState.RUNNING
        self.poll_timeouts.append(timeout)
        time.sleep(plan.poll_delay)
        if plan.poll_error is not None:
            raise plan.poll_error
        if plan.progress:
            self.streams.progress.append(plan.progress.pop(0))
        plan.polls -= 1
        if plan.polls <= 0 and not plan.progress:
            self.output.extend(plan.outputs)
            self.streams.error.extend(plan.errors)
            self.streams.warning.extend(plan.warnings)
            self.state = plan.final

    @property
    def closed(self) -> bool:
        return (SIGNAL_TERMINATE, self.id) in self.host.signals


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost()
    for cls, name in ((FakeWSMan, "WSMan"), (FakePool, "RunspacePool"), (FakePowerShell, "PowerShell")):
        monkeypatch.setattr(cls, "host", fake, raising=False)
        monkeypatch.setattr(psrp, name, cls)
    return fake


CFG = HostConfig(name="hv1", address="hv1.lab.test", transport="psrp", auth="ntlm")
CREDS = Credentials("LAB\\ops", Secret(PASSWORD), "environment")


def transport(cfg: HostConfig = CFG, creds: Credentials = CREDS) -> psrp.PSRPTransport:
    t = open_transport(cfg, creds)
    assert isinstance(t, psrp.PSRPTransport)
    return t


BODY = "param([string]$Name, [long]$SizeBytes, [int[]]$Ids, [bool]$Force, [double]$Ratio)\n'{}' | Write-Output\n"
SCRIPT = Script(
    template="vm_new",
    version="2022",
    body=BODY,
    params={"Name": "web01'; Remove-Item C:\\ -Recurse #", "SizeBytes": 64 * 2**30, "Ids": [1, 2, 3],
            "Force": True, "Ratio": 0.1},
)


def args_on_wire(wire: ET.Element) -> dict[str, ET.Element]:
    """Name -> value element of each CommandParameter in the serialized Command."""
    found: dict[str, ET.Element] = {}
    args = wire.find(".//*[@N='Args']/LST")
    assert args is not None
    for obj in args:
        name = obj.find("MS/S[@N='N']")
        value = obj.find("MS/*[@N='V']")
        assert name is not None and name.text and value is not None
        found[name.text] = value
    return found


# -- the seam ----------------------------------------------------------------------------


def test_is_a_transport(host: FakeHost) -> None:
    t = transport()
    assert isinstance(t, Transport)
    assert t.host == "hv1"
    assert host.pools == []  # nothing is opened until the first run


# -- parameter binding -------------------------------------------------------------------


def test_script_text_is_the_body_and_every_value_is_a_parameter(host: FakeHost) -> None:
    host.queue(Pipeline())
    transport().run(SCRIPT)
    (ps,) = host.pipelines
    assert len(ps.commands) == 1
    command = ps.commands[0]
    assert command.is_script and command.cmd == SCRIPT.body
    assert [a.name for a in command.args] == list(SCRIPT.params)
    assert ps.wire is not None
    cmd = ps.wire.find(".//S[@N='Cmd']")
    assert cmd is not None
    text = Serializer().deserialize(cmd)
    assert text == SCRIPT.body
    for value in ("web01'", "Remove-Item", str(64 * 2**30), "0.1"):
        assert value not in text


@pytest.mark.parametrize(
    ("name", "tag", "text"),
    [
        ("Name", "S", "web01'; Remove-Item C:\\ -Recurse #"),
        ("SizeBytes", "I64", str(64 * 2**30)),  # pypsrp alone would send <I32> and overflow
        ("Force", "B", "true"),  # a bool is not an int here
        ("Ratio", "Db", "0.1"),  # a single (Sg) would lose digits
    ],
)
def test_values_go_on_the_wire_with_their_powershell_type(host: FakeHost, name: str, tag: str, text: str) -> None:
    host.queue(Pipeline())
    transport().run(SCRIPT)
    assert host.pipelines[0].wire is not None
    value = args_on_wire(host.pipelines[0].wire)[name]
    assert (value.tag, value.text) == (tag, text)


def test_a_list_of_ints_is_tagged_element_wise(host: FakeHost) -> None:
    host.queue(Pipeline())
    transport().run(SCRIPT)
    assert host.pipelines[0].wire is not None
    value = args_on_wire(host.pipelines[0].wire)["Ids"]
    items = value.find("LST")
    assert items is not None
    assert [(e.tag, e.text) for e in items] == [("I64", "1"), ("I64", "2"), ("I64", "3")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, ("I64", 5)),
        (True, True),
        (None, None),
        ("7", "7"),
        (2.5, ("Db", 2.5)),
        ((1, 2), [("I64", 1), ("I64", 2)]),
        ({"a": 1, "b": "x"}, {"a": ("I64", 1), "b": "x"}),
    ],
)
def test_tag_value(value: Any, expected: Any) -> None:
    def plain(v: Any) -> Any:
        if isinstance(v, psrp.TaggedValue):
            return (v.tag, v.value)
        if isinstance(v, list):
            return [plain(i) for i in v]
        if isinstance(v, dict):
            return {k: plain(i) for k, i in v.items()}
        return v

    assert plain(psrp.tag_value(value)) == expected


# -- connection settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "creds", "expected"),
    [
        (CFG, CREDS, {"server": "hv1.lab.test", "port": 5986, "ssl": True, "path": "wsman", "auth": "ntlm",
                      "username": "LAB\\ops", "password": PASSWORD, "cert_validation": True,
                      "encryption": "auto", "connection_timeout": 15, "read_timeout": 60,
                      "operation_timeout": 20}),
        (HostConfig(name="hv2", address="10.0.0.2", ca_path="/etc/hvauto/ca.pem", auth="kerberos"),
         Credentials(), {"auth": "kerberos", "cert_validation": "/etc/hvauto/ca.pem", "password": None,
                         "username": None}),
        (HostConfig(name="hv3", address="hv3", verify=False, ca_path="/ca.pem"), CREDS, {"cert_validation": False}),
        (HostConfig(name="hv4", address="hv4", tls=False, auth="negotiate"), CREDS,
         {"ssl": False, "port": 5985, "encryption": "auto", "auth": "negotiate"}),
        (HostConfig(name="hv5", address="hv5", tls=False, auth="basic", allow_unencrypted=True), CREDS,
         {"ssl": False, "encryption": "never", "auth": "basic"}),
        (HostConfig(name="hv6", address="hv6", port=15986, path="wsman-alt", auth="credssp",
                    encryption="always", read_timeout=90.5), CREDS,
         {"port": 15986, "path": "wsman-alt", "auth": "credssp", "encryption": "always", "read_timeout": 91}),
    ],
)
def test_wsman_settings(host: FakeHost, cfg: HostConfig, creds: Credentials, expected: dict[str, Any]) -> None:
    host.queue(Pipeline())
    transport(cfg, creds).run(SCRIPT)
    (kwargs,) = host.wsman_kwargs
    assert {k: kwargs[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("cfg", "override"),
    [
        # By IP address: Kerberos must still ask for HTTP/<the host's name>, not HTTP/10.0.0.2.
        (HostConfig(name="hv2", address="10.0.0.2", auth="kerberos", domain="lab.test"), "hv2.lab.test"),
        (HostConfig(name="hv2", address="10.0.0.2", auth="negotiate"), "hv2"),
        (HostConfig(name="hv2", address="10.0.0.2", auth="ntlm"), None),  # NTLM has no SPN
        (HostConfig(name="hv2", address="hv2.lab.test", auth="kerberos"), None),  # a name is its own SPN
        (HostConfig(name="hv2", auth="kerberos"), None),
    ],
)
def test_kerberos_asks_for_the_hosts_name_when_connecting_by_address(
    host: FakeHost, cfg: HostConfig, override: str | None
) -> None:
    host.queue(Pipeline())
    transport(cfg, Credentials()).run(SCRIPT)
    (kwargs,) = host.wsman_kwargs
    assert kwargs.get("negotiate_hostname_override") == override


def test_settings_pypsrp_rejects_are_a_config_error(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real WSMan validates its arguments without touching the network.
    monkeypatch.setattr(psrp, "WSMan", RealWSMan)
    cfg = HostConfig(name="hv7", address="hv7", auth="basic", encryption="always")
    with pytest.raises(ConfigError) as info:
        transport(cfg).run(SCRIPT)
    assert "hv7" in str(info.value) and "basic" in str(info.value) and PASSWORD not in str(info.value)
    assert host.pools == []


def test_the_environment_is_read_once_per_host_not_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment still applies, but no request scans the environment again."""
    import urllib.request

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.lab.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    wsman = psrp.PSRPTransport(CFG, CREDS)._wsman()
    session = wsman.transport.session
    assert session is not None and session.trust_env is False
    assert session.proxies == {"https": "http://proxy.lab.test:3128"}
    scans: list[int] = []
    real = urllib.request.getproxies_environment
    monkeypatch.setattr(urllib.request, "getproxies_environment", lambda: scans.append(1) or real())
    # Stop before the network: the settings requests merges into a request are the point.
    seen: list[dict[str, Any]] = []

    def no_network(request: Any, **kw: Any) -> Any:
        seen.append(kw)
        raise requests.exceptions.ConnectionError("stopped before the network")

    monkeypatch.setattr(session, "send", no_network)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post("https://hv1.lab.test:5986/wsman", data=b"<x/>")
    assert scans == [] and seen[0]["proxies"] == {"https": "http://proxy.lab.test:3128"}


# -- results -----------------------------------------------------------------------------


def test_ok_run(host: FakeHost) -> None:
    host.queue(Pipeline(warnings=[warning_rec("checkpoint is old")]))
    result = transport().run(SCRIPT)
    assert result.ok and result.data == {"name": "web01"}
    assert result.warnings == ["checkpoint is old"]
    assert (result.host, result.template) == ("hv1", "vm_new")


def test_write_error_with_ok_json_is_a_failure(host: FakeHost) -> None:
    # pypsrp's had_errors stays False for Write-Error in a script that carries on.
    rec = error_rec("VM 'web01' was not found", category=13,
                    fqid="InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM", target="web01",
                    exc_type="Microsoft.HyperV.PowerShell.VirtualizationException")
    host.queue(Pipeline(errors=[rec]))
    result = transport().run(SCRIPT)
    assert not result.ok
    (err,) = result.errors
    assert err.message == "VM 'web01' was not found"
    assert err.category == "ObjectNotFound"
    assert err.fqid == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert err.target == "web01"
    assert err.exception == "Microsoft.HyperV.PowerShell.VirtualizationException"
    assert err.script_stack == "at <ScriptBlock>, <No file>: line 7"
    assert err.terminating is False


@pytest.mark.parametrize("outputs", [[], [OK_JSON]])
def test_failed_pipeline_is_a_failure(host: FakeHost, outputs: list[str]) -> None:
    rec = error_rec("Access is denied", category=18, fqid="UnauthorizedAccess")
    host.queue(Pipeline(outputs=outputs, errors=[rec], final=PSInvocationState.FAILED))
    result = transport().run(SCRIPT)
    assert not result.ok
    assert result.errors[-1].category == "PermissionDenied"
    assert result.errors[-1].terminating is True


def test_failed_pipeline_without_a_record_is_a_failure(host: FakeHost) -> None:
    host.queue(Pipeline(outputs=[], final=PSInvocationState.FAILED))
    result = transport().run(SCRIPT)
    assert not result.ok and result.errors


def test_template_reports_its_own_error(host: FakeHost) -> None:
    doc = ('{"ok": false, "result": null, "error": {"message": "switch vSwitch9 not found", '
           '"category": "ObjectNotFound", "fqid": "SwitchNotFound,hvauto", "target": "vSwitch9"}}')
    host.queue(Pipeline(outputs=["noise", doc]))
    result = transport().run(SCRIPT)
    assert not result.ok
    (err,) = result.errors
    assert (err.category, err.fqid, err.target) == ("ObjectNotFound", "SwitchNotFound,hvauto", "vSwitch9")
    with pytest.raises(Exception, match="switch vSwitch9 not found"):
        result.raise_for_error()


def test_no_json_at_all_is_a_protocol_error(host: FakeHost) -> None:
    host.queue(Pipeline(outputs=["hello"]))
    with pytest.raises(ProtocolError) as info:
        transport().run(SCRIPT)
    assert info.value.sent is True


def test_progress_is_reported_as_it_arrives(host: FakeHost) -> None:
    records = [
        ProgressRecord(activity="Moving web01", description="copying", percent_complete=p, seconds_remaining=s,
                       current_operation="disk0.vhdx")
        for p, s in ((10, 90), (60, 30))
    ]
    host.queue(Pipeline(progress=records, polls=3))
    seen: list[tuple[Progress, int]] = []

    def on_progress(p: Progress) -> None:
        seen.append((p, host.pipelines[-1].state))

    result = transport().run(SCRIPT, on_progress=on_progress)
    assert [p.percent for p, _ in seen] == [10, 60]
    assert all(state == PSInvocationState.RUNNING for _, state in seen)  # during the run, not after it
    assert seen[0][0] == Progress("Moving web01", "copying", 10, 90, "disk0.vhdx")
    assert result.progress == [p for p, _ in seen]


def test_deadline_stops_the_pipeline(host: FakeHost) -> None:
    host.queue(Pipeline(polls=10**6, poll_delay=0.01))
    t = transport()
    with pytest.raises(OperationTimeout) as info:
        t.run(SCRIPT, timeout=0.05)
    assert info.value.sent is True and info.value.transient is True
    (ps,) = host.pipelines
    assert ps.poll_timeouts and all(n == 1 for n in ps.poll_timeouts)  # never waits past the deadline
    assert host.pools[0].closed  # deleting the shell ends the pipeline; its runspace is never reused
    host.queue(Pipeline())
    assert t.run(SCRIPT).ok
    assert host.pipelines[1].runspace_pool is host.pools[1]


def test_a_failing_progress_callback_does_not_leave_a_busy_pool(host: FakeHost) -> None:
    host.queue(Pipeline(progress=[ProgressRecord(activity="a", percent_complete=1)], polls=3))

    def on_progress(p: Progress) -> None:
        raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError):
        transport().run(SCRIPT, on_progress=on_progress)
    assert host.pools[0].closed == 1


# -- the pool ----------------------------------------------------------------------------


def test_two_runs_share_one_pool(host: FakeHost) -> None:
    host.queue(Pipeline(), Pipeline())
    t = transport()
    t.run(SCRIPT)
    t.run(SCRIPT)
    assert len(host.wsman_kwargs) == 1 and host.opened == 1
    assert host.pools[0].alive_checks == 0  # quick steps do not probe: that would be a request each
    # Each pipeline is terminated before the next one starts; the last is ended by the pool's Delete.
    assert len(host.pipelines) == 2 and [ps.closed for ps in host.pipelines] == [True, False]
    assert host.pools[0].closed == 0
    t.close()
    assert host.pools[0].closed == 1 and not host.pipelines[1].closed


@pytest.mark.parametrize("alive", [False, WSManFaultError(0x8033805B, None, "unexpected selectors", None, None, None),
                                   requests.exceptions.ConnectionError("gone")])
def test_a_pool_idle_too_long_is_probed_and_reopened_when_dead(
    host: FakeHost, alive: bool | BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psrp, "PROBE_AFTER_IDLE", 0.0)
    host.queue(Pipeline(), Pipeline())
    t = transport()
    t.run(SCRIPT)
    host.alive = alive
    result = t.run(SCRIPT)
    assert result.ok
    assert host.pools[0].alive_checks == 1
    assert host.opened == 2 and len(host.wsman_kwargs) == 2
    assert host.pools[0].closed == 1 and host.pools[1].closed == 0
    assert host.pipelines[1].runspace_pool is host.pools[1]


def test_a_pool_idle_too_long_and_alive_is_kept(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psrp, "PROBE_AFTER_IDLE", 0.0)
    host.queue(Pipeline(), Pipeline())
    t = transport()
    t.run(SCRIPT)
    t.run(SCRIPT)
    assert host.pools[0].alive_checks == 1 and host.opened == 1


SHELL_GONE = WSManFaultError(0x8033805B, None, "The request for the Windows Remote Shell with ShellId x failed "
                             "because the shell was not found on the server.", None, None, None)


def test_a_shell_dropped_between_quick_steps_is_reopened_and_the_script_sent_once_more(host: FakeHost) -> None:
    host.queue(Pipeline(), Pipeline(begin_error=SHELL_GONE), Pipeline())
    t = transport()
    t.run(SCRIPT)
    result = t.run(SCRIPT)
    assert result.ok
    assert host.opened == 2
    assert host.pools[0].closed == 0  # not asked to delete a shell the server no longer has
    assert host.pipelines[2].runspace_pool is host.pools[1]


def test_other_faults_on_the_command_are_not_resent(host: FakeHost) -> None:
    quota = WSManFaultError(0x803381A6, None, "quota", None, None, None)
    host.queue(Pipeline(), Pipeline(begin_error=quota))
    t = transport()
    t.run(SCRIPT)
    with pytest.raises(QuotaError):
        t.run(SCRIPT)
    assert len(host.pipelines) == 2


def test_a_lost_answer_discards_the_pool(host: FakeHost) -> None:
    host.queue(Pipeline(poll_error=requests.exceptions.ReadTimeout("read timed out")), Pipeline())
    t = transport()
    with pytest.raises(OperationTimeout):
        t.run(SCRIPT)
    # The pool is in an unknown state after a lost answer: the next run starts afresh.
    assert host.pools[0].closed == 1
    assert t.run(SCRIPT).ok
    assert host.opened == 2


def test_failed_open_releases_the_half_open_pool(host: FakeHost) -> None:
    host.open_errors.append(WSManFaultError(0x803381A5, "hv1", "too many shells", None, None, None))
    host.queue(Pipeline())
    t = transport()
    with pytest.raises(QuotaError) as info:
        t.run(SCRIPT)
    assert info.value.sent is False
    assert host.pools[0].closed == 1
    assert t.run(SCRIPT).ok
    assert host.opened == 1 and len(host.pools) == 2


def test_an_unreachable_host_is_not_asked_to_delete_the_shell(host: FakeHost) -> None:
    host.queue(Pipeline(), Pipeline(begin_error=refused()), Pipeline())
    t = transport()
    t.run(SCRIPT)
    with pytest.raises(ConnectError):
        t.run(SCRIPT)
    assert host.pools[0].closed == 0  # a Delete would only wait out another connect timeout
    assert host.pools[0].connection.closed
    assert t.run(SCRIPT).ok and host.opened == 2


def test_close_swallows_errors_and_is_idempotent(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    host.queue(Pipeline())
    t = transport()
    t.run(SCRIPT)

    def boom() -> None:
        raise requests.exceptions.ConnectionError("reset")

    monkeypatch.setattr(host.pools[0], "close", boom)
    t.close()
    t.close()


def test_close_before_any_run(host: FakeHost) -> None:
    transport().close()
    assert host.pools == []


# -- error translation -------------------------------------------------------------------


def refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(None, f"Failed to establish a new connection: [Errno 111] refused {PASSWORD}")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/wsman", reason))  # type: ignore[arg-type]


def reset() -> requests.exceptions.ConnectionError:
    err = Urllib3ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    return requests.exceptions.ConnectionError(err)


def fault(code: int | str) -> WSManFaultError:
    return WSManFaultError(code, "hv1", f"fault {code} for {PASSWORD}", None, None, None)


# stage: "open" = while opening the pool, "begin" = sending the pipeline, "poll" = waiting for it
ERROR_CASES = [
    ("open", refused(), ConnectError, True, False),
    ("open", requests.exceptions.ConnectTimeout(f"connect timeout {PASSWORD}"), ConnectError, True, False),
    ("open", requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"), TLSError, False, False),
    ("open", AuthenticationError(f"Failed to authenticate the user ops with ntlm {PASSWORD}"), AuthError, False,
     False),
    ("open", WinRMTransportError("http", 401, PASSWORD), AuthError, False, False),
    ("open", WinRMTransportError("http", 503, "Service Unavailable"), ConnectError, True, False),
    ("open", fault(0x803381A5), QuotaError, True, False),
    ("open", fault(_wsman.FAULT_ACCESS_DENIED), AuthError, False, False),
    ("open", requests.exceptions.ReadTimeout("read timeout"), OperationTimeout, True, False),
    ("begin", refused(), ConnectError, True, False),  # a fresh connection refused: nothing left
    ("begin", reset(), ConnectError, True, True),
    # A refusal of the Command itself (quota, 401, 503) proves the pipeline never started.
    ("begin", fault(0x803381A6), QuotaError, True, False),
    ("begin", fault(str(0x803381E9)), QuotaError, True, False),
    ("begin", fault(0x80338048), QuotaError, False, False),  # envelope size: retrying cannot help
    ("begin", WinRMTransportError("http", 503, "Service Unavailable"), ConnectError, True, False),
    ("begin", AuthenticationError("Failed to authenticate the user ops with ntlm"), AuthError, False, False),
    ("begin", fault(0x80338000), ProtocolError, False, True),
    ("begin", fault("s:Receiver"), ProtocolError, False, True),
    ("poll", requests.exceptions.ReadTimeout(f"read timeout {PASSWORD}"), OperationTimeout, True, True),
    ("poll", reset(), ConnectError, True, True),
    ("poll", fault(0x80338029), OperationTimeout, True, True),
    ("poll", WinRMTransportError("http", 500, ""), ConnectError, True, True),
    # The same refusals after the Command went out: the script is running regardless.
    ("poll", WinRMTransportError("http", 503, "Service Unavailable"), ConnectError, True, True),
    ("poll", AuthenticationError("Failed to authenticate the user ops with ntlm"), AuthError, False, True),
    ("poll", WinRMTransportError("http", 401, ""), AuthError, False, True),
    ("poll", fault(0x803381A6), QuotaError, True, True),
    ("poll", WinRMTransportError("http", 400, "bad"), ProtocolError, False, True),
    ("poll", WinRMError(f"Received related id does not match {PASSWORD}"), ProtocolError, False, True),
    ("poll", requests.exceptions.SSLError("EOF occurred in violation of protocol"), TLSError, False, True),
]


@pytest.mark.parametrize(("stage", "exc", "expected", "transient", "sent"), ERROR_CASES,
                         ids=[f"{c[0]}-{type(c[1]).__name__}-{c[2].__name__}" for c in ERROR_CASES])
def test_library_errors_become_hvauto_errors(
    host: FakeHost, stage: str, exc: BaseException, expected: type[TransportError], transient: bool, sent: bool
) -> None:
    if stage == "open":
        host.open_errors.append(exc)
    host.queue(Pipeline(begin_error=exc if stage == "begin" else None, poll_error=exc if stage == "poll" else None))
    with pytest.raises(TransportError) as info:
        transport().run(SCRIPT)
    err = info.value
    assert type(err) is expected
    assert (err.transient, err.sent) == (transient, sent)
    assert err.host == "hv1"
    shown = [str(err), repr(err), err.hint or "", str(err.to_dict()), "".join(traceback.format_exception(err))]
    assert not any(PASSWORD in s for s in shown)
    # Whatever failed, the pool is not trusted again: the next run opens a new one.
    assert all(pool.connection.closed for pool in host.pools)


def test_translate_keeps_the_library_detail() -> None:
    err = psrp.translate(WinRMTransportError("http", 503, "Service Unavailable"), host="hv1", sent=False,
                         secret=PASSWORD)
    assert "503" in str(err) and str(err).startswith("hv1: ")
