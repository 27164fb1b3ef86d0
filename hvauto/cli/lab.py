"""hvauto lab: the simulated estate (create, reset, inject faults, count calls)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from hvauto.errors import UsageError

from .app import OutputOpt, get_app
from .output import Output, print_json, table

app = typer.Typer(help="The simulated lab estate: a Hyper-V estate to try hvauto on.", no_args_is_help=True)


class FaultKind(str, Enum):
    transient = "transient"
    permanent = "permanent"
    timeout = "timeout"
    auth = "auth"


def _state_path(ctx: typer.Context) -> Path:
    inv = get_app(ctx).inventory
    for h in inv.hosts.values():
        if h.lab_state:
            return Path(h.lab_state)
    raise UsageError(f"{inv.path} has no lab hosts; run `hvauto lab init` to create a lab")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write hvauto.toml and lab/.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an hvauto.toml that is not a lab's.")] = False,
) -> None:
    """Write a lab inventory (hvauto.toml) and a fresh simulated estate (lab/estate.db)."""
    from hvauto.lab import setup

    p = setup.init(directory, force=force)
    typer.echo(f"lab estate created: {p.state}")
    typer.echo(f"inventory written: {p.inventory}")
    typer.echo("hosts: dc01 (AD), fs01 (file server), hostA, hostB (2022), hv12 (2012 R2); domain lab.test")
    if directory.resolve() != Path.cwd().resolve():
        typer.echo(f"next: cd {directory} && hvauto vm list")
    else:
        typer.echo("next: hvauto vm list")


@app.command()
def reset(ctx: typer.Context) -> None:
    """Restore the lab estate to its initial state (faults and call counts cleared too)."""
    from hvauto.lab import setup

    state = _state_path(ctx)
    setup.reset(state, state.parent / "password")
    typer.echo(f"lab estate reset: {state}")


@app.command()
def fault(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Lab host.")],
    down: Annotated[bool | None, typer.Option("--down/--up", help="Make the host unreachable, or reachable again.")]
    = None,
    delay: Annotated[float | None, typer.Option(help="Seconds of latency added to every call.", min=0)] = None,
    fail_next: Annotated[int | None, typer.Option(help="Fail the next N calls.", min=0)] = None,
    kind: Annotated[FaultKind, typer.Option(help="How the next calls fail.")] = FaultKind.transient,
    clear: Annotated[bool, typer.Option(help="Remove every fault on the host.")] = False,
) -> None:
    """Inject faults into a lab host: unreachable, slow, or failing its next calls."""
    from hvauto.lab.transport import store_for

    name = get_app(ctx).inventory.host(host).name
    store = store_for(str(_state_path(ctx)))
    if clear:
        store.clear_faults(name)
        typer.echo(f"{name}: faults cleared")
        return
    data = store.set_fault(name, down=down, delay=delay, fail_next=fail_next,
                           kind=kind.value if fail_next else None)
    typer.echo(f"{name}: {data}")


@app.command()
def calls(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """How many scripts each lab host has run, by template and outcome."""
    from hvauto.lab.transport import store_for

    rows = store_for(str(_state_path(ctx))).call_counts()
    if output is Output.json:
        print_json({"calls": [{"host": h, "template": t, "outcome": o, "count": n} for h, t, o, n in rows]})
        return
    table(["host", "template", "outcome", "count"], rows)


@app.command()
def speed(
    ctx: typer.Context,
    factor: Annotated[float | None, typer.Argument(help="Lab seconds per real second (1 = real time).", min=0.001)]
    = None,
) -> None:
    """Show or set how fast lab time runs (long jobs such as migrations take time in proportion)."""
    from hvauto.lab.transport import store_for

    store = store_for(str(_state_path(ctx)))
    with store.transaction() as est:
        if factor is not None:
            est.set_meta("time_scale", repr(float(factor)))
        value = est.meta("time_scale", "1.0")
    typer.echo(f"lab time scale: {value} (a move that takes 60 s in real time takes {60 / float(value or 1):.1f} s)")
