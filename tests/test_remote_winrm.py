"""WinRMTransport at the pywinrm boundary, without a network.

pywinrm's own Protocol builds every SOAP request; only ``Transport.send_message`` (the HTTP
POST) is replaced, by a fake WinRS service that parses each request, records it and answers
as Windows does, faults included. So the tests see the real Command line and the real stdin
stream, and pywinrm's own fault parsing runs on the answers.
"""

from __future__ import annotations

import base64
import traceback
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
import tree_sitter
import tree_sitter_powershell
import winrm.transport
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import ProtocolError as Urllib3ProtocolError
from winrm.exceptions import InvalidCredentialsError, WinRMError, WinRMTransportError

from hvauto.credentials import Credentials, Secret
from hvauto.errors import (
    AuthError,
    ConfigError,
    ConnectError,
    ErrorRecord,
    OperationTimeout,
    ProtocolError,
    QuotaError,
    TLSError,
    TransportError,
)
from hvauto.inventory import HostConfig
from hvauto.remote import open_transport
from hvauto.remote import winrm as backend
from hvauto.remote.base import Transport
from hvauto.script import Script

PASSWORD = "Tr0ub4dor&3-hunter2"
SHELL_NS = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
ENVELOPE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    f'xmlns:rsp="{SHELL_NS}">'
    "<s:Header><a:RelatesTo>{relates_to}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
)
OPERATION_TIMED_OUT = 2150858793


def fault_xml(code: int, reason: str = "The WS-Management service cannot process the request.") -> str:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"><s:Header/><s:Body><s:Fault>'
        "<s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault Code="{code}" Machine="hv1"><f:Message>{escape(reason)}</f:Message>'
        "</f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"
    )


def wsman_fault(code: int) -> WinRMTransportError:
    """What pywinrm's HTTP layer raises for an HTTP 500 carrying a WSManFault."""
    return WinRMTransportError("http", 500, fault_xml(code, f"fault {code} {PASSWORD}"))


# -- stderr as powershell.exe writes it ---------------------------------------------------


def clixml(*items: str) -> bytes:
    body = "".join(items)
    return (
        "#< CLIXML\r\n"
        f'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">{body}</Objs>'
    ).encode()


def err_lines(*lines: str) -> str:
    return "".join(f'<S S="Error">{escape(line)}_x000D__x000A_</S>' for line in lines)


PROGRESS = (
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    '<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.'
    "</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>"
)
GET_VM_ERROR = err_lines(
    "Get-VM : Hyper-V was unable to find a virtual machine with name \"web01\".",
    "At line:12 char:5",
    "+     Get-VM -Name $Name",
    "+     ~~~~~~~~~~~~~~~~~~",
    "    + CategoryInfo          : InvalidArgument: (web01:String) [Get-VM], VirtualizationException",
    "    + FullyQualifiedErrorId : InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM",
    " ",
)
WRITE_ERROR = err_lines(
    "Write-Error : disk 2 is offline",
    "    + CategoryInfo          : NotSpecified: (:) [Write-Error], WriteErrorException",
    "    + FullyQualifiedErrorId : Microsoft.PowerShell.Commands.WriteErrorException",
    " ",
)
OK_JSON = b'{"ok": true, "result": {"name": "web01", "note": "caf\\u00e9"}, "error": null}\r\n'

# -- the fake WinRS service ---------------------------------------------------------------


@dataclass
class Plan:
    """What powershell.exe does for the next command."""

    stdout: bytes = OK_JSON
    stderr: bytes = b""
    exit_code: int = 0
    quiet_polls: int = 0  # Receives answered with the OperationTimeout fault first


@dataclass
class Command:
    shell_id: str
    exe: str
    args: str
    options: dict[str, str]
    plan: Plan
    stdin: bytearray = field(default_factory=bytearray)
    stdin_ended: bool = False
    terminated: bool = False

    @property
    def script(self) -> str:
        """What the loader would run: stdin up to "!", base64-decoded, as UTF-8."""
        raw = bytes(self.stdin)
        assert raw.count(b"!") == 1 and raw.endswith(b"!")
        return base64.b64decode(raw[:-1], validate=True).decode("utf-8")


class FakeWinRS:
    def __init__(self) -> None:
        self.plans: deque[Plan] = deque()
        self.fail: dict[str, deque[BaseException | None]] = {}
        self.actions: list[str] = []
        self.shells: dict[str, dict[str, str]] = {}
        self.deleted: list[str] = []
        self.commands: dict[str, Command] = {}
        self.sends: list[int] = []
        self.sessions_closed = 0

    def queue(self, *plans: Plan) -> None:
        self.plans.extend(plans)

    def fail_on(self, action: str, exc: BaseException) -> None:
        self.fail.setdefault(action, deque()).append(exc)

    @property
    def command(self) -> Command:
        (cmd,) = self.commands.values()
        return cmd

    def send_message(self, message: str | bytes) -> bytes:
        root = ET.fromstring(message)
        action_el = next(e for e in root.iter() if e.tag.endswith("}Action"))
        action = (action_el.text or "").rsplit("/", 1)[-1]
        message_id = next(e.text for e in root.iter() if e.tag.endswith("}MessageID"))
        self.actions.append(action)
        if self.fail.get(action):
            exc = self.fail[action].popleft()
            if exc is not None:  # None: let this one through
                raise exc
        body = getattr(self, f"_{action.lower()}")(root)
        return ENVELOPE.format(relates_to=message_id, body=body).encode()

    @staticmethod
    def _options(root: ET.Element) -> dict[str, str]:
        return {e.get("Name", ""): e.text or "" for e in root.iter() if e.tag.endswith("}Option")}

    @staticmethod
    def _selector(root: ET.Element) -> str:
        return next(e.text or "" for e in root.iter() if e.tag.endswith("}Selector") and e.get("Name") == "ShellId")

    def _create(self, root: ET.Element) -> str:
        shell_id = str(uuid.uuid4()).upper()
        self.shells[shell_id] = self._options(root)
        return (f'<rsp:Shell><w:Selector Name="ShellId">{shell_id}</w:Selector>'
                f"<rsp:ShellId>{shell_id}</rsp:ShellId></rsp:Shell>")

    def _command(self, root: ET.Element) -> str:
        shell_id = self._selector(root)
        assert shell_id in self.shells and shell_id not in self.deleted
        exe = next(e.text or "" for e in root.iter() if e.tag == f"{{{SHELL_NS}}}Command")
        args = next((e.text or "" for e in root.iter() if e.tag == f"{{{SHELL_NS}}}Arguments"), "")
        command_id = str(uuid.uuid4()).upper()
        self.commands[command_id] = Command(shell_id, exe, args, self._options(root), self.plans.popleft())
        return f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"

    def _send(self, root: ET.Element) -> str:
        stream = next(e for e in root.iter() if e.tag == f"{{{SHELL_NS}}}Stream")
        cmd = self.commands[stream.get("CommandId", "")]
        assert stream.get("Name") == "stdin" and not cmd.stdin_ended
        data = base64.b64decode(stream.text or "")
        self.sends.append(len(data))
        cmd.stdin += data
        cmd.stdin_ended = stream.get("End") == "true"
        return "<rsp:SendResponse/>"

    def _receive(self, root: ET.Element) -> str:
        desired = next(e for e in root.iter() if e.tag == f"{{{SHELL_NS}}}DesiredStream")
        cmd = self.commands[desired.get("CommandId", "")]
        assert cmd.stdin_ended, "the loader cannot finish before stdin ends"
        if cmd.plan.quiet_polls:
            cmd.plan.quiet_polls -= 1
            raise WinRMTransportError("http", 500, fault_xml(OPERATION_TIMED_OUT))
        streams = "".join(
            f'<rsp:Stream Name="{name}" CommandId="{desired.get("CommandId")}">{base64.b64encode(data).decode()}'
            "</rsp:Stream>"
            for name, data in (("stdout", cmd.plan.stdout), ("stderr", cmd.plan.stderr)) if data
        )
        state = (f'<rsp:CommandState CommandId="{desired.get("CommandId")}" '
                 f'State="{SHELL_NS}/CommandState/Done"><rsp:ExitCode>{cmd.plan.exit_code}</rsp:ExitCode>'
                 "</rsp:CommandState>")
        return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"

    def _signal(self, root: ET.Element) -> str:
        signal = next(e for e in root.iter() if e.tag == f"{{{SHELL_NS}}}Signal")
        code = next(e.text or "" for e in signal if e.tag == f"{{{SHELL_NS}}}Code")
        assert code.endswith("/signal/terminate")
        self.commands[signal.get("CommandId", "")].terminated = True
        return "<rsp:SignalResponse/>"

    def _delete(self, root: ET.Element) -> str:
        self.deleted.append(self._selector(root))
        return ""


@pytest.fixture
def winrs(monkeypatch: pytest.MonkeyPatch) -> FakeWinRS:
    fake = FakeWinRS()

    def send_message(self: winrm.transport.Transport, message: str | bytes) -> bytes:
        return fake.send_message(message)

    def close_session(self: winrm.transport.Transport) -> None:
        fake.sessions_closed += 1

    monkeypatch.setattr(winrm.transport.Transport, "send_message", send_message)
    monkeypatch.setattr(winrm.transport.Transport, "close_session", close_session)
    return fake


CFG = HostConfig(name="hv1", address="hv1.lab.test", transport="winrm", auth="ntlm")
CREDS = Credentials("LAB\\ops", Secret(PASSWORD), "environment")


def transport(cfg: HostConfig = CFG, creds: Credentials = CREDS) -> backend.WinRMTransport:
    t = open_transport(cfg, creds)
    assert isinstance(t, backend.WinRMTransport)
    return t


BODY = "param([string]$Name, [long]$SizeBytes)\n$ErrorActionPreference = 'Stop'\nGet-VM -Name $Name\n"
SCRIPT = Script(template="vm_get", version="2022", body=BODY,
                params={"Name": "web01'; Remove-Item C:\\ -Recurse #", "SizeBytes": 64 * 2**30})


def test_is_a_transport(winrs: FakeWinRS) -> None:
    t = transport()
    assert isinstance(t, Transport) and t.host == "hv1"
    assert winrs.actions == []  # nothing goes out before the first run


# -- what goes to the host ----------------------------------------------------------------


def test_command_line_is_the_fixed_bootstrap(winrs: FakeWinRS) -> None:
    other = Script(template="x", version="2022", body="param($A)\n$A\n", params={"A": "something else"})
    winrs.queue(Plan(), Plan())
    t = transport()
    t.run(SCRIPT)
    first = winrs.command
    winrs.commands.clear()
    t.run(other)
    second = winrs.command
    assert (first.exe, first.args) == (second.exe, second.args) == ("powershell.exe", " ".join(backend.BOOTSTRAP_ARGS))
    assert len(first.exe) + len(first.args) < 2500  # far below cmd.exe's limit
    encoded = first.args.split()[-1]
    assert base64.b64decode(encoded).decode("utf-16-le") == backend.LOADER
    for value in ("web01", "Remove-Item", str(64 * 2**30), SCRIPT.envelope(), "something else"):
        assert value not in first.args and value not in backend.LOADER


def test_stdin_is_the_self_contained_script(winrs: FakeWinRS) -> None:
    winrs.queue(Plan())
    transport().run(SCRIPT)
    cmd = winrs.command
    assert cmd.script == SCRIPT.as_text()
    assert SCRIPT.envelope() in cmd.script and "Remove-Item" not in cmd.script  # the value rides in the envelope
    assert cmd.options["WINRS_CONSOLEMODE_STDIN"] == "FALSE"  # a pipe, so ReadToEnd() sees its end
    assert winrs.shells[cmd.shell_id]["WINRS_CODEPAGE"] == "65001"


def test_non_ascii_script_survives_the_code_page(winrs: FakeWinRS) -> None:
    script = Script(template="x", version="2022", body="param($N)\n# café — naïve\n$N\n", params={"N": "Zoë"})
    winrs.queue(Plan())
    transport().run(script)
    assert winrs.command.script == script.as_text()
    assert max(bytes(winrs.command.stdin)) < 128  # nothing left for cp437 to mangle


def test_a_long_script_is_sent_in_chunks_and_ends_once(winrs: FakeWinRS) -> None:
    big = Script(template="big", version="2022", body="param($N)\n" + "# padding\n" * 20_000, params={"N": 1})
    winrs.queue(Plan())
    transport().run(big)
    assert len(winrs.sends) > 1 and max(winrs.sends) <= backend.STDIN_CHUNK
    assert winrs.command.script == big.as_text()


def test_loader_is_valid_powershell() -> None:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(backend.LOADER.encode("utf-8"))
    assert not tree.root_node.has_error
    assert "ReadToEnd()" in backend.LOADER and "[scriptblock]::Create(" in backend.LOADER
    assert "-Command" not in " ".join(backend.BOOTSTRAP_ARGS).replace("-EncodedCommand", "")


def test_shell_and_command_are_cleaned_up(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(), Plan())
    t = transport()
    t.run(SCRIPT)
    t.run(SCRIPT)
    assert len(winrs.shells) == 2 and sorted(winrs.deleted) == sorted(winrs.shells)
    assert all(c.terminated for c in winrs.commands.values())
    assert winrs.sessions_closed == 0  # the HTTP session outlives a run ...
    t.close()
    assert winrs.sessions_closed == 1  # ... and ends with the transport
    t.close()
    assert winrs.sessions_closed == 1


def test_one_protocol_per_transport(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(), Plan())
    t = transport()
    t.run(SCRIPT)
    proto = t._protocol
    t.run(SCRIPT)
    assert t._protocol is proto and proto is not None


# -- connection settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "creds", "expected"),
    [
        (CFG, CREDS, {"endpoint": "https://hv1.lab.test:5986/wsman", "auth_method": "ntlm", "username": "LAB\\ops",
                      "password": PASSWORD, "server_cert_validation": "validate", "ca_trust_path": "legacy_requests",
                      "message_encryption": "auto", "read_timeout_sec": 60}),
        (HostConfig(name="hv2", address="hv2", transport="winrm", auth="negotiate", ca_path="/etc/hvauto/ca.pem"), CREDS,
         {"auth_method": "ntlm", "ca_trust_path": "/etc/hvauto/ca.pem"}),
        (HostConfig(name="hv3", address="hv3", transport="winrm", auth="negotiate"), Credentials("ops@LAB.TEST"),
         {"auth_method": "kerberos", "password": None}),
        (HostConfig(name="hv4", address="hv4", transport="winrm", verify=False, tls=False, auth="credssp",
                    encryption="always"), CREDS,
         {"endpoint": "http://hv4:5985/wsman", "server_cert_validation": "ignore", "auth_method": "credssp",
          "message_encryption": "always"}),
        (HostConfig(name="hv5", address="hv5", transport="winrm", auth="basic", operation_timeout=60, read_timeout=30), CREDS,
         {"auth_method": "basic", "read_timeout_sec": 61}),  # the read must outlast the long-poll
        # By IP address, Kerberos asks for HTTP/<the host's name>: Windows registers no SPN for an address.
        (HostConfig(name="hv7", address="10.0.0.7", transport="winrm", auth="kerberos", domain="lab.test"),
         Credentials("ops@LAB.TEST"), {"auth_method": "kerberos", "kerberos_hostname_override": "hv7.lab.test"}),
        (HostConfig(name="hv8", address="hv8.lab.test", transport="winrm", auth="kerberos"),
         Credentials("ops@LAB.TEST"), {"kerberos_hostname_override": None}),
    ],
)
def test_protocol_settings(
    winrs: FakeWinRS, cfg: HostConfig, creds: Credentials, expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no CA bundle named in the environment, pywinrm is left to requests' own default.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    winrs.queue(Plan())
    t = transport(cfg, creds)
    t.run(SCRIPT)
    assert t._protocol is not None
    settings = vars(t._protocol.transport)
    assert {k: settings[k] for k in expected} == expected


def test_settings_pywinrm_rejects_are_a_config_error(winrs: FakeWinRS) -> None:
    cfg = HostConfig(name="hv6", address="hv6", transport="winrm", auth="basic", encryption="bogus")
    with pytest.raises(ConfigError) as info:
        transport(cfg).run(SCRIPT)
    assert "hv6" in str(info.value) and PASSWORD not in str(info.value)
    assert winrs.actions == []


def test_missing_password_is_an_auth_error(winrs: FakeWinRS) -> None:
    with pytest.raises(AuthError) as info:
        transport(CFG, Credentials("LAB\\ops")).run(SCRIPT)
    assert info.value.sent is False and winrs.actions == []


# -- results -----------------------------------------------------------------------------


def test_ok_run(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(stdout=b"\xef\xbb\xbfsome chatter\r\n" + OK_JSON))
    result = transport().run(SCRIPT)
    assert result.ok and result.data == {"name": "web01", "note": "café"}
    assert (result.host, result.template, result.errors) == ("hv1", "vm_get", [])


def test_progress_only_clixml_is_ok(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(stderr=clixml(PROGRESS, PROGRESS)))
    result = transport().run(SCRIPT)
    assert result.ok and result.errors == [] and result.warnings == []


def test_clixml_error_is_an_error_record(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(stderr=clixml(PROGRESS, GET_VM_ERROR)))
    result = transport().run(SCRIPT)
    assert not result.ok  # the JSON said ok, the error stream did not
    assert result.errors == [
        ErrorRecord(
            message='Get-VM : Hyper-V was unable to find a virtual machine with name "web01".',
            category="InvalidArgument",
            fqid="InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM",
            target="web01",
            exception="VirtualizationException",
            terminating=False,
        )
    ]


def test_several_errors_are_several_records(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(stdout=b"", stderr=clixml(WRITE_ERROR, PROGRESS, GET_VM_ERROR), exit_code=1))
    result = transport().run(SCRIPT)
    assert not result.ok
    assert [(e.message, e.category) for e in result.errors] == [
        ("Write-Error : disk 2 is offline", "NotSpecified"),
        ('Get-VM : Hyper-V was unable to find a virtual machine with name "web01".', "InvalidArgument"),
    ]


@pytest.mark.parametrize(
    ("stderr", "warnings"),
    [
        (clixml('<S S="warning">checkpoint is old_x000D__x000A_</S>'), ["checkpoint is old"]),
        (b"robocopy: 3 files skipped\r\n", ["robocopy: 3 files skipped"]),
        (clixml(PROGRESS) + b"\r\nnative noise", ["native noise"]),
    ],
)
def test_other_stderr_is_shown_not_judged(winrs: FakeWinRS, stderr: bytes, warnings: list[str]) -> None:
    winrs.queue(Plan(stderr=stderr))
    result = transport().run(SCRIPT)
    assert result.ok and result.warnings == warnings


def test_template_reports_its_own_error(winrs: FakeWinRS) -> None:
    doc = (b'{"ok": false, "result": null, "error": {"message": "switch vSwitch9 not found", '
           b'"category": "ObjectNotFound", "fqid": "SwitchNotFound,hvauto"}}\r\n')
    winrs.queue(Plan(stdout=doc))
    result = transport().run(SCRIPT)
    assert not result.ok
    assert (result.errors[0].category, result.errors[0].fqid) == ("ObjectNotFound", "SwitchNotFound,hvauto")


@pytest.mark.parametrize(("exit_code", "ok"), [(0, True), (1, False), (5, False)])
def test_exit_code_without_json_is_a_failure(winrs: FakeWinRS, exit_code: int, ok: bool) -> None:
    stdout = OK_JSON if ok else b"half a line"
    winrs.queue(Plan(stdout=stdout, exit_code=exit_code))
    result = transport().run(SCRIPT)
    assert result.ok is ok
    if not ok:
        assert result.errors and result.errors[0].message


def test_exit_zero_without_json_is_a_protocol_error(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(stdout=b"hello\r\n"))
    with pytest.raises(ProtocolError) as info:
        transport().run(SCRIPT)
    assert info.value.sent is True


def test_incomplete_stdin_is_reported_as_not_run(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(stdout=b"", stderr=b"hvauto: the script arrived incomplete\r\n",
                     exit_code=backend.LOADER_INCOMPLETE_EXIT))
    with pytest.raises(ProtocolError) as info:
        transport().run(SCRIPT)
    assert info.value.sent is False


def test_quiet_long_polls_are_waited_out(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(quiet_polls=3))
    assert transport().run(SCRIPT).ok
    assert winrs.actions.count("Receive") == 4


def test_deadline(winrs: FakeWinRS) -> None:
    winrs.queue(Plan(quiet_polls=10**6))
    with pytest.raises(OperationTimeout) as info:
        transport().run(SCRIPT, timeout=0.05)
    assert info.value.sent is True and info.value.transient is True
    assert winrs.deleted == list(winrs.shells)  # deleting the shell ends powershell.exe


# -- error translation -------------------------------------------------------------------


def refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(None, f"Failed to establish a new connection: [Errno 111] Connection refused {PASSWORD}")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/wsman", reason))  # type: ignore[arg-type]


def reset() -> requests.exceptions.ConnectionError:
    err = Urllib3ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    return requests.exceptions.ConnectionError(err)


ERROR_CASES = [
    ("Create", refused(), ConnectError, True, False),
    ("Create", requests.exceptions.ConnectTimeout(f"timeout {PASSWORD}"), ConnectError, True, False),
    ("Create", requests.exceptions.SSLError("certificate verify failed"), TLSError, False, False),
    ("Create", InvalidCredentialsError(f"the specified credentials were rejected {PASSWORD}"), AuthError, False,
     False),
    ("Create", WinRMTransportError("http", 403, PASSWORD), AuthError, False, False),
    ("Create", WinRMTransportError("http", 503, ""), ConnectError, True, False),
    ("Create", wsman_fault(0x803381A5), QuotaError, True, False),  # MaxShellsPerUser
    ("Create", wsman_fault(5), AuthError, False, False),
    ("Command", wsman_fault(0x803381A6), QuotaError, True, False),
    ("Command", requests.exceptions.ReadTimeout("read timed out"), OperationTimeout, True, False),
    ("Command", reset(), ConnectError, True, False),  # the script is not on the host before the last Send
    ("Send", reset(), ConnectError, True, True),  # the last (only) Send may have arrived
    # A refusal of the last Send (too large, quota, 401, 503) proves the loader never ran the script.
    ("Send", wsman_fault(0x80338048), QuotaError, False, False),  # envelope too large: no retry helps
    ("Send", WinRMTransportError("http", 503, ""), ConnectError, True, False),
    ("Send", InvalidCredentialsError("the specified credentials were rejected"), AuthError, False, False),
    ("Send", refused(), ConnectError, True, False),
    ("Receive", requests.exceptions.ReadTimeout(f"read timed out {PASSWORD}"), OperationTimeout, True, True),
    ("Receive", reset(), ConnectError, True, True),
    ("Receive", wsman_fault(0x80338000), ProtocolError, False, True),
    ("Receive", WinRMTransportError("http", 500, "not xml"), ConnectError, True, True),
    ("Receive", WinRMTransportError("http", 400, ""), ProtocolError, False, True),
    # After the last Send the script runs: a 401 or 503 on the Receive leaves it running.
    ("Receive", WinRMTransportError("http", 401, ""), AuthError, False, True),
    ("Receive", WinRMTransportError("http", 503, ""), ConnectError, True, True),
    ("Receive", InvalidCredentialsError("the specified credentials were rejected"), AuthError, False, True),
    ("Receive", WinRMError(f"something odd {PASSWORD}"), ProtocolError, False, True),
]


@pytest.mark.parametrize(("action", "exc", "expected", "transient", "sent"), ERROR_CASES,
                         ids=[f"{c[0]}-{type(c[1]).__name__}-{c[2].__name__}" for c in ERROR_CASES])
def test_library_errors_become_hvauto_errors(
    winrs: FakeWinRS, action: str, exc: BaseException, expected: type[TransportError], transient: bool, sent: bool
) -> None:
    winrs.queue(Plan())
    winrs.fail_on(action, exc)
    with pytest.raises(TransportError) as info:
        transport().run(SCRIPT)
    err = info.value
    assert type(err) is expected
    assert (err.transient, err.sent) == (transient, sent)
    assert err.host == "hv1"
    shown = [str(err), repr(err), err.hint or "", str(err.to_dict()), "".join(traceback.format_exception(err))]
    assert not any(PASSWORD in s for s in shown)
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)) or "refused" in str(exc):
        assert winrs.deleted == []  # out of reach: a Delete would only wait out another timeout
    else:
        assert winrs.deleted == list(winrs.shells)  # a shell that was opened is deleted


@pytest.mark.parametrize(("failing_send", "sent"), [(0, False), (-1, True)])
def test_only_the_final_send_may_start_the_script(winrs: FakeWinRS, failing_send: int, sent: bool) -> None:
    big = Script(template="big", version="2022", body="param($N)\n" + "# padding\n" * 20_000, params={"N": 1})
    sends = -(-len(backend.stdin_payload(big)) // backend.STDIN_CHUNK)
    assert sends > 1
    for _ in range(failing_send % sends):
        winrs.fail.setdefault("Send", deque()).append(None)
    winrs.fail_on("Send", reset())
    winrs.queue(Plan())
    with pytest.raises(ConnectError) as info:
        transport().run(big)
    assert info.value.sent is sent


def test_cleanup_failures_do_not_hide_the_result(winrs: FakeWinRS) -> None:
    winrs.queue(Plan())
    winrs.fail_on("Signal", reset())
    winrs.fail_on("Delete", WinRMTransportError("http", 500, fault_xml(0x80338000)))
    assert transport().run(SCRIPT).ok


# -- stderr parsing, directly ------------------------------------------------------------


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("", []),
        (clixml(PROGRESS).decode(), []),
        (clixml(err_lines("boom")).decode(), [ErrorRecord("boom", terminating=False)]),
        (clixml('<S S="Error">caf_x00E9_ _xD83D__xDE00_ done_x000D__x000A_</S>').decode(),
         [ErrorRecord("café \U0001f600 done", terminating=False)]),
    ],
)
def test_parse_stderr(stderr: str, expected: list[ErrorRecord]) -> None:
    errors, _ = backend.parse_stderr(stderr)
    assert errors == expected
