"""hvauto host: the hosts in the inventory, and what they say about themselves."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from hvauto import versions

from . import complete
from .app import OutputOpt, RenderOpt, WhatIfOpt, get_app
from .common import print_steps
from .output import Output, emit, kv, note, size, table

app = typer.Typer(help="Hosts in the inventory.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """List the inventory's hosts (no remote call)."""
    inv = get_app(ctx).inventory
    rows = [
        {
            "name": h.name,
            "address": h.address,
            "transport": h.transport,
            "roles": list(h.roles),
            "os": h.os,
            "groups": [g for g, members in inv.groups.items() if h.name in members],
        }
        for h in inv.hosts.values()
    ]
    if output is Output.json:
        emit("result", {"hosts": rows})
        return
    table(
        ["name", "address", "transport", "roles", "os", "groups"],
        [(r["name"], r["address"], r["transport"], ",".join(r["roles"]),  # type: ignore[arg-type]
          versions.label(str(r["os"])) if r["os"] else "(ask host)", ",".join(r["groups"]))  # type: ignore[arg-type]
         for r in rows],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Host name.", autocompletion=complete.hosts)],
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Show a host's OS and PowerShell version, Hyper-V migration settings, memory and VM count."""
    from hvauto.ops import hosts

    session = get_app(ctx).session
    if render:
        from hvauto.steps import Step

        print_steps(session, [Step(session.host(host).name, "host_facts", {}, "read the host's facts")], output)
        return
    facts = hosts.facts(session, host)
    if output is Output.json:
        emit("result", facts)
        return
    pairs: list[tuple[str, object]] = [
        ("Host", facts.name),
        ("FQDN", facts.fqdn),
        ("OS", f"{versions.label(facts.os_version) if facts.os_version else facts.os_caption} ({facts.kernel})"),
        ("PowerShell", facts.ps_version),
        ("Logical CPUs", facts.logical_processors),
        ("Memory", f"{size(facts.memory_free)} free of {size(facts.memory_total)}"),
    ]
    if facts.migration is None:
        pairs.append(("Hyper-V", "not installed"))
    else:
        m = facts.migration
        pairs += [
            ("VMs", facts.vm_count),
            ("Config versions", ", ".join(facts.supported_versions)),
            ("Live migration", "enabled" if m.enabled else "disabled"),
            ("Migration auth", m.auth_type),
            ("Migration networks", "any network" if m.use_any_network else ", ".join(m.networks) or "(none)"),
            ("Max migrations", f"{m.max_vm_migrations} VM, {m.max_storage_migrations} storage"),
            ("Performance option", m.performance_option or "n/a (2012 R2+)"),
        ]
    kv(pairs)


class MigrationAuth(str, Enum):
    kerberos = "kerberos"
    credssp = "credssp"


class MigrationPerformance(str, Enum):
    tcpip = "tcpip"
    compression = "compression"
    smb = "smb"


@app.command("migration")
def migration(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Host or group.", autocompletion=complete.hosts)],
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="Enable or disable live migration.")]
    = None,
    auth: Annotated[MigrationAuth | None, typer.Option(help="Authentication for live migration.")] = None,
    networks: Annotated[str | None, typer.Option(help="Migration networks, CIDR,... (only these are used).")] = None,
    use_any_network: Annotated[bool, typer.Option("--use-any-network", help="Let live migration use any network.")]
    = False,
    performance: Annotated[MigrationPerformance | None, typer.Option(help="Transport (2012 R2+).")] = None,
    max_vm: Annotated[int | None, typer.Option(help="Simultaneous live migrations.")] = None,
    max_storage: Annotated[int | None, typer.Option(help="Simultaneous storage migrations.")] = None,
    what_if: WhatIfOpt = False,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Set live-migration settings (only those given); a re-run changes nothing."""
    from hvauto.ops import hostsettings

    nets = [n.strip() for n in networks.split(",") if n.strip()] if networks is not None else None
    if render:
        session = get_app(ctx).session
        print_steps(session, hostsettings.migration_steps(
            session, host=host, enable=enable, auth=auth.value if auth else None, networks=nets,
            use_any_network=use_any_network, performance=performance.value if performance else None, max_vm=max_vm,
            max_storage=max_storage), output)
        return
    report = hostsettings.migration(
        get_app(ctx).session, host=host, enable=enable, auth=auth.value if auth else None, networks=nets,
        use_any_network=use_any_network, performance=performance.value if performance else None, max_vm=max_vm,
        max_storage=max_storage, what_if=what_if, raise_failures=False)
    if output is Output.json:
        emit("result", report)
    else:
        for h, m in report.hosts.items():
            if m.error is not None:
                typer.echo(f"{h}: failed: {m.error.message}")
                continue
            for w in m.warnings:
                note(f"warning: {w}")
            if not m.changes:
                typer.echo(f"{h}: live-migration settings already so; nothing to do")
                continue
            typer.echo(f"{h}: {'would change' if what_if else 'changed'}:")
            for c in m.changes:
                typer.echo(f"  + {c}")
    report.raise_if_failed()
