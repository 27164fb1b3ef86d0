"""The root app: global options, the noun sub-apps, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from hvauto import __version__, text
from hvauto.errors import ExitCode, HvautoError, PreflightError, ValidationError, exit_code

from . import delegation, fabric, host, lab, runbook, schedule, smb, switch, vm
from .app import App
from .migrate import evacuate, migrate, storage_app
from .output import Output, emit

EPILOG = (
    "Exit codes: 0 ok, 1 unexpected error, 2 usage or invalid input, 3 inventory/configuration, 4 not found, "
    "5 authentication, 6 unreachable, 7 timeout, 8 remote script error or failed verify, 9 some hosts failed, "
    "10 preflight found blocking problems, 11 runbook aborted, 12 locked (another run of the runbook), "
    "13 outcome unknown (a change was sent, its answer lost; the error names the commands that find out), "
    "130 interrupted."
)

app = typer.Typer(
    name="hvauto",
    help="Automate Hyper-V hosts (Windows Server 2012-2025) over WinRM/PSRP. Start with `hvauto lab init`.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    # Locals hold credentials: never show them, and never print a traceback by default.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
app.add_typer(lab.app, name="lab")
app.add_typer(host.app, name="host")
app.add_typer(vm.app, name="vm")
app.add_typer(fabric.app, name="fabric")
app.add_typer(switch.app, name="switch")
app.command("migrate")(migrate)
app.command("evacuate")(evacuate)
app.add_typer(storage_app, name="storage")
app.add_typer(runbook.app, name="runbook")
app.add_typer(schedule.app, name="schedule")
app.add_typer(smb.app, name="smb")
app.add_typer(delegation.app, name="delegation")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hvauto {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", envvar="HVAUTO_INVENTORY", help="Inventory file (default ./hvauto.toml)."),
    ] = None,
    retries: Annotated[int, typer.Option(help="Attempts for transient transport faults.", min=1, max=10)] = 4,
    debug: Annotated[bool, typer.Option("--debug", help="Log what happens to stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    obj = ctx.obj if isinstance(ctx.obj, App) else App()
    obj.inventory_path = inventory
    obj.retries = retries
    ctx.obj = obj
    logger = logging.getLogger("hvauto")
    if debug:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    logger.handlers[:] = [handler]
    logger.propagate = False


def log_path() -> Path:
    base = os.environ.get("HVAUTO_LOG_DIR") or os.environ.get("XDG_STATE_HOME")
    root_dir = Path(base) if base else Path.home() / ".local" / "state"
    return (root_dir if os.environ.get("HVAUTO_LOG_DIR") else root_dir / "hvauto") / "hvauto-debug.log"


def report(exc: HvautoError) -> None:
    sys.stderr.write(f"hvauto: error: {exc}\n")
    if isinstance(exc, PreflightError):
        for p in exc.problems:
            mark = "BLOCKING" if p.blocking else "warning"
            sys.stderr.write(f"  [{mark}] {p.host + ': ' if p.host else ''}{p.message}\n")
            if p.fix:
                sys.stderr.write(f"      fix: {p.fix}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {exc.hint}\n")


def report_json(code: int, error: str, message: str, data: dict[str, object] | None = None) -> None:
    """The error as the last JSON line on stdout (``-o json``); the human line still goes to stderr."""
    extra = dict(data or {})
    extra.pop("error", None)
    extra.pop("message", None)
    emit("error", {"code": int(code), "error": error, "message": message, "hint": extra.pop("hint", None),
                   "problems": extra.pop("problems", []), **extra})


def _unexpected(exc: BaseException) -> None:
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        where = f"; details in {path}"
    except OSError:
        where = ""
    sys.stderr.write(f"hvauto: internal error: {type(exc).__name__}{where}\n")


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this in-process).

    Typer's standalone mode prints usage errors itself (exit 2) and turns Ctrl-C into 130;
    hvauto's own errors come out of it untouched and are reported here.
    """
    state = App()
    command = typer.main.get_command(app)
    # What a host or a user put in a string is shown, never acted on by the terminal (JSON keeps it exact).
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = text.SafeStream(sys.stdout), text.SafeStream(sys.stderr)
    try:
        args = sys.argv[1:] if argv is None else argv
        bad = text.argv_problems(args)
        if bad:
            # Refused before parsing (a value's bytes decide nothing else); -o json still gets its error line.
            pairs = {f"{a} {b}" for a, b in zip(args, args[1:], strict=False)} | set(args)
            if pairs & {"-o json", "--output json", "--output=json", "-ojson"}:
                state.output = Output.json
            raise ValidationError(bad, what="argument (hvauto sends text as UTF-8)")
        command.main(args=argv, prog_name="hvauto", standalone_mode=True, obj=state)
        return ExitCode.OK
    except SystemExit as exc:
        code = exc.code
        exit_ = exc.__context__
        if code == ExitCode.INTERRUPTED and exit_ is not None and isinstance(exit_.__cause__, KeyboardInterrupt):
            # Typer turns a Ctrl-C the command did not handle into exit 130, silently: say so.
            sys.stderr.write("hvauto: error: interrupted\n")
            if state.output is Output.json:
                report_json(ExitCode.INTERRUPTED, "Interrupted", "interrupted")
        return code if isinstance(code, int) else (ExitCode.OK if code is None else ExitCode.ERROR)
    except HvautoError as exc:
        report(exc)
        code = exit_code(exc)
        if state.output is Output.json:
            report_json(code, type(exc).__name__, exc.message, exc.to_dict())
        return code
    except KeyboardInterrupt as exc:
        sys.stderr.write("hvauto: error: interrupted\n")
        if state.output is Output.json:
            report_json(exit_code(exc), "Interrupted", "interrupted")
        return exit_code(exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback on screen
        _unexpected(exc)
        if state.output is Output.json:
            report_json(exit_code(exc), "InternalError", f"internal error: {type(exc).__name__} (see the debug log)")
        return exit_code(exc)
    finally:
        state.close()
        sys.stdout, sys.stderr = streams


def main() -> None:
    sys.exit(run())
