"""hvauto's one error tree and its exit codes.

Every failure hvauto knows how to explain is an :class:`HvautoError`; the CLI turns
it into one line on stderr and the exit code of its class. Anything else is a bug:
the traceback goes to the debug log, never to the screen.

    HvautoError                       exit 1
    ├── UsageError                    exit 2   bad input caught before any remote call
    │   └── ValidationError                    (carries every problem at once)
    ├── ConfigError                   exit 3   inventory / configuration file
    │   └── NoInventoryError
    ├── NotFoundError                 exit 4   host, VM, share, run ... not there
    │   └── UnknownHostError
    ├── AmbiguousError                exit 4   found in more than one place
    ├── TemplateError                 exit 1   a template failed to render (a bug)
    ├── TransportError                exit 6   the remoting layer
    │   ├── ConnectError              exit 6   refused, reset, DNS, 503 (transient)
    │   ├── TLSError                  exit 6   certificate validation failed
    │   ├── AuthError                 exit 5   401, bad credentials, no ticket
    │   ├── OperationTimeout          exit 7   no answer in time
    │   ├── QuotaError                exit 6   WinRM quota (shells, operations, envelope)
    │   └── ProtocolError             exit 6   an answer we cannot understand
    │       └── ContractError                  an answer that breaks its template's output contract
    ├── RemoteScriptError             exit 8   the script ran and failed (error record)
    ├── VerifyError                   exit 8   the change ran, but the host does not show it
    ├── PreflightError                exit 10  blocking problems found; nothing changed
    ├── HostsFailedError              exit 9   some hosts failed, others did not (or each host's own code)
    ├── RunAborted                    exit 11  a runbook step failed on every host
    ├── LockedError                   exit 12  another run of the same runbook holds its lock
    ├── OutcomeUnknown                exit 13  a change was sent, its answer lost, and the host cannot tell
    └── Interrupted                   exit 130 Ctrl-C

:func:`exit_code` is the one place a code is chosen: from an error of this tree, or from a
report of many hosts (any blocking problem: 10; every host failed the same way: that way's
code; some failed: 9).

``TransportError.transient`` says whether a retry may help; ``sent`` says whether the
remote side may already have started the script (then a non-idempotent step must be
re-inspected, never re-sent). ``refused`` marks an answer by which the service turned the
request down before running anything (HTTP 401/403/503, a WinRM quota fault): on the very
request that carries the script it proves the script did not run, so the back-ends clear
``sent`` then; on any later request (a Receive) the script is running regardless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol


def _s(n: int) -> str:
    return "" if n == 1 else "s"


class ExitCode(IntEnum):
    """Process exit codes, documented in the README and ``hvauto --help``."""

    OK = 0
    ERROR = 1
    USAGE = 2
    CONFIG = 3
    NOT_FOUND = 4
    AUTH = 5
    UNREACHABLE = 6
    TIMEOUT = 7
    REMOTE = 8
    PARTIAL = 9
    PREFLIGHT = 10
    ABORTED = 11
    LOCKED = 12
    UNKNOWN = 13
    NOT_READY = 14
    INTERRUPTED = 130


class HvautoError(Exception):
    """Root of every error hvauto explains to its user."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint or None}


class UsageError(HvautoError):
    exit_code = ExitCode.USAGE


class ValidationError(UsageError):
    """Bad input, with every problem found (not just the first)."""

    def __init__(self, problems: Sequence[str], *, what: str = "input") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {what}:\n{lines}" if len(self.problems) != 1 else f"invalid {what}: {problems[0]}")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "problems": self.problems}


class ConfigError(HvautoError):
    exit_code = ExitCode.CONFIG

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None, hint: str | None = None):
        where = ""
        if path:
            where = f"{path}: "
            if key:
                where = f"{path}: {key}: "
        super().__init__(f"{where}{message}", hint=hint)
        self.path = path
        self.key = key


class NoInventoryError(ConfigError):
    def __init__(self, looked_at: str) -> None:
        super().__init__(
            f"no inventory found (looked for {looked_at})",
            hint="run `hvauto lab init` to create a lab estate and its inventory, or pass --inventory FILE",
        )


class NotFoundError(HvautoError):
    exit_code = ExitCode.NOT_FOUND


class UnknownHostError(NotFoundError):
    def __init__(self, host: str, known: Sequence[str] = ()) -> None:
        hint = f"known hosts: {', '.join(known)}" if known else None
        super().__init__(f"unknown host {host!r}: not in the inventory", hint=hint)
        self.host = host


class AmbiguousError(HvautoError):
    exit_code = ExitCode.NOT_FOUND


class TemplateError(HvautoError):
    exit_code = ExitCode.ERROR


class TransportError(HvautoError):
    """The remoting layer failed; the script may or may not have started (``sent``)."""

    exit_code = ExitCode.UNREACHABLE
    transient = False
    #: The service refused the request before running anything (401/403/503, a quota fault).
    refused = False

    def __init__(self, message: str, *, host: str | None = None, sent: bool = False, hint: str | None = None) -> None:
        text = f"{host}: {message}" if host else message
        super().__init__(text, hint=hint)
        self.host = host
        self.sent = sent

    def to_dict(self) -> dict[str, Any]:
        # ``sent``: the script may have run on the host (its answer was lost), so look before running it again.
        return {**super().to_dict(), "sent": self.sent}


class ConnectError(TransportError):
    transient = True


class TLSError(TransportError):
    def __init__(self, message: str, *, host: str | None = None, sent: bool = False, hint: str | None = None) -> None:
        super().__init__(
            message,
            host=host,
            sent=sent,
            hint=hint or "set ca_path in the inventory to trust a private CA (verification stays on)",
        )


class AuthError(TransportError):
    exit_code = ExitCode.AUTH


class OperationTimeout(TransportError):
    exit_code = ExitCode.TIMEOUT
    transient = True


class QuotaError(TransportError):
    transient = True


class ProtocolError(TransportError):
    pass


class ContractError(ProtocolError):
    """A template's answer does not match its declared output contract (the template or the host is wrong).

    The script ran (``sent``): a step that changes things must be re-inspected, not re-sent.
    """

    def __init__(self, template: str, problems: Sequence[str], *, host: str | None = None) -> None:
        self.template = template
        self.problems = list(problems)
        shown = "; ".join(self.problems[:3]) + (f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else "")
        super().__init__(f"{template}: the answer breaks the template's output contract: {shown}", host=host,
                         sent=True, hint="a template and the host disagree; run with --debug and report it")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "template": self.template, "problems": self.problems}


@dataclass(frozen=True)
class ErrorRecord:
    """A PowerShell error record, as data."""

    message: str
    category: str = ""
    fqid: str = ""
    target: str = ""
    exception: str = ""
    terminating: bool = True
    script_stack: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorRecord:
        return cls(
            message=str(data.get("message") or ""),
            category=str(data.get("category") or ""),
            fqid=str(data.get("fqid") or ""),
            target=str(data.get("target") or ""),
            exception=str(data.get("exception") or ""),
            terminating=bool(data.get("terminating", True)),
            script_stack=str(data.get("script_stack") or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "category": self.category,
            "fqid": self.fqid,
            "target": self.target,
            "exception": self.exception,
            "terminating": self.terminating,
        }


class RemoteScriptError(HvautoError):
    """The script ran on the host and reported failure."""

    exit_code = ExitCode.REMOTE

    def __init__(self, host: str, template: str, records: Sequence[ErrorRecord], *, hint: str | None = None) -> None:
        self.host = host
        self.template = template
        self.records = list(records)
        first = self.records[0] if self.records else ErrorRecord("the script failed with no error record")
        detail = f" [{first.category}, {first.fqid}]" if first.fqid or first.category else ""
        super().__init__(f"{host}: {template}: {first.message}{detail}", hint=hint)

    @property
    def record(self) -> ErrorRecord:
        return self.records[0] if self.records else ErrorRecord("")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "host": self.host, "template": self.template,
                "records": [r.to_dict() for r in self.records]}


@dataclass
class Problem:
    """One preflight finding: what is wrong, why, and what fixes it."""

    check: str
    message: str
    host: str = ""
    fix: str = ""
    blocking: bool = True
    source: str = "hvauto"
    message_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "host": self.host or None,
            "message": self.message,
            "fix": self.fix or None,
            "blocking": self.blocking,
            "source": self.source,
            "message_id": self.message_id,
        }


class VerifyError(HvautoError):
    """The change ran, but reading the host back does not show it (nothing more is tried)."""

    exit_code = ExitCode.REMOTE


class PreflightError(HvautoError):
    exit_code = ExitCode.PREFLIGHT

    def __init__(self, problems: Sequence[Problem], *, what: str = "preflight") -> None:
        self.problems = list(problems)
        blocking = [p for p in self.problems if p.blocking]
        super().__init__(f"{what} failed: {len(blocking)} blocking problem{_s(len(blocking))}; nothing was changed")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "problems": [p.to_dict() for p in self.problems]}


@dataclass
class HostOutcome:
    host: str
    ok: bool
    error: HvautoError | None = None
    value: Any = None


class HostsFailedError(HvautoError):
    """Some hosts failed: every host's outcome is still reported."""

    def __init__(self, outcomes: Mapping[str, HostOutcome]) -> None:
        self.outcomes = dict(outcomes)
        failed = [h for h, o in self.outcomes.items() if not o.ok]
        super().__init__(f"{len(failed)} of {len(self.outcomes)} host{_s(len(self.outcomes))} failed: {', '.join(failed)}")

    @property
    def exit_code(self) -> ExitCode:  # type: ignore[override]
        # A host that failed without an error to say how counts as "some hosts failed".
        return hosts_code([exit_code(o.error) if o.error is not None else ExitCode.PARTIAL
                           for o in self.outcomes.values() if not o.ok], len(self.outcomes))

    def __str__(self) -> str:
        lines = [self.message]
        for host, o in self.outcomes.items():
            if not o.ok and o.error is not None:
                text = o.error.message
                lines.append(f"  {text}" if text.startswith(f"{host}:") else f"  {host}: {text}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "hosts": {
                h: ({"ok": True} if o.ok else {"ok": False, **(o.error.to_dict() if o.error else {})})
                for h, o in self.outcomes.items()
            },
        }


class RunAborted(HvautoError):
    """A runbook run stopped: a step failed on every host (or its only call failed)."""

    exit_code = ExitCode.ABORTED


class LockedError(HvautoError):
    """Another run of the same runbook is in progress: this one did nothing."""

    exit_code = ExitCode.LOCKED


class OutcomeUnknown(HvautoError):
    """A change was sent, its answer was lost, and reading the host back cannot tell whether it ran.

    Nothing is sent again; ``commands`` are the ones that find out (and undo) what happened.
    """

    exit_code = ExitCode.UNKNOWN

    def __init__(self, message: str, *, commands: Sequence[str] = (), hint: str | None = None) -> None:
        self.commands = list(commands)
        shown = "; ".join(f"`{c}`" for c in self.commands)
        super().__init__(message, hint=hint or (f"to find out: {shown}" if shown else None))

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "commands": self.commands}


class Interrupted(HvautoError):
    exit_code = ExitCode.INTERRUPTED


# -- the one place an exit code is chosen -----------------------------------------------------------------

class HostsReport(Protocol):
    """What :func:`exit_code` reads from a report of many hosts (:class:`hvauto.results.Report`)."""

    @property
    def blocking(self) -> list[Problem]: ...

    @property
    def total(self) -> int: ...

    def failures(self) -> Mapping[str, HvautoError]: ...


def hosts_code(failed: Sequence[ExitCode], total: int) -> ExitCode:
    """Some of ``total`` hosts failed with these codes: 9, or every host's own code when all failed alike."""
    if not failed:
        return ExitCode.OK
    if len(failed) == total and len(set(failed)) == 1:
        # Every host failed the same way: say how (auth, unreachable ...), not just "partial".
        return failed[0]
    return ExitCode.PARTIAL


def exit_code(outcome: BaseException | HostsReport | None) -> ExitCode:
    """The process exit code for how a command ended: nothing raised (None), an error, or a report."""
    if outcome is None:
        return ExitCode.OK
    if isinstance(outcome, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(outcome, HvautoError):
        return ExitCode(outcome.exit_code)
    if isinstance(outcome, BaseException):
        return ExitCode.ERROR
    if outcome.blocking:
        return ExitCode.PREFLIGHT
    return hosts_code([exit_code(e) for e in outcome.failures().values()], outcome.total)
