"""hvauto smb share: SMB 3.0 shares that hold VMs, with Full Control for the Hyper-V hosts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import OutputOpt, RenderOpt, WhatIfOpt, get_app
from .common import print_steps
from .output import Output, emit, kv, note, table

if TYPE_CHECKING:
    from hvauto.ops.smb import ShareResult

app = typer.Typer(help="SMB 3.0 file shares for VM storage.", no_args_is_help=True)
share = typer.Typer(
    help="Shares that hold VMs: Full Control on share and folder for each Hyper-V host's computer account "
         "(DOMAIN\\HOST$), compared by SID, plus delegation to cifs/SERVER.",
    no_args_is_help=True,
)
app.add_typer(share, name="share")

NameArg = Annotated[str, typer.Argument(help="The share's name.")]
ServerOpt = Annotated[str, typer.Option("--server", help="The file server (an inventory host).")]
HostsOpt = Annotated[list[str], typer.Option("--hosts", help="Hyper-V hosts (or inventory groups), comma-separated.")]
NoDelegationOpt = Annotated[bool, typer.Option("--no-delegation", help="Do not add cifs/SERVER delegation for the hosts.")]


def _print_result(result: ShareResult, output: Output, *, prune: bool = False) -> None:
    if output is Output.json:
        emit("result", result)
        return
    for change in result.changes:
        typer.echo(f"  {'would' if result.what_if else 'done'}: {change}")
    typer.echo(result.message)
    why = "a deny entry; Unblock-SmbShareAccess removes it" if prune else "--prune removes it"
    for extra in result.extras:
        note(f"extra (kept; {why}): {extra}")
    for d in result.delegation:
        typer.echo(f"delegation: {d.message}")


@share.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    server: ServerOpt,
    path: Annotated[str, typer.Option("--path", help="The folder's absolute local path on the server (D:\\Shares\\VMs).")],
    hosts: HostsOpt,
    group: Annotated[str | None, typer.Option("--group", help="An AD group of the hosts, granted Full too.")] = None,
    admins: Annotated[list[str] | None, typer.Option("--admins", help="Admin accounts or groups, comma-separated.")]
    = None,
    continuously_available: Annotated[bool, typer.Option("--continuously-available",
                                                         help="Continuously available (clustered/scale-out).")] = False,
    encrypt: Annotated[bool, typer.Option("--encrypt", help="Require SMB encryption.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Remove principals that are not asked for.")] = False,
    no_delegation: NoDelegationOpt = False,
    allow_broad: Annotated[bool, typer.Option("--allow-broad", help="Allow a broad principal among --admins "
                                              "(Authenticated Users, BUILTIN\\Users, Domain Users ...).")] = False,
    what_if: WhatIfOpt = False,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Create the share (and folder) or bring an existing one in line; a re-run changes nothing."""
    from hvauto.ops.smb import share as smb_share

    session = get_app(ctx).session
    if render:
        print_steps(session, smb_share.create_steps(
            session, name=name, server=server, path=path, hosts=hosts, group=group, admins=admins or [],
            continuously_available=continuously_available, encrypt=encrypt, prune=prune,
            no_delegation=no_delegation), output)
        return
    from hvauto.ops import smb

    result = smb.create(session, name=name, server=server, path=path, hosts=hosts, group=group, admins=admins or [],
                        continuously_available=continuously_available, encrypt=encrypt, prune=prune,
                        no_delegation=no_delegation, what_if=what_if, allow_broad=allow_broad)
    _print_result(result, output, prune=prune)


@share.command("show")
def show(ctx: typer.Context, name: NameArg, server: ServerOpt, output: OutputOpt = Output.table,
         render: RenderOpt = False) -> None:
    """Settings, share ACL and folder ACL (account and SID), which Hyper-V hosts can use it, and problems."""
    from hvauto.ops import smb

    session = get_app(ctx).session
    if render:
        from hvauto.ops.smb import share as smb_share

        print_steps(session, smb_share.show_steps(session, name=name, server=server), output)
        return
    from hvauto.ops.smb import acl as smb_acl

    view = smb.show(session, name=name, server=server)
    if output is Output.json:
        emit("result", view)
        return
    s = view.settings
    kv([("Share", f"\\\\{view.server}\\{view.name}"), ("Path", view.path),
        ("Continuously available", "yes" if s.get("continuously_available") else "no"),
        ("Encrypted", "yes" if s.get("encrypt_data") else "no"),
        ("Open files", len(view.open_files))])
    typer.echo("\nShare ACL")
    table(["account", "sid", "type", "right"], [(a.account, a.sid, a.type, a.right) for a in view.share_acl])
    typer.echo("\nFolder ACL")
    table(["account", "sid", "type", "rights", "inherited", "applies to"],
          [(a.account, a.sid, a.type, smb_acl.rights_text(a.rights), "yes" if a.inherited else "no",
            f"{a.inheritance}; {a.propagation}") for a in view.folder_acl])
    typer.echo("\nHyper-V hosts")

    def yn(v: bool | None) -> str:
        return "?" if v is None else ("yes" if v else "no")

    table(["host", "account", "share", "folder", "cifs delegation", "can use"],
          [(h.host, h.account, yn(h.share_full), yn(h.folder_full), yn(h.delegation), yn(h.can_use))
           for h in view.hosts])
    if view.problems:
        typer.echo("\nProblems")
        for p in view.problems:
            typer.echo(f"  - {p}")


@share.command("grant")
def grant(ctx: typer.Context, name: NameArg, server: ServerOpt, hosts: HostsOpt,
          no_delegation: NoDelegationOpt = False, what_if: WhatIfOpt = False,
          output: OutputOpt = Output.table, render: RenderOpt = False) -> None:
    """Give more hosts Full on the share and its folder (and cifs delegation)."""
    from hvauto.ops import smb

    if render:
        session = get_app(ctx).session
        print_steps(session, smb.share.grant_steps(session, name=name, server=server, hosts=hosts,
                                                   no_delegation=no_delegation), output)
        return
    result = smb.grant(get_app(ctx).session, name=name, server=server, hosts=hosts, no_delegation=no_delegation,
                       what_if=what_if)
    _print_result(result, output)


@share.command("revoke")
def revoke(ctx: typer.Context, name: NameArg, server: ServerOpt, hosts: HostsOpt, what_if: WhatIfOpt = False,
           output: OutputOpt = Output.table, render: RenderOpt = False) -> None:
    """Take hosts off the share and its folder (their cifs delegation stays: other shares may need it)."""
    from hvauto.ops import smb

    if render:
        session = get_app(ctx).session
        print_steps(session, smb.share.revoke_steps(session, name=name, server=server, hosts=hosts), output)
        return
    result = smb.revoke(get_app(ctx).session, name=name, server=server, hosts=hosts, what_if=what_if)
    _print_result(result, output)


@share.command("remove")
def remove(
    ctx: typer.Context,
    name: NameArg,
    server: ServerOpt,
    force: Annotated[bool, typer.Option("--force", help="Remove even while VM files are on it.")] = False,
    what_if: WhatIfOpt = False,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Remove the share; the folder and its data stay. Refuses while VM files are on it."""
    from hvauto.ops import smb

    if render:
        session = get_app(ctx).session
        print_steps(session, smb.share.remove_steps(session, name=name, server=server), output)
        return
    result = smb.remove(get_app(ctx).session, name=name, server=server, force=force, what_if=what_if)
    if output is Output.json:
        emit("result", result)
        return
    for line in result.in_use:
        note(f"in use (--force): {line}")
    typer.echo(result.message)
