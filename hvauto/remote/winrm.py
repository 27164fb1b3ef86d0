"""The WinRS back-end (pywinrm 0.5): for hosts where only plain WinRM shells are allowed.

WinRS runs a command line in a remote cmd.exe, and three Windows limits shape how a script
gets there:

* the command line is capped (cmd.exe truncates near 8,191 characters, and hvauto's
  scripts are longer), so the script never goes on it: the command line is a fixed
  bootstrap, ``powershell.exe ... -EncodedCommand <LOADER>``, identical for every run;
* ``powershell.exe -Command -`` reads stdin line by line and runs each line as it comes,
  which breaks every multi-line block, so the loader instead reads *all* of stdin
  (``[Console]::In.ReadToEnd()``) and runs it as one script block;
* stdin and stdout go through the console code page (437 unless told otherwise, and
  pywinrm encodes a ``str`` stdin as cp437), so stdin carries base64 of the UTF-8 text,
  the shell is opened with code page 65001, and the loader escapes any non-ASCII
  character it prints as ``\\uXXXX`` (valid inside the JSON the templates print).

What goes on stdin is :meth:`Script.as_text`: the values travel in its base64 JSON
envelope, bound to the ``param()`` block by the fixed prologue, never spliced into code.

powershell.exe reports errors on stderr as CLIXML (``#< CLIXML`` then ``<Objs>``); the
``S="Error"`` strings become :class:`ErrorRecord` objects and progress records are dropped.
Failure is judged by error records, the exit code and the template's JSON, never by
"something was on stderr" (progress alone puts CLIXML there).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import requests
from winrm.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from hvauto.credentials import Credentials
from hvauto.errors import (
    AuthError,
    ConfigError,
    ConnectError,
    ErrorRecord,
    OperationTimeout,
    ProtocolError,
    TransportError,
)
from hvauto.inventory import HostConfig
from hvauto.remote._wsman import (
    describer,
    refused,
    translate_connection,
    translate_fault,
    translate_status,
    unreachable,
)
from hvauto.remote.base import ProgressCallback, Result, parse_output
from hvauto.script import Script

log = logging.getLogger("hvauto.remote.winrm")

#: The loader: fixed text, never a value. stdin is base64 of UTF-8 followed by ``!``, which
#: is not in the base64 alphabet, so a stdin cut short (no ``!``) is refused with exit 86
#: instead of running part of a script.
LOADER = """\
$hvautoIn = [Console]::In.ReadToEnd()
$hvautoEnd = $hvautoIn.IndexOf('!')
if ($hvautoEnd -lt 0) { [Console]::Error.WriteLine('hvauto: the script arrived incomplete'); exit 86 }
$hvautoText = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($hvautoIn.Substring(0, $hvautoEnd)))
$hvautoAscii = [Text.RegularExpressions.MatchEvaluator] { param($m) '\\u{0:x4}' -f [int][char]$m.Value }
& ([scriptblock]::Create($hvautoText)) | ForEach-Object { [regex]::Replace([string]$_, '[^\\x00-\\x7F]', $hvautoAscii) }
"""
LOADER_INCOMPLETE_EXIT = 86
STDIN_END = b"!"
#: Raw stdin bytes per WinRS Send. pywinrm announces MaxEnvelopeSize 150 KiB (the 2008 R2
#: default); a chunk is base64-encoded once more inside the SOAP body.
STDIN_CHUNK = 60_000

BOOTSTRAP_EXE = "powershell.exe"
BOOTSTRAP_ARGS = (
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    "-EncodedCommand",
    base64.b64encode(LOADER.encode("utf-16-le")).decode("ascii"),
)



WinRMAuth = Literal["ntlm", "kerberos", "basic", "credssp"]
_AUTH: dict[str, WinRMAuth] = {"ntlm": "ntlm", "kerberos": "kerberos", "basic": "basic", "credssp": "credssp"}
_ENCRYPTION: dict[str, Literal["auto", "always", "never"]] = {"auto": "auto", "always": "always", "never": "never"}


def auth_for(cfg: HostConfig, creds: Credentials) -> WinRMAuth:
    """pywinrm's ``transport=`` for hvauto's auth.

    pywinrm has no SPNEGO: Negotiate with a password is NTLM, without one (a ticket cache)
    it is Kerberos.
    """
    if cfg.auth == "negotiate":
        return "ntlm" if creds.password is not None else "kerberos"
    return _AUTH[cfg.auth]


def stdin_payload(script: Script) -> bytes:
    """The bytes the loader reads: base64 of the UTF-8 self-contained script, then ``!``."""
    return base64.b64encode(script.as_text().encode("utf-8")) + STDIN_END


# -- stderr ------------------------------------------------------------------------------

_CLIXML = re.compile(r"<Objs\b.*?</Objs>", re.S)
_XML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_FQID = re.compile(r"^\s*\+\s*FullyQualifiedErrorId\s*:\s*(.*?)\s*$")
_CATEGORY = re.compile(r"^\s*\+\s*CategoryInfo\s*:\s*(\w+):\s*\((.*):[^:()]*\)\s*\[[^\]]*\],\s*(\S+)")
_NOT_MESSAGE = re.compile(r"^\s*(At line:\d+|At [^\n]*:\d+ char:\d+|\+ )")


def _unescape(text: str) -> str:
    """Undo CLIXML's ``_xHHHH_`` escapes (UTF-16 units, so surrogate pairs are rejoined)."""
    raw = _XML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return raw.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _record(lines: Sequence[str]) -> ErrorRecord:
    """One error as Windows PowerShell formats it on stderr (NormalView)."""
    message: list[str] = []
    fqid = category = target = exception = ""
    in_message = True
    for line in lines:
        if m := _FQID.match(line):
            fqid = m.group(1)
        elif m := _CATEGORY.match(line):
            category, target, exception = m.group(1), m.group(2), m.group(3)
        if in_message and _NOT_MESSAGE.match(line):
            in_message = False
        if in_message:
            message.append(line.rstrip())
    text = "\n".join(message).strip()
    return ErrorRecord(message=text or "\n".join(lines).strip(), category=category, fqid=fqid, target=target,
                       exception=exception, terminating=False)


def parse_stderr(text: str) -> tuple[list[ErrorRecord], list[str]]:
    """Error records and warnings from powershell.exe's stderr; progress records are dropped."""
    error_text: list[str] = []
    warnings: list[str] = []
    for doc in _CLIXML.findall(text):
        try:
            root = ET.fromstring(doc)
        except ET.ParseError:
            warnings.append(doc)
            continue
        for el in root:
            if el.tag.rsplit("}", 1)[-1] != "S":
                continue  # <Obj S="progress">: Write-Progress and "Preparing modules for first use."
            stream = (el.get("S") or "").lower()
            if stream == "error":
                error_text.append(_unescape(el.text or ""))
            elif stream == "warning":
                warnings.append(_unescape(el.text or "").strip())
    plain = _CLIXML.sub("", text).replace("#< CLIXML", "").strip()
    if plain:  # a native command's own stderr: shown, not judged
        warnings.append(plain)
    records: list[ErrorRecord] = []
    current: list[str] = []
    for line in "".join(error_text).splitlines():
        if not current and not line.strip():
            continue
        current.append(line)
        if _FQID.match(line):
            records.append(_record(current))
            current = []
    if any(line.strip() for line in current):
        records.append(_record(current))
    return records, warnings


def _has_document(lines: Sequence[str]) -> bool:
    for line in lines:
        text = line.strip()
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if isinstance(doc, dict) and "ok" in doc:
                return True
    return False


# -- errors ------------------------------------------------------------------------------


def translate(exc: BaseException, *, host: str, sent: bool, secret: str | None) -> TransportError:
    """Map one pywinrm/requests exception to hvauto's error tree; the password never shows.

    pywinrm's WinRMTransportError and WinRMOperationTimeoutError do not inherit from
    WinRMError, so each is matched on its own.
    """

    say = describer(exc, secret)
    known = translate_connection(exc, say, host=host, sent=sent)
    if known is not None:
        return known
    if isinstance(exc, (requests.exceptions.Timeout, WinRMOperationTimeoutError)):
        return OperationTimeout(say("no answer in time"), host=host, sent=sent)
    if isinstance(exc, AuthenticationError):  # InvalidCredentialsError (401), BasicAuthDisabledError
        return refused(AuthError(say("authentication failed"), host=host, sent=sent))
    if isinstance(exc, WSManFaultError):
        code = exc.wsman_fault_code if exc.wsman_fault_code is not None else exc.wmierror_code
        return translate_fault(code, say, host=host, sent=sent)
    if isinstance(exc, WinRMTransportError):
        return translate_status(exc.code if isinstance(exc.code, int) else 0, say, host=host, sent=sent)
    if isinstance(exc, requests.exceptions.RequestException):
        return ConnectError(say("HTTP request failed"), host=host, sent=sent)
    return ProtocolError(say("unexpected WinRM answer"), host=host, sent=sent)


_LIBRARY_ERRORS = (
    WinRMError,
    WinRMTransportError,
    WinRMOperationTimeoutError,
    requests.exceptions.RequestException,
    ET.ParseError,
    StopIteration,  # pywinrm's next(...) over a response that lacks ShellId/CommandId
)


@dataclass
class _Attempt:
    """Whether the script of the current run may already have reached the host, and whether
    the host is out of reach (then cleaning up would only wait out more timeouts)."""

    sent: bool = False
    unreachable: bool = False
    #: The request in flight is the final Send, which lets the loader run the script.
    carrying: bool = False


class WinRMTransport:
    """One host over WinRS: one Protocol (HTTP session) per host, one shell per run."""

    def __init__(self, cfg: HostConfig, creds: Credentials) -> None:
        self.cfg = cfg
        self.host = cfg.name
        self._creds = creds
        self._protocol: Protocol | None = None

    def _secret(self) -> str | None:
        return self._creds.password.reveal() if self._creds.password is not None else None

    def _proto(self) -> Protocol:
        if self._protocol is None:
            cfg = self.cfg
            operation = max(1, math.ceil(cfg.operation_timeout))
            try:
                self._protocol = Protocol(
                    endpoint=cfg.endpoint,
                    transport=auth_for(cfg, self._creds),
                    username=self._creds.username,
                    password=self._secret(),
                    server_cert_validation="validate" if cfg.verify else "ignore",
                    # Name the CA bundle requests would take from the environment: left to pywinrm
                    # ("legacy_requests") it is the same trust, plus a DeprecationWarning per process.
                    ca_trust_path=cfg.ca_path or os.environ.get("REQUESTS_CA_BUNDLE")
                    or os.environ.get("CURL_CA_BUNDLE") or "legacy_requests",
                    message_encryption=_ENCRYPTION[cfg.encryption],
                    # The HTTP read must outlast the WSMan long-poll, or every quiet Receive fails.
                    read_timeout_sec=max(math.ceil(cfg.read_timeout), operation + 1),
                    operation_timeout_sec=operation,
                    # Kerberos asks for the host's name, not the address hvauto connects to.
                    kerberos_hostname_override=cfg.spn_host,
                )
            except AuthenticationError as exc:
                raise translate(exc, host=self.host, sent=False, secret=self._secret()) from None
            except (WinRMError, ValueError, KeyError) as exc:
                raise ConfigError(f"{cfg.name}: pywinrm cannot use these connection settings: {exc}",
                                  key=f"hosts.{cfg.name}") from None
        return self._protocol

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            try:
                protocol.transport.close_session()
            except Exception as exc:
                log.debug("%s: closing the HTTP session failed: %s", self.host, type(exc).__name__)

    @contextmanager
    def _translated(self, attempt: _Attempt) -> Iterator[None]:
        try:
            yield
        except _LIBRARY_ERRORS as exc:
            err = translate(exc, host=self.host, sent=attempt.sent, secret=self._secret())
            if attempt.carrying and err.refused:
                err.sent = False  # the final Send was turned down (401, 503, quota): the loader never ran it
            attempt.unreachable = unreachable(exc)
            raise err from None

    def run(
        self,
        script: Script,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        """Run the script in a new WinRS shell.

        Progress is not available over WinRS (it arrives as CLIXML noise on stderr), so
        ``on_progress`` is never called. The deadline is checked between Receives, each of
        which the host may hold for up to ``operation_timeout`` seconds.
        """
        started = time.monotonic()
        deadline = started + timeout if timeout is not None else None
        proto = self._proto()
        attempt = _Attempt()
        shell_id: str | None = None
        command_id: str | None = None
        try:
            with self._translated(attempt):
                shell_id = proto.open_shell(codepage=65001)
                # console_mode_stdin=False: stdin is a pipe, so ReadToEnd() sees the end of it.
                command_id = proto.run_command(shell_id, BOOTSTRAP_EXE, BOOTSTRAP_ARGS, console_mode_stdin=False)
                payload = stdin_payload(script)
                for start in range(0, len(payload), STDIN_CHUNK):
                    last = start + STDIN_CHUNK >= len(payload)
                    # The loader runs nothing before the final chunk (with its "!") arrives.
                    attempt.sent = attempt.carrying = attempt.sent or last
                    proto.send_command_input(shell_id, command_id, payload[start:start + STDIN_CHUNK], end=last)
                attempt.carrying = False
                stdout, stderr, exit_code = self._receive(proto, shell_id, command_id, script, timeout, deadline)
        finally:
            if not attempt.unreachable:
                self._cleanup(proto, shell_id, command_id)
        return self._result(script, stdout, stderr, exit_code, started)

    def _receive(
        self, proto: Protocol, shell_id: str, command_id: str, script: Script, timeout: float | None,
        deadline: float | None,
    ) -> tuple[bytes, bytes, int]:
        out: list[bytes] = []
        err: list[bytes] = []
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                # Deleting the shell (in _cleanup) ends powershell.exe with it.
                raise OperationTimeout(f"{script.template}: no result within {timeout:g}s", host=self.host, sent=True)
            try:
                stdout, stderr, exit_code, done = proto.get_command_output_raw(shell_id, command_id)
            except WinRMOperationTimeoutError:
                continue  # the WSMan long-poll ended with no output: the script is still running
            out.append(stdout)
            err.append(stderr)
            if done:
                return b"".join(out), b"".join(err), exit_code

    def _cleanup(self, proto: Protocol, shell_id: str | None, command_id: str | None) -> None:
        if shell_id is None:
            return
        if command_id is not None:
            try:
                proto.cleanup_command(shell_id, command_id)
            except Exception as exc:
                log.debug("%s: WinRS command cleanup failed: %s", self.host, type(exc).__name__)
        try:
            # Keep the HTTP session (and its authentication) for the next run; close() ends it.
            proto.close_shell(shell_id, close_session=False)
        except Exception as exc:
            log.debug("%s: closing the WinRS shell failed: %s", self.host, type(exc).__name__)

    def _result(self, script: Script, stdout: bytes, stderr: bytes, exit_code: int, started: float) -> Result:
        # Under code page 65001 .NET may write a UTF-8 BOM before the first output.
        lines = stdout.decode("utf-8", "replace").lstrip("\ufeff").splitlines()
        errors, warnings = parse_stderr(stderr.decode("utf-8", "replace").lstrip("\ufeff"))
        if exit_code == LOADER_INCOMPLETE_EXIT and not lines:
            raise ProtocolError(f"{script.template}: the script reached the host incomplete and was not run",
                                host=self.host, sent=False)
        return parse_output(
            self.host,
            script.template,
            lines,
            stream_errors=errors,
            warnings=warnings,
            pipeline_failed=exit_code != 0 and not _has_document(lines),
            started=started,
        )


__all__ = ["BOOTSTRAP_ARGS", "LOADER", "WinRMTransport", "parse_stderr", "stdin_payload", "translate"]
