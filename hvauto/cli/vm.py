"""hvauto vm: the VMs on Hyper-V hosts."""

from __future__ import annotations

from typing import Annotated

import typer

from . import complete
from .app import OutputOpt, RenderOpt, get_app
from .common import failures_json, print_steps
from .output import Output, emit, kv, problem, size, table

app = typer.Typer(help="Virtual machines on the Hyper-V hosts.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    hosts: Annotated[list[str] | None, typer.Argument(help="Hosts, groups or role:NAME; every Hyper-V host if none.",
                                                        autocompletion=complete.hosts)]
    = None,
    name: Annotated[list[str] | None, typer.Option("--name", "-n", help="Only VMs with this exact name.")] = None,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """List VMs on every Hyper-V host (concurrently) or on the hosts given."""
    from hvauto.ops import vms

    state = get_app(ctx)
    session = state.session
    from hvauto.ops import hyperv_hosts

    targets = hyperv_hosts(session.inventory, hosts or [])
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


@app.command("show")
def show(
    ctx: typer.Context,
    vm: Annotated[str, typer.Argument(help="The VM (exact name).", autocompletion=complete.vms)],
    source: Annotated[str | None, typer.Option("--from", help="Its host (else every Hyper-V host is asked).",
                                                                   autocompletion=complete.hosts)] = None,
    moves: Annotated[bool, typer.Option("--moves/--no-moves", help="Judge where it can move (reads every "
                                        "Hyper-V host, as doctor does).")] = True,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """One VM in detail: state, memory, adapters, disks and their parents, checkpoints, files, where it can move."""
    from hvauto.ops import vms

    session = get_app(ctx).session
    if render:
        print_steps(session, vms.show_steps(session, vm, source), output)
        return
    d = vms.show(session, vm, source=source, moves=moves)
    if output is Output.json:
        emit("result", d)
        return
    v = d.vm
    mem = v["memory"]
    memory = f"{size(mem['startup_bytes'])} startup, {size(mem['assigned_bytes'])} assigned" + (
        f", dynamic {size(mem['minimum_bytes'])} to {size(mem['maximum_bytes'])}" if mem["dynamic"] else "")
    kv([("VM", f"{v['name']} on {d.host}"), ("Id", v["id"]), ("State", v["state"]),
        ("Uptime", f"{v['uptime_seconds'] // 3600} h {v['uptime_seconds'] % 3600 // 60} min"),
        ("Generation", v["generation"]), ("Config version", v["version"]),
        ("Processors", f"{v['cpu_count']}" + (", compatibility for migration on" if v["processor_compatibility"]
                                               else "")),
        ("Memory", memory), ("Clustered", "yes" if v["clustered"] else "no")])
    typer.echo("\nNetwork adapters")
    table(["name", "switch", "vlan", "mac", "addresses"],
          [(a["name"], a["switch"] or "(not connected)", a["vlan"] if a["vlan"] is not None else "-", a["mac"],
            ", ".join(a["addresses"]) or "-") for a in v["adapters"]])
    typer.echo("\nDisks")
    rows = []
    for disk in v["disks"]:
        rows.append((disk["path"], disk["type"], size(disk["size_bytes"]), size(disk["file_size_bytes"])))
        rows += [(f"  parent: {p['path']}", "", "", size(p["file_size_bytes"])) for p in disk["parents"]]
    table(["path", "type", "size", "used"], rows)
    if v["checkpoints"]:
        typer.echo("\nCheckpoints")
        table(["name", "created", "parent"], [(c["name"], c["created"][:19], c["parent"] or "-")
                                              for c in v["checkpoints"]])
    typer.echo("\nFiles")
    table(["what", "where", "path"], [(f["what"], f["where"], f["path"]) for f in d.files])
    off = [s["name"] for s in v["integration_services"] if not s["enabled"]]
    typer.echo(f"\nIntegration services: {len(v['integration_services']) - len(off)} on"
               + (f" (off: {', '.join(off)})" if off else ""))
    if d.moves:
        typer.echo("\nCan move to")
        for m in d.moves:
            typer.echo(f"  {m.dest}: {m.verdict}")
            for p in m.problems:
                if p.blocking:
                    problem(p)
