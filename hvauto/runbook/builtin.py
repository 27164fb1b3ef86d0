"""Operations that belong to runbooks themselves, not to a Hyper-V job."""

from __future__ import annotations

from typing import Any

from hvauto.errors import PreflightError, Problem
from hvauto.session import Session


def report(session: Session, *, message: str, host: str | None = None) -> dict[str, Any]:
    """Put a line in the run's summary and journal (``message`` is rendered per host): no remote call."""
    return {"changed": False, "message": message}


def check(session: Session, *, that: bool, message: str = "", host: str | None = None) -> dict[str, Any]:
    """Stop this host here unless ``that`` holds (a rendered condition); no remote call."""
    if not that:
        text = f"not so: {message}" if message else "the runbook's assertion does not hold"
        raise PreflightError([Problem(check="assert", message=text, host=host or "")], what="assert")
    return {"changed": False, "message": message and f"ok: {message}"}
