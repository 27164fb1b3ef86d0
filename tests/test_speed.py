"""What the speed work promises without timing anything: how many hosts run at once, what a
command builds and imports at start, how many requests a step costs (tests/wire pins those)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from hvauto.ops import vms
from tests.conftest import Lab, hv


def _peak_concurrency(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch vm listing so that each host takes a moment; returns [peak] filled in as it runs."""
    lock = threading.Lock()
    state = {"now": 0}
    peak = [0]
    real = vms.list_on

    def slow(session: Any, host: str, names: Any = None) -> Any:
        with lock:
            state["now"] += 1
            peak[0] = max(peak[0], state["now"])
        try:
            time.sleep(0.05)
            return real(session, host, names)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(vms, "list_on", slow)
    return peak


def test_hosts_run_at_once_by_default(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    peak = _peak_concurrency(monkeypatch)
    out = hv("vm", "list", "hostA", "hostB", "hv12")
    assert out.code == 0, out.err
    assert peak[0] == 3


@pytest.mark.parametrize("how", ["option", "env"])
def test_forks_caps_the_hosts_at_once(lab: Lab, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    peak = _peak_concurrency(monkeypatch)
    if how == "env":
        monkeypatch.setenv("HVAUTO_FORKS", "1")
        out = hv("vm", "list", "hostA", "hostB", "hv12")
    else:
        out = hv("--forks", "2", "vm", "list", "hostA", "hostB", "hv12")
    assert out.code == 0, out.err
    assert peak[0] == (1 if how == "env" else 2)


def test_forks_must_be_positive(lab: Lab) -> None:
    out = hv("--forks", "0", "vm", "list")
    assert out.code == 2 and "--forks" in out.err


def _cli_modules(*argv: str) -> set[str]:
    """The hvauto.cli modules a fresh interpreter has imported after ``hvauto ARGV``.

    Read from sys.modules: -X importtime does not see importlib.import_module, which builds the nouns.
    """
    code = ("import sys\nfrom hvauto.cli.main import run\ncode = run(sys.argv[1:])\n"
            "print(' '.join(m for m in sys.modules if m.startswith('hvauto.cli.')))\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.splitlines()[-1].split())


def test_help_builds_no_noun_and_a_command_builds_only_its_own() -> None:
    nouns = {"hvauto.cli." + m for m in ("delegation", "fabric", "host", "lab", "migrate", "runbook", "schedule",
                                         "smb", "switch", "vm")}
    assert _cli_modules("--help") & nouns == set()
    assert _cli_modules("vm", "--help") & nouns == {"hvauto.cli.vm"}


def test_the_root_lists_every_noun_as_its_module_says() -> None:
    """The table's one-line help (what --help shows without importing a module) is the module's own."""
    import typer.main

    from hvauto.cli.main import COMMANDS, full_app, run

    built = typer.main.get_command(full_app()).commands  # type: ignore[attr-defined]
    assert list(built) == list(COMMANDS)
    for name, cmd in built.items():
        table_line = typer.core.TyperGroup(name=name, help=COMMANDS[name][2]).get_short_help_str(200)
        assert table_line == cmd.get_short_help_str(200), name
    assert run(["--help"]) == 0


def test_an_unknown_noun_is_a_usage_error() -> None:
    out = hv("nosuch")
    assert out.code == 2 and "nosuch" in out.err
