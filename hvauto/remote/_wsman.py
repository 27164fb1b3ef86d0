"""What both WinRM back-ends share: WSMan fault codes and the HTTP-level error translation.

Imported only by :mod:`hvauto.remote.psrp` and :mod:`hvauto.remote.winrm` (it imports
requests), never on the CLI's start-up path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from hvauto.errors import (
    AuthError,
    ConnectError,
    OperationTimeout,
    ProtocolError,
    QuotaError,
    TLSError,
    TransportError,
)

#: WSManFault codes that mean "a WinRM quota was hit", from wsmerror.h (the same table
#: PowerShell's own CIM jobs use to decide to back off). True: waiting may help.
QUOTA_FAULTS: dict[int, tuple[str, bool]] = {
    0x8033803F: ("ERROR_WSMAN_QUOTA_LIMIT", True),
    0x803381A5: ("ERROR_WSMAN_QUOTA_MAX_SHELLS", True),
    0x803381A6: ("ERROR_WSMAN_QUOTA_MAX_OPERATIONS", True),
    0x803381A7: ("ERROR_WSMAN_QUOTA_USER", True),
    0x803381A8: ("ERROR_WSMAN_QUOTA_SYSTEM", True),
    0x803381AB: ("ERROR_WSMAN_QUOTA_MAX_SHELLUSERS", True),
    0x803381E4: ("ERROR_WSMAN_QUOTA_MAX_SHELLS_PPQ", True),
    0x803381E5: ("ERROR_WSMAN_QUOTA_MAX_USERS_PPQ", True),
    0x803381E6: ("ERROR_WSMAN_QUOTA_MAX_PLUGINSHELLS_PPQ", True),
    0x803381E7: ("ERROR_WSMAN_QUOTA_MAX_PLUGINOPERATIONS_PPQ", True),
    0x803381E8: ("ERROR_WSMAN_QUOTA_MAX_OPERATIONS_USER_PPQ", True),
    0x803381E9: ("ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL_PPQ", True),
    0x803381EA: ("ERROR_WSMAN_QUOTA_MIN_REQUIREMENT_NOT_AVAILABLE_PPQ", True),
    # The envelope is a size limit, not a load limit: sending the same script again cannot help.
    0x80338026: ("ERROR_WSMAN_ENVELOPE_TOO_LARGE", False),
    0x80338048: ("ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED", False),
}
#: The WSMan fault for "no output within OperationTimeout" and Win32 ERROR_ACCESS_DENIED.
FAULT_OPERATION_TIMEDOUT = 0x80338029
FAULT_ACCESS_DENIED = 5

Say = Callable[[str], str]


def describer(exc: BaseException, secret: str | None) -> Say:
    """A message maker for ``exc`` that never shows the password, even if a library echoed it."""

    def say(what: str) -> str:
        detail = str(exc) or type(exc).__name__
        text = f"{what} ({type(exc).__name__}: {detail})"
        return text.replace(secret, "********") if secret else text

    return say


def never_connected(exc: BaseException) -> bool:
    """True when the failure was the TCP connect itself (refused, DNS), so nothing was sent."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError):
            return True
        if isinstance(item, BaseException):
            todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__, *item.args])
    return False


def unreachable(exc: BaseException) -> bool:
    """The host cannot be reached at all, so a clean-up request would only time out too."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and never_connected(exc)


def fault_code(code: Any) -> int | None:
    if isinstance(code, int):
        return code
    try:
        return int(str(code), 0)
    except ValueError:
        return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__, *item.args])
    return seen


def reason(exc: BaseException) -> str:
    """The root cause in a few words ("connection refused", "name does not resolve", a certificate's error)."""
    import socket
    import ssl

    for item in reversed(_chain(exc)):
        if isinstance(item, ssl.SSLCertVerificationError):
            return f"certificate: {item.verify_message or item.reason or 'not trusted'}"
        if isinstance(item, socket.gaierror):
            return "the name does not resolve"
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, (TimeoutError, socket.timeout)):
            return "no answer (timed out)"
        if isinstance(item, ConnectionResetError):
            return "connection reset"
    text = str(exc)
    for needle, short in (("Connection refused", "connection refused"), ("Name or service not known",
                          "the name does not resolve"), ("timed out", "no answer (timed out)"),
                          ("CERTIFICATE_VERIFY_FAILED", "certificate not trusted")):
        if needle in text:
            return short
    return type(exc).__name__


def _where(exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    url = str(getattr(request, "url", "") or "")
    return f" {url.split('?')[0]}" if url else ""


def _port(exc: BaseException) -> str:
    from urllib.parse import urlsplit

    url = str(getattr(getattr(exc, "request", None), "url", "") or "")
    try:
        return str(urlsplit(url).port or "")
    except ValueError:
        return ""


def translate_connection(exc: BaseException, say: Say, *, host: str, sent: bool) -> TransportError | None:
    """requests' TLS/connect/connection errors, as one line and what to check; None for anything else."""
    del say  # one line of our own: the library's chain ("HTTPSConnectionPool ... Max retries") helps nobody
    where, why, port = _where(exc), reason(exc), _port(exc) or "the WinRM port"
    listen = (f"check that WinRM listens there (on the host: winrm enumerate winrm/config/listener; for the lab: "
              f"hvauto lab serve) and that a firewall lets {port} through")
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSError(f"TLS with{where} failed: {why}", host=host, sent=sent,
                        hint="check the certificate's name against the address you use, and the CA "
                             "(hosts.NAME.ca_path in the inventory)")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectError(f"cannot connect to{where}: no answer (timed out)", host=host, sent=False, hint=listen)
    if isinstance(exc, requests.exceptions.ConnectionError):
        if never_connected(exc):
            hint = ("check the name in DNS, or set hosts.NAME.address in the inventory" if "resolve" in why
                    else listen)
            return ConnectError(f"cannot connect to{where}: {why}", host=host, sent=False, hint=hint)
        return ConnectError(f"the connection to{where} was lost: {why}", host=host, sent=sent,
                            hint="the host or a network device dropped it; hvauto re-inspects before it sends "
                                 "anything again")
    return None


def refused(err: TransportError) -> TransportError:
    """Mark ``err`` as the service turning the request down before it ran anything."""
    err.refused = True
    return err


def translate_status(status: int, say: Say, *, host: str, sent: bool) -> TransportError:
    """An HTTP error status from the WinRM service.

    ``sent`` is the caller's: a 401 on the Receive after the Command went out leaves the
    script running; only on the request that carries the script does a refusal prove it did
    not run (the back-end clears ``sent`` then, see :attr:`TransportError.refused`).
    """
    if status in (401, 403):
        return refused(AuthError(say(f"HTTP {status}"), host=host, sent=sent))
    if status == 503:
        # HTTP.sys or the WinRM service is busy or restarting: the request was not processed.
        return refused(ConnectError(say(f"WinRM service answered HTTP {status}"), host=host, sent=sent))
    if status >= 500:
        return ConnectError(say(f"WinRM service answered HTTP {status}"), host=host, sent=sent)
    return ProtocolError(say(f"unexpected HTTP {status}"), host=host, sent=sent)


def translate_fault(code: int | None, say: Say, *, host: str, sent: bool) -> TransportError:
    """A WSManFault by its code: quota, operation timeout, access denied, or anything else."""
    if code is not None and code in QUOTA_FAULTS:
        name, transient = QUOTA_FAULTS[code]
        err: TransportError = QuotaError(say(f"WinRM quota: {name}"), host=host, sent=sent)
        err.transient = transient
        return refused(err)
    if code == FAULT_OPERATION_TIMEDOUT:
        return OperationTimeout(say("WSMan operation timed out"), host=host, sent=sent)
    if code == FAULT_ACCESS_DENIED:
        return refused(AuthError(say("access denied by WinRM"), host=host, sent=sent))
    return ProtocolError(say("WSMan fault"), host=host, sent=sent)
