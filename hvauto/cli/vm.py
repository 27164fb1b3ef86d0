"""hvauto vm: the VMs on Hyper-V hosts."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import OutputOpt, RenderOpt, get_app
from .common import failures_json, print_steps
from .output import Output, emit, size, table

app = typer.Typer(help="Virtual machines on the Hyper-V hosts.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    hosts: Annotated[list[str] | None, typer.Argument(help="Hosts, groups or role:NAME; every Hyper-V host if none.")]
    = None,
    name: Annotated[list[str] | None, typer.Option("--name", "-n", help="Only VMs with this exact name.")] = None,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """List VMs on every Hyper-V host (concurrently) or on the hosts given."""
    from hvauto.ops import vms

    state = get_app(ctx)
    session = state.session
    targets = session.inventory.resolve(hosts or [], default_role="hyperv")
    if render:
        print_steps(session, vms.list_steps(session, targets, list(name or [])), output)
        return
    group = vms.list_many(session, targets, list(name or []))
    found = [vm for per_host in group.values().values() for vm in per_host]
    if output is Output.json:
        doc: dict[str, object] = {"vms": found}
        if not group.ok:
            doc["errors"] = failures_json(group)
        emit("result", doc)
    else:
        table(
            ["host", "name", "state", "cpu", "memory", "disks", "version", "switches"],
            [
                (vm.host, vm.name, vm.state, vm.cpu_count, size(vm.memory_startup), size(vm.disk_bytes), vm.version,
                 ",".join(vm.switches))
                for vm in found
            ],
        )
    group.raise_if_failed()
