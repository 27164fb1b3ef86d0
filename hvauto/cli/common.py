"""Helpers the noun modules share: rendering to text, reporting many hosts."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from hvauto import versions
from hvauto.errors import HostsReport, exit_code

from .output import note

if TYPE_CHECKING:
    from hvauto.session import GroupResult, Session


def render_for(session: Session, host: str, template: str, params: Mapping[str, Any] | None = None) -> None:
    """Print the exact self-contained PowerShell for ``host``, contacting no host."""
    cfg = session.host(host)
    version = session.known_version(cfg.name)
    if version is None:
        version = versions.OLDEST
        note(f"{cfg.name}: no OS version in the inventory; rendered for {versions.label(version)}, the oldest supported")
    script = session.renderer.render(template, version, params)
    sys.stdout.write(f"# ---- {template} for {cfg.name} ({versions.label(version)}) ----\n")
    sys.stdout.write(script.as_text())
    if not script.as_text().endswith("\n"):
        sys.stdout.write("\n")


def failures_json(group: GroupResult) -> dict[str, Any]:
    return {h: e.to_dict() for h, e in group.failed().items()}


def finish(report: HostsReport) -> None:
    """End a command whose result is already printed with the exit code its report calls for."""
    code = exit_code(report)
    if code:
        raise typer.Exit(int(code))
