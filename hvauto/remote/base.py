"""The transport seam: one narrow protocol every back-end implements.

A :class:`Script` is a rendered template (its PowerShell text, with a ``param()``
block) plus the values for that block. Back-ends never put a value into code:
PSRP binds them as parameters, the text form carries them in a base64 JSON
envelope that a fixed prologue decodes (:meth:`Script.as_text`).

Every template prints one JSON document, ``{"ok": bool, "result": ..., "error": ...}``;
:func:`parse_output` turns that plus the PowerShell streams into a :class:`Result`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hvauto.errors import ErrorRecord, ProtocolError, RemoteScriptError
from hvauto.script import Script


@dataclass(frozen=True)
class Progress:
    """A progress record (Write-Progress, or a migration job's PercentComplete)."""

    activity: str = ""
    status: str = ""
    percent: int = -1
    seconds_remaining: int = -1
    operation: str = ""


ProgressCallback = Callable[[Progress], None]


@dataclass
class Result:
    """What one script run on one host produced."""

    host: str
    template: str
    ok: bool
    data: Any = None
    errors: list[ErrorRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    progress: list[Progress] = field(default_factory=list)
    elapsed: float = 0.0

    def raise_for_error(self) -> Result:
        if not self.ok:
            raise RemoteScriptError(self.host, self.template, self.errors)
        return self


@runtime_checkable
class Transport(Protocol):
    """One host's remoting back-end. Not thread-safe: the session runs one step at a time per host."""

    host: str

    def run(
        self,
        script: Script,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        """Run the script; raise a TransportError when it could not be run or its answer was lost."""
        ...

    def close(self) -> None: ...


def parse_output(
    host: str,
    template: str,
    outputs: Sequence[Any],
    *,
    stream_errors: Sequence[ErrorRecord] = (),
    warnings: Sequence[str] = (),
    progress: Sequence[Progress] = (),
    pipeline_failed: bool = False,
    started: float | None = None,
) -> Result:
    """Interpret the streams of one run.

    Failure is the pipeline's Failed state, *or* any error record (pypsrp's ``had_errors``
    alone misses ``Write-Error`` in a script that carries on), *or* the template's own
    ``ok: false``. The template's JSON is the last output that parses as one.
    """
    doc: Mapping[str, Any] | None = None
    for item in reversed(list(outputs)):
        if not isinstance(item, str):
            continue
        text = item.strip()
        if not text.startswith("{"):
            continue
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        if isinstance(parsed, dict) and "ok" in parsed:
            doc = parsed
            break
    errors = list(stream_errors)
    if doc is not None and isinstance(doc.get("error"), Mapping):
        errors.insert(0, ErrorRecord.from_dict(doc["error"]))
    if doc is None and not errors:
        if pipeline_failed:
            errors.append(ErrorRecord("the script failed without an error record", category="NotSpecified"))
        else:
            shown = " ".join(str(o) for o in outputs)[:200]
            raise ProtocolError(f"{template}: the script returned no hvauto JSON document (got {shown!r})", host=host,
                                sent=True)
    ok = bool(doc and doc.get("ok")) and not errors and not pipeline_failed
    return Result(
        host=host,
        template=template,
        ok=ok,
        data=doc.get("result") if doc else None,
        errors=errors,
        warnings=list(warnings),
        progress=list(progress),
        elapsed=(time.monotonic() - started) if started is not None else 0.0,
    )
