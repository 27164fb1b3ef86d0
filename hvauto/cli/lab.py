"""hvauto lab: the simulated estate (create, reset, inject faults, count calls)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from hvauto.errors import UsageError
from hvauto.results import count

from . import complete
from .app import OutputOpt, get_app
from .output import Output, emit, table

app = typer.Typer(help="The simulated lab estate: a Hyper-V estate to try hvauto on.", no_args_is_help=True)


class FaultKind(str, Enum):
    transient = "transient"
    permanent = "permanent"
    timeout = "timeout"
    auth = "auth"
    # Wire-level kinds, played by `hvauto lab serve` (the in-process lab maps them to the nearest above).
    http503 = "http503"
    reset = "reset"
    hang = "hang"
    quota = "quota"


class WireAction(str, Enum):
    Create = "Create"
    Command = "Command"
    Send = "Send"
    Receive = "Receive"
    Signal = "Signal"
    Delete = "Delete"
    Get = "Get"


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
    serve: Annotated[bool, typer.Option("--serve", help="Reach the lab over real WinRM/PSRP (`hvauto lab serve`).")]
    = False,
    tls: Annotated[bool, typer.Option(help="With --serve: HTTPS with the lab's own CA, or plain HTTP + Basic.")]
    = True,
    port: Annotated[int | None, typer.Option(help="With --serve: the endpoint's port (55986 TLS, 55985 HTTP).",
                                             min=1, max=65535)] = None,
    estate: Annotated[Path | None, typer.Option(
        "--estate", help="An estate file (YAML, hvauto/schemas/estate.schema.json) to load instead of the default "
        "one; `lab reset` restores it.")] = None,
) -> None:
    """Write a lab inventory (hvauto.toml) and a fresh simulated estate (lab/estate.db)."""
    from hvauto.lab import setup

    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory}: not a directory (lab init writes hvauto.toml and lab/ into one)")
    opts = setup.ServeOptions(port=port, tls=tls) if serve else None
    try:
        p = setup.init(directory, force=force, serve=opts, estate=estate)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot write the lab there: {exc.strerror or exc}") from None
    typer.echo(f"lab estate created: {p.state}" + (f" (from {estate})" if estate is not None else ""))
    typer.echo(f"inventory written: {p.inventory}")
    if estate is None:
        typer.echo("hosts: dc01 (AD), fs01 (file server), hostA, hostB (2022), hv12 (2012 R2); domain lab.test")
    if opts is not None:
        typer.echo(f"transport: psrp to 127.0.0.1:{opts.effective_port} ({'TLS' if opts.tls else 'HTTP'}, Basic); "
                   "start the endpoint with `hvauto lab serve` in another terminal")
    if directory.resolve() != Path.cwd().resolve():
        typer.echo(f"next: cd {directory} && hvauto vm list")
    else:
        typer.echo("next: hvauto vm list")


@app.command()
def capture(
    ctx: typer.Context,
    hosts: Annotated[list[str] | None, typer.Argument(help="Hosts or groups (default: the whole inventory).",
                                                      autocompletion=complete.hosts)] = None,
    to: Annotated[Path, typer.Option("--to", help="The estate file to write (YAML).")] = Path("estate.yaml"),
    force: Annotated[bool, typer.Option(help="Overwrite the file if it exists.")] = False,
) -> None:
    """Read an estate, read-only, into a lab estate file: `hvauto lab init DIR --estate FILE` then builds its twin."""
    from hvauto.ops import capture as ops

    if to.exists() and not force:
        raise UsageError(f"{to} exists; pass --force to overwrite it")
    state = get_app(ctx)
    doc = ops.capture(state.session, list(hosts or []))
    text = ops.to_yaml(doc, str(state.inventory.path))
    from hvauto.lab import estatefile

    estatefile.parse(text, str(to))  # what it wrote must load: a schema problem is ours, and said now
    to.write_text(text, encoding="utf-8")
    n_vms = sum(len(h.get("vms") or []) for h in doc["hosts"])
    typer.echo(f"captured {count(len(doc['hosts']), 'host')} and {count(n_vms, 'VM')} into {to}; "
               f"rehearse on it: hvauto lab init twin --estate {to}")


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: the inventory's; 0 = any free).",
                                             min=0, max=65535)] = None,
    hosts: Annotated[list[str] | None, typer.Option("--hosts", help="Serve only these lab hosts.")] = None,
    tls: Annotated[bool | None, typer.Option("--tls/--no-tls", help="Default: as the inventory says.")] = None,
) -> None:
    """Serve the lab over WinRM (WS-Management, PSRP and WinRS) on 127.0.0.1 until Ctrl-C."""
    import signal
    import threading

    from hvauto.lab.wire import certs
    from hvauto.lab.wire.server import TLSFiles, WireServer

    state = _state_path(ctx)
    inv = get_app(ctx).inventory
    wired = [h for h in inv.hosts.values() if h.transport != "lab"]
    use_tls = tls if tls is not None else (wired[0].tls if wired else False)
    if port is None:
        port = wired[0].effective_port if wired else 0
    tls_files = None
    if use_tls:
        files = certs.files(state.parent)
        if not (files.cert.is_file() and files.key.is_file()):
            raise UsageError(f"no lab certificate in {state.parent}; run `hvauto lab init --serve` (TLS) first")
        tls_files = TLSFiles(files.cert, files.key)
    try:
        server = WireServer(state, hosts=hosts or None, port=port, tls=tls_files)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    done = threading.Event()
    # Both end the endpoint cleanly, SIGINT too when a shell started it in the background (ignored there).
    previous = {sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    server.start()
    try:
        typer.echo(f"serving {count(len(server.hosts), 'lab host')} on {server.scheme}://127.0.0.1:{server.port}/wsman/<host>"
                   " (Ctrl-C to stop)")
        sys.stdout.flush()
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("stopped")


@app.command()
def reset(ctx: typer.Context) -> None:
    """Restore the lab estate to its initial state (faults and call counts cleared too)."""
    from hvauto.lab import setup

    state = _state_path(ctx)
    setup.reset(state, state.parent / "password")
    typer.echo(f"lab estate reset: {state}")


def describe_fault(data: dict[str, object]) -> str:
    """A lab host's faults in words: ``down; 2.0 s delay; the next 3 calls fail (transient)``."""
    parts = []
    if data.get("down"):
        parts.append("down (connections refused)")
    if float(data.get("delay") or 0):  # type: ignore[arg-type]
        parts.append(f"{float(data['delay']):g} s delay on every call")  # type: ignore[arg-type]
    n = int(data.get("fail_next") or 0)  # type: ignore[call-overload]
    if n:
        on = f" on {data['fail_on']}" if data.get("fail_on") else ""
        parts.append(f"the next {count(n, 'call')}{on} {'fails' if n == 1 else 'fail'} ({data.get('kind') or 'transient'})")
    if float(data.get("stretch") or 0):  # type: ignore[arg-type]
        parts.append(f"every script takes {float(data['stretch']):g} s")  # type: ignore[arg-type]
    if float(data.get("idle_timeout") or 0):  # type: ignore[arg-type]
        parts.append(f"idle shells dropped after {float(data['idle_timeout']):g} s")  # type: ignore[arg-type]
    return "; ".join(parts) or "no faults"


@app.command()
def fault(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Lab host.")],
    down: Annotated[bool | None, typer.Option("--down/--up", help="Make the host unreachable, or reachable again.")]
    = None,
    delay: Annotated[float | None, typer.Option(help="Seconds of latency added to every call.", min=0)] = None,
    fail_next: Annotated[int | None, typer.Option(help="Fail the next N calls.", min=0)] = None,
    kind: Annotated[FaultKind, typer.Option(help="How the next calls fail.")] = FaultKind.transient,
    on: Annotated[WireAction | None, typer.Option(
        help="Fail only this WS-Management action (default: any request). In process, Create/Command/Send "
        "fail before the script runs, Receive after it ran (its answer lost), Signal after its answer.")] = None,
    template: Annotated[str | None, typer.Option(
        help="In process only: fail only runs of this template (migrate_start ...); the wire ignores such a "
        "fault.")] = None,
    stretch: Annotated[float | None, typer.Option(
        help="Over the wire: every script takes this many seconds, its progress spread over them.", min=0)] = None,
    idle_timeout: Annotated[float | None, typer.Option(
        help="Over the wire: drop shells idle for longer than this (WinRM's IdleTimeout).", min=0)] = None,
    clear: Annotated[bool, typer.Option(help="Remove every fault on the host.")] = False,
) -> None:
    """Inject faults into a lab host: unreachable, slow, or failing its next calls.

    Over the wire (`hvauto lab serve`), --delay is added to every WS-Management request,
    and the kinds are: transient and http503 (HTTP 503), reset (TCP reset), timeout and
    hang (no answer until the client gives up), auth (HTTP 401), quota (the WinRM shell
    quota fault), permanent (the script fails with an error record).
    """
    from hvauto.lab.transport import store_for

    name = get_app(ctx).inventory.host(host).name
    store = store_for(str(_state_path(ctx)))
    if clear:
        store.clear_faults(name)
        typer.echo(f"{name}: faults cleared")
        return
    data = store.set_fault(name, down=down, delay=delay, fail_next=fail_next,
                           kind=kind.value if fail_next else None, fail_on=on.value if on else None,
                           fail_template=template,
                           stretch=stretch, idle_timeout=idle_timeout)
    typer.echo(f"{name}: {describe_fault(data)}")


@app.command()
def calls(
    ctx: typer.Context,
    output: OutputOpt = Output.table,
    wire: Annotated[bool, typer.Option("--wire", help="WS-Management requests served by `hvauto lab serve`.")]
    = False,
) -> None:
    """How many scripts each lab host has run, by template and outcome (or requests, by action)."""
    from hvauto.lab.transport import store_for

    if wire:
        requests = store_for(str(_state_path(ctx))).request_counts()
        if output is Output.json:
            emit("result", {"requests": [{"host": h, "action": a, "status": s, "count": n} for h, a, s, n in requests]})
            return
        table(["host", "action", "status", "count"], requests)
        return
    rows = store_for(str(_state_path(ctx))).call_counts()
    if output is Output.json:
        emit("result", {"calls": [{"host": h, "template": t, "outcome": o, "count": n} for h, t, o, n in rows]})
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
    typer.echo(f"lab time scale: {value} (lab time runs {float(value or 1):g} times as fast as real time: a move of "
               f"60 s on real hosts takes {60 / float(value or 1):.1f} s here)")
