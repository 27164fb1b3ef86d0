"""The PSRP back-end (pypsrp 0.9): one runspace pool per host, values bound as parameters.

Why PSRP rather than WinRS: the script text goes to the host as-is and every value travels
as a typed CLIXML parameter (``add_parameter``), so a value can never become code, and the
host answers with real streams (error records with category and FullyQualifiedErrorId,
warnings, progress) instead of text on stderr.

Opening a pool costs a shell Create plus key exchange (several round trips, and a WinRM
shell counts against ``MaxShellsPerUser``), so the pool is opened on the first run and
reused. WinRM drops shells (``IdleTimeout``, a service restart, a reboot between steps), so
a pool idle for longer than ``PROBE_AFTER_IDLE`` is asked ``RunspacePool.is_alive()`` first;
between quick steps that probe would be one more request per step, so instead a pool that
turns out to be gone (the Command is answered "shell not found": nothing ran) is reopened
and the script sent once more.

Every pypsrp/requests exception leaves this module as an :mod:`hvauto.errors` transport
error. ``sent`` is false while the pool is being opened and becomes true when the
Create-pipeline Command request for the script is about to go out: from then on the
host may have started the script, unless the failure proves the request never left.
"""

from __future__ import annotations

import logging
import math
import os
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan

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
    fault_code,
    refused,
    translate_connection,
    translate_fault,
    translate_status,
    unreachable,
)
from hvauto.remote.base import Progress, ProgressCallback, Result, parse_output
from hvauto.script import Script

log = logging.getLogger("hvauto.remote.psrp")

#: hvauto's auth names -> pypsrp's ``auth=`` (ntlm/kerberos restrict pypsrp's Negotiate).
AUTH = {"negotiate": "negotiate", "kerberos": "kerberos", "ntlm": "ntlm", "basic": "basic", "credssp": "credssp"}

#: System.Management.Automation.ErrorCategory, by value (PSRP sends the number).
ERROR_CATEGORIES = (
    "NotSpecified", "OpenError", "CloseError", "DeviceError", "DeadlockDetected", "InvalidArgument",
    "InvalidData", "InvalidOperation", "InvalidResult", "InvalidType", "MetadataError", "NotImplemented",
    "NotInstalled", "ObjectNotFound", "OperationStopped", "OperationTimeout", "SyntaxError", "ParserError",
    "PermissionDenied", "ResourceBusy", "ResourceExists", "ResourceUnavailable", "ReadError", "WriteError",
    "FromStdErr", "SecurityError", "ProtocolError", "ConnectionError", "AuthenticationError", "LimitsExceeded",
    "QuotaExceeded", "NotEnabled",
)  # fmt: skip


def tag_value(value: Any) -> Any:
    """Give a value the CLIXML type its PowerShell parameter expects.

    pypsrp infers tags from Python types and gets three wrong for us: ``int`` becomes I32
    (a VHD size or a byte count overflows), ``float`` becomes Sg (a single loses digits)
    and a ``tuple`` is not handled at all. Containers are converted element-wise.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return TaggedValue("I64", value)
    if isinstance(value, float):
        return TaggedValue("Db", value)
    if isinstance(value, (list, tuple)):
        return [tag_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: tag_value(v) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text == "None" else text


def error_record(rec: Any, *, terminating: bool = False) -> ErrorRecord:
    """Turn a pypsrp ErrorRecord (MS-PSRP 2.2.3.15) into hvauto's."""
    exception = getattr(rec, "exception", None)
    exc_message = ""
    exc_type = ""
    if exception is not None:
        exc_message = _text(getattr(exception, "adapted_properties", {}).get("Message"))
        types = getattr(exception, "types", None) or []
        exc_type = str(types[0]) if types else ""
    # ErrorRecord.ToString() is ErrorDetails.Message when set, else Exception.Message.
    message = _text(getattr(rec, "details_message", None)) or _text(rec) or exc_message
    category_value = getattr(rec, "category", None)
    if isinstance(category_value, int) and 0 <= category_value < len(ERROR_CATEGORIES):
        category = ERROR_CATEGORIES[category_value]
    else:  # "ObjectNotFound: (web01:String) [Get-VM], VirtualizationException"
        category = _text(getattr(rec, "message", None)).split(":", 1)[0]
    return ErrorRecord(
        message=message or _text(getattr(rec, "message", None)) or "error record without a message",
        category=category,
        fqid=_text(getattr(rec, "fq_error", None)),
        target=_text(getattr(rec, "target_object", None)) or _text(getattr(rec, "target_name", None)),
        exception=exc_type,
        terminating=terminating,
        script_stack=_text(getattr(rec, "script_stacktrace", None)),
    )


def progress_record(rec: Any) -> Progress:
    def number(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else -1

    return Progress(
        activity=_text(getattr(rec, "activity", None)),
        status=_text(getattr(rec, "description", None)),
        percent=number(getattr(rec, "percent_complete", None)),
        seconds_remaining=number(getattr(rec, "seconds_remaining", None)),
        operation=_text(getattr(rec, "current_operation", None)),
    )


def translate(exc: BaseException, *, host: str, sent: bool, secret: str | None) -> TransportError:
    """Map one pypsrp/requests exception to hvauto's error tree; the password never shows."""
    say = describer(exc, secret)
    known = translate_connection(exc, say, host=host, sent=sent)
    if known is not None:
        return known
    if isinstance(exc, requests.exceptions.Timeout):
        return OperationTimeout(say("no answer within read_timeout"), host=host, sent=sent)
    if isinstance(exc, AuthenticationError):
        return refused(AuthError(say("authentication failed"), host=host, sent=sent))
    if isinstance(exc, WinRMTransportError):
        return translate_status(exc.code if isinstance(exc.code, int) else 0, say, host=host, sent=sent)
    if isinstance(exc, WSManFaultError):
        return translate_fault(fault_code(exc.code), say, host=host, sent=sent)
    if isinstance(exc, WinRMError):
        return ProtocolError(say("PSRP error"), host=host, sent=sent)
    if isinstance(exc, requests.exceptions.RequestException):
        return ConnectError(say("HTTP request failed"), host=host, sent=sent)
    return ProtocolError(say("unexpected failure in pypsrp"), host=host, sent=sent)


_LIBRARY_ERRORS = (WinRMError, requests.exceptions.RequestException)


@dataclass
class _Attempt:
    """Whether the script of the current run may already have reached the host, and whether the
    request in flight is the one that carries it (a refusal of that one proves nothing ran)."""

    sent: bool = False
    carrying: bool = False


#: Seconds a pool may sit unused before the next run asks the host whether it still exists.
PROBE_AFTER_IDLE = 30.0
#: The WSMan fault for a shell the service no longer knows (ERROR_WSMAN_INVALID_SELECTORS).
FAULT_SHELL_NOT_FOUND = 0x8033805B


def _shell_not_found(exc: BaseException) -> bool:
    return isinstance(exc, WSManFaultError) and fault_code(exc.code) == FAULT_SHELL_NOT_FOUND


_TLS_CONTEXTS: dict[bool | str, ssl.SSLContext] = {}
_TLS_LOCK = threading.Lock()


def shared_tls_context(verify: bool | str) -> ssl.SSLContext:
    """One TLS client context per trust setting (requests' ``verify``), shared by every host.

    Without it urllib3 makes a context for each connection and loads the CA bundle into it:
    certifi's bundle costs 10-30 ms of CPU a host, more than all the rest of a one-step
    command. The context is urllib3's own default, with the same trust loaded once.
    """
    from requests.utils import DEFAULT_CA_BUNDLE_PATH
    from urllib3.util.ssl_ import create_urllib3_context

    with _TLS_LOCK:
        ctx = _TLS_CONTEXTS.get(verify)
        if ctx is None:
            ctx = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED if verify is not False else ssl.CERT_NONE)
            if verify is not False:
                where = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
                if os.path.isdir(where):
                    ctx.load_verify_locations(capath=where)
                else:
                    ctx.load_verify_locations(cafile=where)
            _TLS_CONTEXTS[verify] = ctx
        return ctx


def _share_tls_context(session: requests.Session) -> None:
    """Make the session's HTTPS connections use :func:`shared_tls_context` for its ``verify``."""
    adapter = session.adapters.get("https://")
    verify = session.verify
    if not isinstance(adapter, requests.adapters.HTTPAdapter) or not isinstance(verify, (bool, str)):
        return
    try:
        ctx = shared_tls_context(verify)
    except (OSError, ssl.SSLError):
        return  # a bundle that cannot be read: requests reports it on the first request, as before
    adapter.poolmanager.connection_pool_kw["ssl_context"] = ctx
    set_trust = adapter.cert_verify

    def cert_verify(conn: Any, url: str, verify: Any, cert: Any) -> None:
        set_trust(conn, url, verify, cert)
        # The shared context holds the trust already: loading it again is the cost avoided.
        conn.ca_certs = None
        conn.ca_cert_dir = None

    adapter.cert_verify = cert_verify  # type: ignore[method-assign]


def _read_environment_once(wsman: WSMan) -> None:
    """Read the proxy and CA-bundle environment once for this host, not on every request.

    pypsrp builds its requests session from the environment (``HTTPS_PROXY``, ``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``) and then leaves ``trust_env`` on, so requests scans the whole
    environment again for every WS-Management request (about 3 ms a host for a one-step
    command). The session is built here, with the same settings, and then stops looking.
    """
    http = wsman.transport
    if http.session is None:
        http.session = http._build_session()
    http.session.trust_env = False
    _share_tls_context(http.session)


class PSRPTransport:
    """One host over PSRP. Not thread-safe: the session runs one step at a time per host."""

    def __init__(self, cfg: HostConfig, creds: Credentials) -> None:
        self.cfg = cfg
        self.host = cfg.name
        self._creds = creds
        self._pool: RunspacePool | None = None
        self._last_used = 0.0
        #: The last finished pipeline, whose Terminate signal waits for the next run: closing
        #: the pool (Delete) ends it anyway, so a host's last step costs one request less.
        self._finished: PowerShell | None = None

    # -- the pool -------------------------------------------------------------------------

    def _wsman(self) -> WSMan:
        cfg = self.cfg
        password = self._creds.password.reveal() if self._creds.password is not None else None
        # Basic cannot wrap messages: over plain HTTP pypsrp would refuse "auto", and the
        # inventory has already demanded allow_unencrypted for that combination.
        encryption = cfg.encryption
        if cfg.auth == "basic" and not cfg.tls and encryption == "auto":
            encryption = "never"
        try:
            wsman = WSMan(
                server=cfg.address or cfg.name,
                port=cfg.effective_port,
                path=cfg.path,
                ssl=cfg.tls,
                auth=AUTH[cfg.auth],
                username=self._creds.username,
                password=password,
                # pypsrp hands this to requests' ``verify``, which also takes a CA bundle path.
                cert_validation=cast(bool, (cfg.ca_path or True) if cfg.verify else False),
                connection_timeout=math.ceil(cfg.connect_timeout),
                read_timeout=math.ceil(cfg.read_timeout),
                operation_timeout=math.ceil(cfg.operation_timeout),
                encryption=encryption,
                # Kerberos asks for the host's name, not the address hvauto connects to.
                negotiate_hostname_override=cfg.spn_host if cfg.auth in ("negotiate", "kerberos") else None,
            )
            _read_environment_once(wsman)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{cfg.name}: pypsrp cannot use these connection settings: {exc}",
                              key=f"hosts.{cfg.name}") from None
        return wsman

    def _ensure_pool(self) -> RunspacePool:
        if self._pool is not None and time.monotonic() - self._last_used < PROBE_AFTER_IDLE:
            return self._pool
        if self._pool is not None:
            try:
                alive = self._pool.is_alive()
            except Exception as exc:  # a probe that fails says the same as "dead"
                log.debug("%s: is_alive() failed: %s", self.host, type(exc).__name__)
                alive = False
            if alive:
                return self._pool
            log.info("%s: the runspace pool is gone (idle timeout or restart); opening a new one", self.host)
            self._discard_pool()
        # Held before it is open: if open() fails, retiring it releases a half-made shell.
        self._pool = pool = RunspacePool(self._wsman())
        pool.open()
        return pool

    def _discard_pool(self, *, graceful: bool = True) -> None:
        """Retire the pool. Graceful deletes its shell on the host (which ends any pipeline in
        it and frees a MaxShellsPerUser slot); without a working connection that would only
        wait out another timeout, so then the shell is left to WinRM's IdleTimeout."""
        pool, self._pool = self._pool, None
        self._finished = None  # deleting the shell ends its pipelines
        if pool is None:
            return
        if graceful:
            try:
                pool.close()
            except Exception as exc:
                log.debug("%s: closing the runspace pool failed: %s", self.host, type(exc).__name__)
        try:
            pool.connection.close()  # the HTTP session and its sockets
        except Exception as exc:
            log.debug("%s: closing the HTTP session failed: %s", self.host, type(exc).__name__)

    def close(self) -> None:
        self._discard_pool()

    # -- one run --------------------------------------------------------------------------

    @contextmanager
    def _translated(self, attempt: _Attempt) -> Iterator[None]:
        secret = self._creds.password.reveal() if self._creds.password is not None else None
        try:
            yield
        except _LIBRARY_ERRORS as exc:
            err = translate(exc, host=self.host, sent=attempt.sent, secret=secret)
            if attempt.carrying and err.refused:
                err.sent = False  # the Command was turned down (401, 503, quota): the pipeline never started
            # After a lost connection or answer the pool's state is unknown: start afresh.
            self._discard_pool(graceful=not unreachable(exc))
            raise err from None

    def run(
        self,
        script: Script,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        started = time.monotonic()
        deadline = started + timeout if timeout is not None else None
        attempt = _Attempt()
        ps: PowerShell | None = None
        try:
            with self._translated(attempt):
                try:
                    ps = self._begin(script, attempt)
                except WSManFaultError as exc:
                    if not _shell_not_found(exc):
                        raise
                    # The shell was dropped while the pool sat unused: no pipeline was created,
                    # so nothing ran. Open a new pool and send the script once more.
                    log.info("%s: the runspace pool is gone (idle timeout or restart); opening a new one", self.host)
                    self._discard_pool(graceful=False)
                    attempt.sent = False
                    ps = self._begin(script, attempt)
                progress = self._wait(ps, script, timeout, deadline, on_progress)
        finally:
            if ps is not None:
                self._finish(ps)
            self._last_used = time.monotonic()
        return self._result(script, ps, progress, started)

    def _signal_finished(self) -> None:
        """Send the deferred Terminate of the previous pipeline (frees its resources on the host)."""
        ps, self._finished = self._finished, None
        if ps is None or ps.runspace_pool is not self._pool:
            return
        try:
            ps.close()
        except Exception as exc:
            log.debug("%s: closing the pipeline failed: %s", self.host, type(exc).__name__)

    def _begin(self, script: Script, attempt: _Attempt) -> PowerShell:
        self._signal_finished()
        ps = PowerShell(self._ensure_pool())
        ps.add_script(script.body)
        for name, value in script.params.items():
            ps.add_parameter(name, tag_value(value))
        attempt.sent = attempt.carrying = True  # the Create-pipeline Command request carries the script
        ps.begin_invoke()
        attempt.carrying = False
        return ps

    def _wait(
        self,
        ps: PowerShell,
        script: Script,
        timeout: float | None,
        deadline: float | None,
        on_progress: ProgressCallback | None,
    ) -> list[Progress]:
        progress: list[Progress] = []
        while ps.state == PSInvocationState.RUNNING:
            poll: int | None = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OperationTimeout(f"{script.template}: no result within {timeout:g}s",
                                           host=self.host, sent=True)
                poll = max(1, min(math.ceil(self.cfg.operation_timeout), math.ceil(remaining)))
            ps.poll_invoke(timeout=poll)
            for rec in ps.streams.progress[len(progress):]:
                item = progress_record(rec)
                progress.append(item)
                if on_progress is not None:
                    on_progress(item)
        return progress

    def _finish(self, ps: PowerShell) -> None:
        if ps.runspace_pool is not self._pool:
            return  # already retired with its pool
        if ps.state == PSInvocationState.RUNNING:
            # Leaving mid-run (deadline, lost answer, Ctrl-C, a failing callback): the pool's one
            # runspace is busy, so the pool goes; deleting its shell ends the pipeline on the host.
            self._discard_pool()
            return
        # The Terminate signal that frees the pipeline's resources on the host goes out before
        # the next run (or not at all: the pool's Delete ends it).
        self._finished = ps

    def _result(self, script: Script, ps: PowerShell, progress: Sequence[Progress], started: float) -> Result:
        failed = ps.state == PSInvocationState.FAILED
        records = list(ps.streams.error)
        # A Failed pipeline's own error (PIPELINE_STATE's ExceptionAsErrorRecord) is appended last.
        errors = [error_record(r, terminating=failed and i == len(records) - 1) for i, r in enumerate(records)]
        warnings = [_text(getattr(w, "message", None)) or _text(w) for w in ps.streams.warning]
        return parse_output(
            self.host,
            script.template,
            ps.output,
            stream_errors=errors,
            warnings=warnings,
            progress=progress,
            pipeline_failed=failed,
            started=started,
        )


__all__ = ["AUTH", "PSRPTransport", "error_record", "shared_tls_context", "tag_value", "translate"]
