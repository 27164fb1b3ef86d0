"""The operator's terminal: every line fits the terminal (80 columns here), wording reads right."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvauto.cli.migrate import progress_line
from hvauto.cli.output import shorten
from hvauto.ops.migrate.model import MoveProgress
from tests.conftest import Lab, hv

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "playbooks" / "fabric-converged.yaml")
WIDE = [
    ["host", "show", "hostA"],
    ["vm", "list"],
    ["vm", "show", "vm01"],
    ["runbook", "show", "1"],
    ["runbook", "history"],
    ["smb", "share", "show", "VMs", "--server", "fs01"],
    ["fabric", "plan", "hyperv", "--spec", SPEC],
    ["schedule", "list"],
    ["evacuate", "hostA", "--what-if"],
    ["doctor"],
    ["switch", "list"],
    ["delegation", "show", "hostA"],
    ["migrate", "--shared-nothing", "vm01", "hostB", "--poll-interval", "0.01"],
]


@pytest.fixture
def scene(lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Lab:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("HVAUTO_SYSTEMD_DIR", str(tmp_path / "units"))
    monkeypatch.setenv("HVAUTO_CRONTAB_FILE", str(tmp_path / "crontab"))
    assert hv("lab", "speed", "2000").code == 0
    # long names everywhere they can be: a share path, a VM with a long disk path, a runbook and a schedule
    assert hv("smb", "share", "create", "VMs", "--server", "fs01", "--path",
              "D:\\Shares\\Hyper-V Virtual Machines\\Production Cluster Storage", "--hosts", "hostA,hostB").code == 0
    (lab.dir / "report.yml").write_text((ROOT / "playbooks" / "vm-report.yml").read_text())
    assert hv("runbook", "run", "report.yml").code == 0
    assert hv("schedule", "add", "nightly-vm-report-for-the-whole-estate", "--runbook", "report.yml",
              "--at", "Mon..Fri *-*-* 02:00", "--backend", "cron").code == 0
    return lab


@pytest.mark.parametrize("argv", WIDE, ids=[" ".join(a[:2]) for a in WIDE])
def test_no_line_is_wider_than_the_terminal(scene: Lab, argv: list[str]) -> None:
    res = hv(*argv)
    assert res.code in (0, 10, 14), res.err
    lines = (res.out + res.err).splitlines()
    assert lines
    long = [line for line in lines if len(line) > 80]
    assert not long, long


@pytest.mark.parametrize("columns", [40, 60, 80, 120])
@pytest.mark.parametrize(("source", "dest", "total"), [("hostA", "hostB", 22 * 1024**3), ("hostA", "hostA", 0),
                                                       ("h" * 30, "d" * 30, 5 * 1024**4)])
def test_the_progress_line_fits_and_says_bytes_rate_and_time_left(columns: int, source: str, dest: str,
                                                                 total: int) -> None:
    for pct in (0, 45, 100):
        p = MoveProgress("vm01", source, dest, pct, "Running" if pct < 100 else "Completed", 12.0, total)
        line = progress_line(p, columns)
        assert len(line) < columns, line
    mid = progress_line(MoveProgress("vm01", "hostA", "hostB", 45, "Running", 12.0, 22 * 1024**3), 100)
    assert "9.9 GiB of 22.0 GiB" in mid and "/s" in mid and "left" in mid and "[" in mid
    storage = progress_line(MoveProgress("vm01", "hostB", "hostB", 10, "Running", 1.0, 0), 80)
    assert "storage on hostB" in storage and "->" not in storage and "0 B" not in storage


def test_shorten_keeps_head_and_tail() -> None:
    path = "D:\\Shares\\Hyper-V Virtual Machines\\Production Cluster Storage\\vm01.vhdx"
    short = shorten(path, 30)
    assert len(short) == 30 and short.startswith("D:\\") and short.endswith("vm01.vhdx") and "..." in short
    assert shorten("abc", 30) == "abc"


def test_wording_counts_in_the_right_number(scene: Lab) -> None:
    plan = hv("fabric", "plan", "hyperv", "--spec", SPEC)
    assert "change(s)" not in plan.out and "lack(s)" not in plan.out
    assert " changes planned:" in plan.out
    res = hv("delegation", "grant", "hostB", "--to", "hostA", "--what-if")
    assert "would gain 4 SPNs" in res.out and "4 changes" in res.out


def _complete(monkeypatch: pytest.MonkeyPatch, words: str) -> list[str]:
    monkeypatch.setenv("_HVAUTO_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(words.split(" ")) - 1))
    res = hv()
    monkeypatch.delenv("_HVAUTO_COMPLETE")
    assert res.code == 0, res.err
    return res.out.split()


@pytest.mark.parametrize(("shell", "needle"), [
    ("bash", "complete -o default -F _hvauto_completion hvauto"),
    ("zsh", "#compdef hvauto"),
    ("fish", "complete --command hvauto"),
])
def test_show_completion_prints_the_named_shells_script(monkeypatch: pytest.MonkeyPatch, shell: str,
                                                        needle: str) -> None:
    import typer.completion

    # Whatever shell the process tree shows (here: one that is none of these), the named one decides.
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "pwsh")
    res = hv("--show-completion", shell)
    assert res.code == 0, res.err
    assert needle in res.out


def test_show_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    res = hv("--show-completion", "tcsh")
    assert res.code == 2 and "tcsh" in res.err and "bash" in res.err and not res.out


def test_install_completion_for_a_named_shell_writes_that_shells_files(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    res = hv("--install-completion", "bash")
    assert res.code == 0, res.err
    assert "_HVAUTO_COMPLETE" in (tmp_path / ".bash_completions" / "hvauto.sh").read_text()
    assert ".bash_completions/hvauto.sh" in (tmp_path / ".bashrc").read_text()


def test_completion_offers_the_labs_vms_hosts_and_runbooks(lab: Lab, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("HVAUTO_CACHE_DIR", str(tmp_path / "cache"))
    assert _complete(monkeypatch, "hvauto migrate --shared-nothing v") == ["vm01", "vm02"]
    assert _complete(monkeypatch, "hvauto migrate --shared-nothing vm01 ho") == ["hostA", "hostB"]
    assert _complete(monkeypatch, "hvauto migrate --shared-nothing vm01 hostB --from h") == ["hostA", "hostB", "hv12",
                                                                                              "hyperv"]
    assert "web01" in _complete(monkeypatch, "hvauto vm show ")
    # The VM names are cached: a second completion asks no host.
    before = lab.calls()
    assert _complete(monkeypatch, "hvauto storage move w") == ["web01"]
    assert lab.calls() == before
    (lab.dir / "patch.yml").write_text("name: x\n")
    assert _complete(monkeypatch, "hvauto runbook run pa") == ["patch.yml"]


def test_completion_without_an_inventory_offers_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _complete(monkeypatch, "hvauto migrate --shared-nothing v") == []


class _Tty:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.text += s
        return len(s)


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.cli import output

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty = _Tty()
    output.table(["host", "state"], [("hostA", "ready"), ("hostB", "blocked")], stream=tty)
    assert "\033[32mready\033[0m" in tty.text and "\033[31mblocked\033[0m" in tty.text
    assert all(len(line.replace("\033[32m", "").replace("\033[31m", "").replace("\033[0m", "")) <= 80
               for line in tty.text.splitlines())
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Tty()
    output.table(["host", "state"], [("hostA", "ready")], stream=plain)
    assert "\033[" not in plain.text
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr(output, "COLOR", False)
    assert output.paint("ready", _Tty()) == "ready"  # type: ignore[arg-type]


def test_no_color_option_and_pipes_are_plain(lab: Lab) -> None:
    from hvauto.cli import output

    res = hv("--no-color", "doctor")
    assert "\033[" not in res.out
    assert output.COLOR is False
    hv("host", "list")
    assert output.COLOR is True  # each run decides afresh


def test_a_host_that_does_not_listen_is_one_line_with_the_address_and_what_to_check(tmp_path: Path) -> None:
    import socket

    from hvauto.credentials import Credentials, Secret
    from hvauto.errors import ConnectError
    from hvauto.inventory import HostConfig
    from hvauto.remote.psrp import PSRPTransport
    from hvauto.render import render

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the with ends: nothing listens there
    cfg = HostConfig(name="hostZ", address="127.0.0.1", port=port, tls=False, auth="basic", connect_timeout=2.0)
    transport = PSRPTransport(cfg, Credentials(username="u", password=Secret("not-used")))
    with pytest.raises(ConnectError) as info:
        transport.run(render("vm_list", "2022", {}))
    err = info.value
    assert str(err) == f"hostZ: cannot connect to http://127.0.0.1:{port}/wsman: connection refused"
    assert "HTTPConnectionPool" not in str(err) and "\n" not in str(err)
    assert err.hint and f"lets {port} through" in err.hint and not err.sent


def test_retries_and_slow_answers_are_said_on_stderr(lab: Lab) -> None:
    assert hv("lab", "fault", "hostA", "--fail-next", "1", "--kind", "transient").code == 0
    res = hv("host", "show", "hostA")
    assert res.code == 0
    assert "hvauto: hostA: host_facts: attempt 1 of 4 failed" in res.err and "trying again" in res.err


def test_a_slow_answer_is_announced_once(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto import session as session_mod

    monkeypatch.setattr(session_mod, "SLOW_CALL", 0.5)
    assert hv("lab", "fault", "hostA", "--delay", "2.5").code == 0
    res = hv("host", "show", "hostA")
    assert res.code == 0
    said = [line for line in res.err.splitlines() if "still waiting" in line]
    assert len(said) == 1 and said[0].startswith("hvauto: hostA: still waiting for the answer to host_facts")


FAILURES = [
    # argv, exit code, what the one line says
    (["vm", "list", "fs01"], 2, "fs01 is not a Hyper-V host (its roles: fileserver)"),
    (["switch", "list", "fs01"], 2, "fs01 is not a Hyper-V host"),
    (["storage", "move", "vm01", "D:\\x", "--host", "fs01"], 2, "--host: fs01 is not a Hyper-V host"),
    (["storage", "move", "vm02", "Q:\\x"], 10, "hostA has no volume for Q:\\x"),
    (["switch", "create", "hostA", "Ext2", "-a", "NIC9"], 10, "hostA has no physical adapter NIC9"),
    (["switch", "create", "hostA", "Ext2", "-a", "NIC1"], 10, "adapter NIC1 (bound to switch External) is in use"),
    (["host", "migration", "hv12"], 2, "no setting given"),
]


@pytest.mark.parametrize(("argv", "code", "says"), FAILURES, ids=[" ".join(f[0][:3]) for f in FAILURES])
def test_each_failure_says_what_to_do_with_its_documented_code(lab: Lab, argv: list[str], code: int,
                                                              says: str) -> None:
    res = hv(*argv)
    assert res.code == code, res.err
    assert says in res.err and "Traceback" not in res.err
    assert "not recognized" not in res.err  # never the remote cmdlet's own failure
    calls = {"vm", "switch"} & {argv[0]} and code == 2
    if calls:
        assert lab.calls() == 0


def test_fix_lines_name_what_exists(lab: Lab) -> None:
    res = hv("switch", "create", "hostA", "Ext2", "-a", "NIC9")
    assert "fix: name one of NIC1, NIC2, NIC3, NIC4" in res.err
    res = hv("storage", "move", "vm02", "Q:\\x")
    assert "its VM folder is D:\\Hyper-V" in res.err


def test_words_not_python_values(lab: Lab) -> None:
    from hvauto.ops.smb.acl import rights_text

    res = hv("lab", "fault", "hostA", "--delay", "1.5", "--fail-next", "2", "--kind", "timeout")
    assert res.out.strip() == "hostA: 1.5 s delay on every call; the next 2 calls fail (timeout)"
    assert hv("lab", "fault", "hostA", "--clear").code == 0
    assert hv("smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\S", "--hosts", "hostA").code == 0
    show = hv("smb", "share", "show", "VMs", "--server", "fs01")
    assert "Continuously available  no" in show.out and "False" not in show.out
    assert rights_text("268435456") == "GenericAll (FullControl)"
    assert rights_text("FullControl") == "FullControl"
    assert "Stop and disable the timer" in hv("schedule", "remove", "--help").out


def test_a_closed_pipe_is_not_an_error(lab: Lab) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "hvauto", "doctor"], cwd=lab.dir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line: `| head -0`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "error" not in err
