"""hvauto delegation: Kerberos constrained delegation for live migration and VM storage on SMB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import OutputOpt, RenderOpt, WhatIfOpt, get_app
from .common import print_steps
from .output import Output, emit, kv, note, table

if TYPE_CHECKING:
    from hvauto.ops.delegation import DelegationResult

app = typer.Typer(
    help="Kerberos constrained delegation (msDS-AllowedToDelegateTo) on the hosts' computer accounts, written on "
         "the inventory's AD host. Live migration started remotely needs it on the SOURCE for "
         "'Microsoft Virtual System Migration Service/DEST' and 'cifs/DEST' (short name and FQDN), with "
         "'use any authentication protocol' from 2016 on. CredSSP is no workaround: it fails on Windows Server "
         "2025 (Credential Guard), and hvauto refuses to configure it there.",
    no_args_is_help=True,
)

ToOpt = Annotated[list[str] | None, typer.Option("--to", help="Destination hosts, comma-separated.")]
ServicesOpt = Annotated[list[str] | None, typer.Option("--services", help="migration, cifs (default: both).")]


def _print(result: DelegationResult, output: Output) -> None:
    if output is Output.json:
        emit("result", result)
        return
    for c in result.sources:
        typer.echo(c.message)
        verb = "would add" if result.what_if else "added"
        for spn in c.add if (result.what_if or c.changed) else []:
            typer.echo(f"  {verb} {spn}")
        verb = "would remove" if result.what_if else "removed"
        for spn in c.remove if (result.what_if or c.changed) else []:
            typer.echo(f"  {verb} {spn}")
        if c.protocol_transition:
            typer.echo(f"  {'would set' if result.what_if else 'set'} 'use any authentication protocol'")
    for w in result.warnings:
        note(f"warning: {w}")
    typer.echo(result.message)


@app.command("grant")
def grant(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Argument(help="The source host (whose account delegates).")] = None,
    to: ToOpt = None,
    services: ServicesOpt = None,
    mesh: Annotated[str | None, typer.Option("--mesh", help="Every ordered pair of this inventory group.")] = None,
    what_if: WhatIfOpt = False,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Let SRC delegate to each DEST; adds only what is missing and never replaces the existing list."""
    from hvauto.ops import delegation

    session = get_app(ctx).session
    if render:
        print_steps(session, delegation.grant_steps(session, source=source, to=to or [], services=services,
                                                    mesh=mesh), output)
        return
    result = delegation.grant(session, source=source, to=to or [], services=services, mesh=mesh, what_if=what_if)
    _print(result, output)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source host.")],
    to: ToOpt = None,
    services: ServicesOpt = None,
    what_if: WhatIfOpt = False,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Remove SRC's delegation to each DEST (short and FQDN); other entries stay."""
    from hvauto.ops import delegation

    if render:
        session = get_app(ctx).session
        print_steps(session, delegation.revoke_steps(session, source=source, to=to or [], services=services), output)
        return
    result = delegation.revoke(get_app(ctx).session, source=source, to=to or [], services=services, what_if=what_if)
    _print(result, output)


@app.command("show")
def show(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The host whose computer account to read.")],
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """The SPNs a host may delegate to, its protocol-transition flag, and what that allows."""
    from hvauto.ops import delegation

    if render:
        session = get_app(ctx).session
        print_steps(session, delegation.show_steps(session, host=host), output)
        return
    view = delegation.show(get_app(ctx).session, host=host)
    if output is Output.json:
        emit("result", view)
        return
    kv([("Host", view.host), ("Account", view.sam), ("SID", view.sid),
        ("Any authentication protocol", "yes" if view.trusted_to_auth_for_delegation else "no (Kerberos only)")])
    typer.echo("\nMay delegate to")
    for spn in view.allowed_to_delegate_to:
        typer.echo(f"  {spn}")
    if not view.allowed_to_delegate_to:
        typer.echo("  (nothing)")
    if view.targets:
        typer.echo("")
        table(["destination", "migration", "cifs"],
              [(t.host, "yes" if t.migration else "no", "yes" if t.cifs else "no") for t in view.targets])
    for p in view.problems:
        note(f"warning: {p}")
