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


def test_show_completion_prints_a_bash_script() -> None:
    res = hv("--show-completion", "bash")
    assert res.code == 0
    assert "complete -o default -F _hvauto_completion hvauto" in res.out


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
