"""The root app: global options, the noun sub-apps, and the one place errors become exit codes.

Start-up builds only what the command line asks for: the root group knows every noun from
:data:`COMMANDS` (module, attribute, one-line help) and imports a noun's module and builds
its Typer tree when click asks for that noun. ``hvauto --help`` lists every noun from the
table and imports none of them; ``hvauto vm list`` builds ``vm`` alone. :func:`full_app` is
the whole tree at once, for documentation, tests and the runbook's option reader.
"""

import errno
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
import typer.main

from hvauto import __version__, text
from hvauto.errors import ExitCode, HvautoError, PreflightError, ValidationError, exit_code

from .app import App
from .output import Output, emit

EPILOG = (
    "Exit codes: 0 ok, 1 unexpected error, 2 usage or invalid input, 3 inventory/configuration, 4 not found, "
    "5 authentication, 6 unreachable, 7 timeout, 8 remote script error or failed verify, 9 some hosts failed, "
    "10 preflight found blocking problems, 11 runbook aborted, 12 locked (another run of the runbook), "
    "13 outcome unknown (a change was sent, its answer lost; the error names the commands that find out), "
    "14 doctor: not ready, 130 interrupted."
)

#: noun -> (module, attribute, the first sentence of its help). The attribute is a Typer sub-app
#: or a command function; the sentence is what the root's --help lists without importing the
#: module (tests/test_speed.py holds it to the module's own help). In --help's order.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "migrate": ("hvauto.cli.migrate", "migrate", "Move a VM to another host: preflight (every problem at once), "
                "move with progress, verify."),
    "evacuate": ("hvauto.cli.migrate", "evacuate", "Move every VM off a host, placed by free memory and space, "
                 "within each host's migration limits."),
    "doctor": ("hvauto.cli.doctor", "doctor", "Readiness of the estate, read-only: reach each host, a migration "
               "matrix, shares in use; each problem's fix."),
    "lab": ("hvauto.cli.lab", "app", "The simulated lab estate: a Hyper-V estate to try hvauto on."),
    "host": ("hvauto.cli.host", "app", "Hosts in the inventory."),
    "vm": ("hvauto.cli.vm", "app", "Virtual machines on the Hyper-V hosts."),
    "fabric": ("hvauto.cli.fabric", "app", "Host network fabric: virtual switch, teaming, host vNICs with QoS "
               "weights, declared in a spec."),
    "switch": ("hvauto.cli.switch", "app", "Virtual switches: list, create (external, internal, private), remove."),
    "storage": ("hvauto.cli.migrate", "storage_app", "VM storage."),
    "runbook": ("hvauto.cli.runbook", "app", "Runbooks: YAML playbooks that chain operations, journalled and "
                "resumable."),
    "schedule": ("hvauto.cli.schedule", "app", "Run runbooks on a schedule (systemd user timers, or cron without "
                 "systemd)."),
    "smb": ("hvauto.cli.smb", "app", "SMB 3.0 file shares for VM storage."),
    "delegation": ("hvauto.cli.delegation", "app", "Kerberos constrained delegation (msDS-AllowedToDelegateTo) on "
                   "the hosts' computer accounts, written on the inventory's AD host."),
}


class LazyGroup(typer.core.TyperGroup):
    """The root group: every noun of :data:`COMMANDS` is listed, and built when first asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS) + [n for n in self.commands if n not in COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = typer.main.get_command(_typer({cmd_name})).commands[cmd_name]  # type: ignore[attr-defined]
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:  # not built: its line from the table, shortened as click shortens it
                cmd = typer.core.TyperGroup(name=name, help=COMMANDS[name][2])
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


def _typer(nouns: set[str] | None = None) -> typer.Typer:
    """The root Typer app with the given nouns attached (every noun when None)."""
    app = typer.Typer(
        name="hvauto",
        help="Automate Hyper-V hosts (Windows Server 2012-2025) over WinRM/PSRP. Start with `hvauto lab init`.",
        epilog=EPILOG,
        cls=LazyGroup,
        no_args_is_help=True,
        add_completion=True,
        # Locals hold credentials: never show them, and never print a traceback by default.
        pretty_exceptions_enable=False,
        pretty_exceptions_show_locals=False,
        rich_markup_mode=None,
    )
    app.callback()(root)
    for noun, (module, attr, _help) in COMMANDS.items():
        if nouns is not None and noun not in nouns:
            continue
        target = getattr(importlib.import_module(module), attr)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=noun)
        else:
            app.command(noun)(target)
    return app


def full_app() -> typer.Typer:
    """Every noun, built at once (documentation, tests, the runbook's option reader)."""
    return _typer()


def __getattr__(name: str) -> Any:
    # ``from hvauto.cli.main import app``: the whole tree, built only for whoever asks.
    if name == "app":
        return full_app()
    raise AttributeError(name)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hvauto {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", envvar="HVAUTO_INVENTORY", help="Inventory file (default ./hvauto.toml)."),
    ] = None,
    retries: Annotated[int, typer.Option(help="Attempts for transient transport faults.", min=1, max=10)] = 4,
    forks: Annotated[
        int | None,
        typer.Option("--forks", envvar="HVAUTO_FORKS", min=1, max=1024,
                     help="Hosts contacted at once by commands that fan out (default: all of them, at most 64)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Log what happens to stderr.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (also: the NO_COLOR environment "
                                           "variable; colour is only ever used on a terminal).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    obj = ctx.obj if isinstance(ctx.obj, App) else App()
    obj.inventory_path = inventory
    obj.retries = retries
    obj.forks = forks
    ctx.obj = obj
    from . import output

    output.COLOR = not no_color
    import logging  # not on the --help path (eager options end before this callback)

    logger = logging.getLogger("hvauto")
    if debug:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.setLevel(logging.DEBUG)
    else:
        # Without --debug, only what a person waiting should hear: retries and slow answers, one line each.
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("hvauto: %(message)s"))
        handler.addFilter(lambda record: record.name in ("hvauto.retry", "hvauto.wait"))
    logger.handlers[:] = [handler]
    logger.propagate = False


def log_path() -> Path:
    """``$HVAUTO_LOG_DIR``, else the state directory (``$HVAUTO_STATE_DIR``, else ``$XDG_STATE_HOME/hvauto``)."""
    for var in ("HVAUTO_LOG_DIR", "HVAUTO_STATE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var]) / "hvauto-debug.log"
    base = os.environ.get("XDG_STATE_HOME")
    return (Path(base) if base else Path.home() / ".local" / "state") / "hvauto" / "hvauto-debug.log"


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


def _named_shell_completion(args: list[str]) -> bool:
    """``--show-completion SHELL`` / ``--install-completion SHELL``: that shell's, not the detected one's.

    Typer's two options are flags that detect the shell from the process tree, so a shell named after
    them would be ignored (a zsh user asking for ``bash`` got zsh's script, or bash's under cron).
    """
    if len(args) != 2 or args[0] not in ("--show-completion", "--install-completion"):
        return False
    from typer._completion_shared import Shells, get_completion_script, install

    shell = args[1].lower()
    if shell not in {s.value for s in Shells}:
        raise ValidationError([f"{args[1]!r} is not a shell hvauto completes: "
                               f"{', '.join(s.value for s in Shells)}"], what="shell")
    if args[0] == "--show-completion":
        typer.echo(get_completion_script(prog_name="hvauto", complete_var="_HVAUTO_COMPLETE", shell=shell))
    else:
        shell, path = install(shell=shell, prog_name="hvauto", complete_var="_HVAUTO_COMPLETE")
        typer.echo(f"{shell} completion installed in {path}; it takes effect in a new shell")
    return True


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this in-process).

    Typer's standalone mode prints usage errors itself (exit 2) and turns Ctrl-C into 130;
    hvauto's own errors come out of it untouched and are reported here.
    """
    state = App()
    command = typer.main.get_command(_typer(set()))
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
        if _named_shell_completion(args):
            return ExitCode.OK
        command.main(args=argv, prog_name="hvauto", standalone_mode=True, obj=state)
        return ExitCode.OK
    except SystemExit as exc:
        code = exc.code
        exit_ = exc.__context__
        if isinstance(exit_, OSError) and exit_.errno == errno.EPIPE:
            # click turns a closed pipe into exit 1; the reader (`| head`) simply had enough.
            _quiet_stdout()
            return ExitCode.OK
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
    except BrokenPipeError:
        _quiet_stdout()
        return ExitCode.OK  # `hvauto vm list | head`: the reader has what it wanted
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


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the pipe's reader is gone, and Python's exit flush must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main() -> None:
    code = run()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        code = ExitCode.OK
    sys.exit(code)
