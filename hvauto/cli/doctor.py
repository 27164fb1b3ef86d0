"""hvauto doctor: which hosts can be reached, which can live-migrate to which, and what to fix."""

from typing import TYPE_CHECKING, Annotated

import typer

from hvauto import versions
from hvauto.errors import ExitCode
from hvauto.results import count

from . import complete
from .app import OutputOpt, RenderOpt, get_app
from .common import print_steps
from .output import Output, emit, paint, problem, say, table

if TYPE_CHECKING:
    from hvauto.ops.doctor import DoctorReport

WIDTH = 80
MARKS = {"ready": "ok", "blocked": "X", "unknown": "?"}


def doctor(
    ctx: typer.Context,
    hosts: Annotated[list[str] | None, typer.Argument(help="Hosts or groups (default: the whole inventory).",
        autocompletion=complete.hosts)] = None,
    output: OutputOpt = Output.table,
    render: RenderOpt = False,
) -> None:
    """Readiness of the estate, read-only: reach each host, a migration matrix, shares in use; each problem's fix.

    Exit 0 when everything is ready, 14 when something is not (each reason listed).
    """
    from hvauto.ops import doctor as ops

    session = get_app(ctx).session
    if render:
        print_steps(session, ops.doctor_steps(session, list(hosts or [])), output)
        return
    report = ops.doctor(session, list(hosts or []))
    if output is Output.json:
        emit("result", report.to_dict())
    else:
        _print(report)
    if not report.ready:
        raise typer.Exit(int(ExitCode.NOT_READY))


def _print(report: "DoctorReport") -> None:
    rows = []
    for h in report.hosts.values():
        failed = next((s for s in h.stages if not s.ok), None)
        reach = f"no: {failed.name}" if failed else "ok"
        skew = "-" if h.clock_skew_seconds is None else f"{round(h.clock_skew_seconds):+d}s"
        os_label = versions.label(h.os_version).replace("Windows Server ", "") if h.os_version else "-"
        state = "ready" if h.ready else ("unreachable" if failed else "problems")
        ps = ".".join((h.ps_version or "-").split(".")[:2])
        rows.append((h.host, reach, os_label, ps, h.auth, skew, state))
    table(["host", "reach", "os", "ps", "auth", "clock", "state"], rows)
    for h in report.hosts.values():
        failed = next((s for s in h.stages if not s.ok), None)
        warned = [s for s in h.stages if s.ok and s.warning]
        if not failed and not h.problems and not warned:
            continue
        typer.echo(f"\n{h.host}:")
        if failed:
            say(f"{failed.name}: {failed.detail}", "  - ", "    ")
            if failed.fix:
                say(f"fix: {failed.fix}", "    ", "      ")
        for stage in warned:
            say(f"warning: {stage.name}: {stage.detail}", "  - ", "    ")
            if stage.fix:
                say(f"fix: {stage.fix}", "    ", "      ")
        for found in h.problems:
            problem(found)
    hyperv = list(dict.fromkeys([p.source for p in report.pairs] + [p.dest for p in report.pairs]))
    if hyperv:
        verdict = {(p.source, p.dest): p for p in report.pairs}
        wide = 8 + sum(max(len(h), 3) + 2 for h in hyperv) > WIDTH
        heads = [str(i + 1) if wide else h for i, h in enumerate(hyperv)]
        typer.echo("\nLive migration (row: from, column: to; ok ready, X blocked, ? unknown)")
        labels = [f"{i + 1} {s}" if wide else s for i, s in enumerate(hyperv)]
        first = max(len(x) for x in [*labels, "from"])
        widths = [max(len(x), 2) for x in heads]
        typer.echo("  ".join(["from".ljust(first), *(x.ljust(w) for x, w in zip(heads, widths, strict=True))]).rstrip())
        for label, src in zip(labels, hyperv, strict=True):
            marks = ["-" if src == d else MARKS[verdict[(src, d)].verdict] for d in hyperv]
            typer.echo("  ".join([label.ljust(first), *(paint(m) + " " * (w - len(m))
                                                        for m, w in zip(marks, widths, strict=True))]).rstrip())
        for pair in report.pairs:
            if pair.ready:
                continue
            typer.echo(f"\n{pair.source} -> {pair.dest}: {pair.verdict}")
            for prob in pair.problems:
                if prob.blocking:
                    problem(prob)
    if report.shares:
        typer.echo("\nShares that hold VM files")
        for share in report.shares:
            can = [h.host for h in share.hosts if h.can_use]
            typer.echo(f"  \\\\{share.server}\\{share.name}" + (f" ({share.path})" if share.path else ""))
            say(f"VMs: {', '.join(share.vms)}", "    ", "      ")
            say(f"usable by: {', '.join(can) or 'no Hyper-V host'}", "    ", "      ")
            for prob in share.problems:
                problem(prob)
    typer.echo("\n" + ("everything is ready" if report.ready else
                       f"not ready: {count(len(report.blocking), 'blocking problem')}"))
