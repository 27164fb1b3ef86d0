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


def translate_connection(exc: BaseException, say: Say, *, host: str, sent: bool) -> TransportError | None:
    """requests' TLS/connect/connection errors; None for anything else (timeouts are the caller's)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSError(say("TLS handshake or certificate validation failed"), host=host, sent=sent)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectError(say("connection timed out"), host=host, sent=False)
    if isinstance(exc, requests.exceptions.ConnectionError):
        if never_connected(exc):
            return ConnectError(say("cannot connect"), host=host, sent=False)
        return ConnectError(say("connection lost"), host=host, sent=sent)
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
