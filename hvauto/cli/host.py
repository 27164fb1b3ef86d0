"""hvauto host: the hosts in the inventory, and what they say about themselves."""

from __future__ import annotations

from typing import Annotated

import typer

from hvauto import versions

from .app import OutputOpt, RenderOpt, get_app
from .common import render_for
from .output import Output, kv, print_json, size, table

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
        print_json({"hosts": rows})
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
    host: Annotated[str, typer.Argument(help="Host name.")],
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Show a host's OS and PowerShell version, Hyper-V migration settings, memory and VM count."""
    from hvauto.ops import hosts

    session = get_app(ctx).session
    if render:
        render_for(session, host, "host_facts")
        return
    facts = hosts.facts(session, host)
    if output is Output.json:
        print_json(facts)
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
