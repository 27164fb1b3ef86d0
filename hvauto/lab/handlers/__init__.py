"""Lab handlers: one function per template, answering as the real script would.

A handler gets a :class:`LabCall` (the host's record, the bound parameters, the estate
inside a transaction) and returns the template's ``result``; it raises
:class:`CmdletError` where the real script would fail, with the error record a real
host would produce (message, category, FullyQualifiedErrorId, target).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hvauto.lab.store import Estate, LabStore
from hvauto.remote.base import Progress


class CmdletError(Exception):
    """A terminating error as a Windows host would raise it."""

    def __init__(self, message: str, *, category: str = "NotSpecified", fqid: str = "", target: str = "",
                 exception: str = "Microsoft.HyperV.PowerShell.VirtualizationException") -> None:
        super().__init__(message)
        self.record = {
            "message": message,
            "category": category,
            "fqid": fqid,
            "target": target,
            "exception": exception,
            "terminating": True,
        }


@dataclass
class LabCall:
    host: dict[str, Any]
    params: dict[str, Any]
    estate: Estate
    store: LabStore
    version: str
    now: float
    progress: list[Progress] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: Hears each progress record as it is reported (the wire endpoint streams them while the handler runs).
    listener: Callable[[Progress], None] | None = None

    @property
    def name(self) -> str:
        return str(self.host["name"])

    def report(self, progress: Progress) -> None:
        """Write-Progress: recorded for the result, and heard at once by a listening transport."""
        self.progress.append(progress)
        if self.listener is not None:
            self.listener(progress)

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def write_error(self, message: str, *, category: str = "NotSpecified", fqid: str = "", target: str = "") -> None:
        """A non-terminating error (Write-Error): the script goes on, the run still fails."""
        self.errors.append({"message": message, "category": category, "fqid": fqid, "target": target,
                            "terminating": False})


Handler = Callable[[LabCall], Any]
HANDLERS: dict[str, Handler] = {}
#: Run at the start of every call, in its transaction (the lab's clock: long jobs settle lazily).
BEFORE_CALL: list[Callable[[LabCall], None]] = []
_loaded = False


def before_every_call(fn: Callable[[LabCall], None]) -> Callable[[LabCall], None]:
    BEFORE_CALL.append(fn)
    return fn


def handles(template: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[template] = fn
        return fn

    return register


def handler_for(template: str) -> Handler | None:
    """The handler for a template; every module in this package registers its own on import."""
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return HANDLERS.get(template)
