"""Helpers the noun modules share: rendering to text, reporting many hosts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from hvauto import versions
from hvauto.errors import HostsReport, exit_code
from hvauto.results import count

from .output import note

if TYPE_CHECKING:
    from hvauto.session import GroupResult, Session
    from hvauto.steps import Step

    from .output import Output


def print_steps(session: Session, steps: list[Step], output: Output) -> None:
    """``--render``: every step the command would run, in order, each as the exact PowerShell; no host contacted.

    Text: a header per step (number, template, host, version, purpose, when it runs, how it repeats)
    then the self-contained script. ``-o json``: one ``{"event": "step", ...}`` line per step.
    """
    import textwrap

    from hvauto.steps import render_steps

    from .output import Output, emit

    session.offline = True
    rendered = render_steps(session, steps)
    for assumed in sorted({r.step.host for r in rendered if r.assumed_version}):
        note(f"{assumed}: no OS version in the inventory; rendered for {versions.label(versions.OLDEST)}, "
             "the oldest supported")
    if output is Output.json:
        for r in rendered:
            emit("step", r.to_dict())
        return
    def comment(text: str) -> None:
        sys.stdout.write("\n".join(textwrap.wrap(text, 78, initial_indent="# ", subsequent_indent="#   ",
                                                break_long_words=False, break_on_hyphens=False)) + "\n")

    holders = sorted({p for r in rendered for p in r.step.placeholders})
    comment(f"hvauto --render: {count(len(rendered), 'step')}, in order; nothing is sent to any host.")
    if holders:
        comment(f"Values in <...> are known only once an earlier step has answered: {', '.join(holders)}.")
    for r in rendered:
        kind = "read" if r.read_only else "change"
        sys.stdout.write("\n")
        short = versions.label(r.script.version).replace("Windows Server ", "")
        comment(f"==== step {r.number}/{len(rendered)}: {r.step.template} on {r.step.host} ({short}, {kind})")
        if r.step.purpose:
            comment(r.step.purpose)
        if r.step.when:
            comment(f"runs only {r.step.when}")
        if r.step.repeat:
            comment(f"repeats {r.step.repeat}")
        if r.step.placeholders:
            comment(f"placeholders: {', '.join(r.step.placeholders)}")
        text = r.script.as_text()
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def failures_json(group: GroupResult) -> dict[str, Any]:
    return {h: e.to_dict() for h, e in group.failed().items()}


def finish(report: HostsReport) -> None:
    """End a command whose result is already printed with the exit code its report calls for."""
    code = exit_code(report)
    if code:
        raise typer.Exit(int(code))
