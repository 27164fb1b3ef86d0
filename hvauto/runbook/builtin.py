"""Operations that belong to runbooks themselves, not to a Hyper-V job."""

from __future__ import annotations

from typing import Any

from hvauto.session import Session


def report(session: Session, *, message: str, host: str | None = None) -> dict[str, Any]:
    """Put a line in the run's summary and journal (``message`` is rendered per host): no remote call."""
    return {"changed": False, "message": message}
