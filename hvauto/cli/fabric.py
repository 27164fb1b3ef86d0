"""hvauto fabric: the host network design (switch, teaming, host vNICs, QoS, migration networks) from a spec."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hvauto import versions
from hvauto.results import count

from . import complete
from .app import OutputOpt, RenderOpt, WhatIfOpt, get_app
from .common import finish, print_steps
from .output import Output, emit, note, say

if TYPE_CHECKING:
    from hvauto.ops.fabric import FabricReport

app = typer.Typer(help="Host network fabric: virtual switch, teaming, host vNICs with QoS weights, declared in a spec.",
                  no_args_is_help=True)

HostArg = Annotated[str, typer.Argument(help="Host or group.", autocompletion=complete.hosts)]
SpecOpt = Annotated[Path, typer.Option("--spec", "-s", help="Fabric spec (YAML); see playbooks/fabric-converged.yaml.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Allow re-creating a switch that has VMs attached.")]


def _print(report: FabricReport, output: Output) -> None:
    if output is Output.json:
        emit("result", report)
        return
    for w in report.warnings:
        note(f"warning: {w}")
    for h, p in report.hosts.items():
        if p.error is not None:
            typer.echo(f"{h}: failed: {p.error.message}")
            continue
        head = f"{h} ({versions.label(p.version)}, teaming {p.teaming.upper()})"
        if not p.changed:
            typer.echo(f"{head}: no changes (already so)")
        else:
            n = len(p.changes)
            typer.echo(f"{head}: {n} change{'s' if n != 1 else ''} {'made' if report.applied else 'planned'}:")
            for c in p.changes:
                mark = "!" if c.disruptive else "+"
                say(f"{c.action} {c.target}" + (f": {c.detail}" if c.detail else ""), f"  {mark} ", "      ")
        for prob in p.problems:
            say(f"[{'BLOCKING' if prob.blocking else 'warning'}] {prob.message}", "  ", "      ")
            if prob.fix:
                say(f"fix: {prob.fix}", "      ", "        ")
    for prob in report.problems:
        if prob.check == "switch-names":
            say(f"[warning] {prob.message}", "", "    ")
            say(f"fix: {prob.fix}", "    ", "      ")


@app.command("plan")
def plan_(ctx: typer.Context, host: HostArg, spec: SpecOpt, force: ForceOpt = False,
          output: OutputOpt = Output.table, render: RenderOpt = False) -> None:
    """Validate the spec, read each host once, and show what would change per host."""
    from hvauto.ops import fabric

    if render:
        session = get_app(ctx).session
        print_steps(session, fabric.plan_steps(session, host=host, spec=spec), output)
        return
    report = fabric.plan(get_app(ctx).session, host=host, spec=spec, force=force, raise_failures=False)
    _print(report, output)
    report.raise_if_failed()
    finish(report)  # blocking problems: exit 10, as `fabric apply --what-if` on the same spec


@app.command("apply")
def apply_(ctx: typer.Context, host: HostArg, spec: SpecOpt, force: ForceOpt = False, what_if: WhatIfOpt = False,
           output: OutputOpt = Output.table, render: RenderOpt = False) -> None:
    """Apply the spec: team, switch, vNICs, weights, VLANs, addresses, migration networks; then verify."""
    from hvauto.ops import fabric

    if render:
        session = get_app(ctx).session
        print_steps(session, fabric.apply_steps(session, host=host, spec=spec, force=force), output)
        return
    report = fabric.apply(get_app(ctx).session, host=host, spec=spec, force=force, what_if=what_if,
                          raise_failures=False)
    _print(report, output)
    report.raise_if_failed()


@app.command("validate")
def validate(ctx: typer.Context, spec: SpecOpt,
             host: Annotated[list[str] | None, typer.Argument(help="Hosts or groups the spec targets.",
                 autocompletion=complete.hosts)] = None) -> None:
    """Check a spec's design without contacting any host."""
    from hvauto.ops import fabric

    targets = get_app(ctx).inventory.resolve(host or []) if host else []
    loaded = fabric.load_spec(spec, hosts=targets)
    for w in loaded.warnings:
        note(f"warning: {w}")
    typer.echo(f"{loaded.path}: valid ({count(len(loaded.vnics), 'host vNIC')}, switch {loaded.switch})")
