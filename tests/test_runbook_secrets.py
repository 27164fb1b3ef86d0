"""A password given through the environment appears nowhere: not in the journal (nor its WAL),
the logs, the schedule files, the crontab, or anything printed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv

ROOT = Path(__file__).resolve().parent.parent

RUNBOOK = """
name: with secrets
vars:
  svc_password: ~
target: [hostA, hostB]
steps:
  - name: facts
    host.facts: {}
    continue_on_error: true
  - name: list, with the secret as a (harmless) filter value
    vm.list:
      name: ["{{ svc_password }}", "vm01"]
    register: vms
"""


def test_environment_password_appears_nowhere(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = lab.password
    monkeypatch.setenv("HVAUTO_USERNAME", "LAB\\Administrator")
    monkeypatch.setenv("HVAUTO_PASSWORD", password)
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HVAUTO_SCHEDULER", "cron")
    monkeypatch.setenv("HVAUTO_CRONTAB_FILE", str(tmp_path / "crontab"))
    (lab.dir / "rb.yml").write_text(textwrap.dedent(RUNBOOK).lstrip())
    printed: list[str] = []

    def run(*argv: str) -> int:
        res = hv(*argv)
        printed.extend([res.out, res.err])
        return res.code

    # The environment's password also passed as a variable: the worst case for the journal.
    assert run("runbook", "run", "rb.yml", "--var", f"svc_password={password}") == 0
    assert run("runbook", "run", "rb.yml", "--var", f"svc_password={password}", "-o", "json") == 0
    assert run("--debug", "runbook", "run", "rb.yml", "--check", "--var", f"svc_password={password}") == 0
    hv("lab", "fault", "hostB", "--fail-next", "1", "--kind", "auth")
    assert run("--retries", "1", "runbook", "run", "rb.yml", "--var", f"svc_password={password}") == 0
    hv("lab", "fault", "hostA", "--down")
    hv("lab", "fault", "hostB", "--down")
    assert run("--retries", "1", "runbook", "run", "rb.yml", "--var", f"svc_password={password}") == ExitCode.ABORTED
    hv("lab", "fault", "hostA", "--up")
    hv("lab", "fault", "hostB", "--up")
    assert run("runbook", "resume", "5") == ExitCode.USAGE  # the journal does not keep the secret variable
    assert run("runbook", "resume", "5", "--var", f"svc_password={password}") == 0
    for n in ("1", "5"):
        assert run("runbook", "show", n) == 0
        assert run("runbook", "show", n, "-o", "json") == 0
    assert run("runbook", "history") == 0

    # A scheduled run in its own process, with the password in its environment.
    (lab.dir / "sched.yml").write_text(textwrap.dedent(RUNBOOK).lstrip().replace("svc_password: ~",
                                                                                  "svc_password: none"))
    assert run("schedule", "add", "nightly", "--runbook", "sched.yml", "--at", "daily") == 0
    done = subprocess.run([sys.executable, "-m", "hvauto", "schedule", "run", "nightly"], cwd=lab.dir,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    printed.extend([done.stdout, done.stderr])

    needle = password.encode()
    searched = []
    for path in tmp_path.rglob("*"):
        if not path.is_file() or lab.paths.state.parent in path.parents:
            continue  # the lab's own estate and password file are the "domain", not hvauto's output
        searched.append(path.name)
        assert needle not in path.read_bytes(), f"the password leaked into {path}"
    assert {"journal.db", "schedule-nightly.jsonl", "nightly.json", "crontab"} <= set(searched)
    for text in printed:
        assert password not in text
    assert any("********" in text for text in printed)


def test_a_secret_written_into_the_runbook_is_masked_in_the_journal(lab: Lab, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    (lab.dir / "rb.yml").write_text(textwrap.dedent("""
    name: literal secret
    target: hostA
    vars:
      api_token: s3cr3t-t0ken-value
    steps:
      - report:
          message: "token has {{ api_token | length }} characters"
    """))
    res = hv("runbook", "run", "rb.yml")
    assert res.code == 0, res.err
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert any(p.name == "journal.db" for p in files)
    for p in files:
        assert b"s3cr3t-t0ken-value" not in p.read_bytes(), p
    assert "s3cr3t-t0ken-value" not in res.out + res.err
    resumed = hv("runbook", "show", "1", "-o", "json").json()
    assert resumed["vars"]["api_token"] == "********"
