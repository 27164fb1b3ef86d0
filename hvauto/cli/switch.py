"""hvauto switch: virtual switches, the simple cases (list, create, remove)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from . import complete
from .app import OutputOpt, RenderOpt, WhatIfOpt, get_app
from .common import failures_json, print_steps
from .output import Output, emit, table

app = typer.Typer(help="Virtual switches: list, create (external, internal, private), remove.", no_args_is_help=True)


class SwitchType(str, Enum):
    external = "external"
    internal = "internal"
    private = "private"


class BandwidthMode(str, Enum):
    absolute = "absolute"
    weight = "weight"
    none = "none"
    default = "default"


HostArg = Annotated[str, typer.Argument(help="Host.", autocompletion=complete.hosts)]
NameArg = Annotated[str, typer.Argument(help="Switch name (exact).")]


@app.command("list")
def list_(
    ctx: typer.Context,
    hosts: Annotated[list[str] | None, typer.Argument(help="Hosts or groups; every Hyper-V host if none.",
        autocompletion=complete.hosts)] = None,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """List the virtual switches with their uplinks, teaming, bandwidth mode and attached VMs."""
    from hvauto.ops import switches

    session = get_app(ctx).session
    from hvauto.ops import hyperv_hosts

    targets = hyperv_hosts(session.inventory, hosts or [])
    if render:
        print_steps(session, switches.list_steps(session, targets), output)
        return
    group = switches.list_many(session, targets)
    found = [s for per_host in group.values().values() for s in per_host]
    if output is Output.json:
        doc: dict[str, object] = {"switches": found}
        if not group.ok:
            doc["errors"] = failures_json(group)
        emit("result", doc)
    else:
        table(["host", "name", "type", "adapters", "set", "bandwidth", "mgmt os", "vms"],
              [(s.host, s.name, s.type, ",".join(s.adapters), "yes" if s.embedded_teaming else "",
                s.bandwidth_mode, "yes" if s.allow_management_os else "", ",".join(s.vms)) for s in found])
    group.raise_if_failed()


@app.command()
def create(
    ctx: typer.Context,
    host: HostArg,
    name: NameArg,
    type: Annotated[SwitchType, typer.Option("--type", "-t", help="Switch type.")] = SwitchType.external,
    adapter: Annotated[list[str] | None, typer.Option("--adapter", "-a",
                                                      help="Physical adapter (external); repeat for SET (2016+).")]
    = None,
    management_os: Annotated[bool, typer.Option("--management-os/--no-management-os",
                                                 help="Share the uplink with the host (external).")] = True,
    bandwidth_mode: Annotated[BandwidthMode, typer.Option(help="Minimum-bandwidth mode; fixed once created.")]
    = BandwidthMode.absolute,
    what_if: WhatIfOpt = False,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Create a virtual switch; if one of that name and type exists, say so and change nothing."""
    from hvauto.ops import switches

    if render:
        session = get_app(ctx).session
        print_steps(session, switches.create_steps(session, host=host, name=name, type=type.value,
                                                   adapter=list(adapter or []), management_os=management_os,
                                                   bandwidth_mode=bandwidth_mode.value), output)
        return
    res = switches.create(get_app(ctx).session, host=host, name=name, type=type.value, adapter=list(adapter or []),
                          management_os=management_os, bandwidth_mode=bandwidth_mode.value, what_if=what_if)
    emit("result", res) if output is Output.json else typer.echo(f"{res.host}: {res.message}")


@app.command()
def remove(
    ctx: typer.Context,
    host: HostArg,
    name: NameArg,
    force: Annotated[bool, typer.Option("--force", help="Remove even with VMs attached (they lose network).")]
    = False,
    what_if: WhatIfOpt = False,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Remove a virtual switch; refused while VMs are attached (unless --force) or if it is the management path."""
    from hvauto.ops import switches

    if render:
        session = get_app(ctx).session
        print_steps(session, switches.remove_steps(session, host=host, name=name), output)
        return
    res = switches.remove(get_app(ctx).session, host=host, name=name, force=force, what_if=what_if)
    emit("result", res) if output is Output.json else typer.echo(f"{res.host}: {res.message}")
