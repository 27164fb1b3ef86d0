"""`hvauto lab init --serve` and `hvauto lab serve` as a user runs them: a subprocess, then Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hvauto.errors import ExitCode
from tests.conftest import hv
from tests.wire.conftest import port_closed

pytestmark = [pytest.mark.slow, pytest.mark.wire]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "http"])
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_answers_and_stops_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: bool,
                                         stop: signal.Signals) -> None:
    port = free_port()
    args = ["lab", "init", str(tmp_path / "lab"), "--serve", "--port", str(port)]
    res = hv(*args, *([] if tls else ["--no-tls"]))
    assert res.code == 0, res.err
    assert f"127.0.0.1:{port}" in res.out
    inventory = tmp_path / "lab" / "hvauto.toml"
    text = inventory.read_text()
    assert 'transport = "psrp"' in text and 'password_command = "cat lab/password"' in text
    assert ('ca_path = "lab/ca.pem"' in text) is tls and ("allow_unencrypted = true" in text) is not tls
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hvauto", "-i", str(inventory), "lab", "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        # Not proc.stderr.read() in the message: it would wait for a server that is still running.
        assert line.startswith("serving 5 lab hosts on "), line
        listed = hv("-i", str(inventory), "vm", "list", "-o", "json")
        assert listed.code == 0, listed.err
        assert {v["name"] for v in listed.json()["vms"]} == {"vm01", "vm02", "web01"}
        calls = hv("-i", str(inventory), "lab", "calls", "-o", "json")
        assert {(c["host"], c["template"]) for c in calls.json()["calls"]} >= {("hosta", "vm_list")}
    finally:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err
    assert port_closed(port)
    wire = hv("-i", str(inventory), "lab", "calls", "--wire", "-o", "json").json()["requests"]
    assert sum(r["count"] for r in wire if r["action"] == "Create") == 3  # one pool per Hyper-V host


def test_serve_on_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert hv("lab", "init", str(tmp_path / "lab"), "--serve", "--port", str(port)).code == 0
        started = time.monotonic()
        res = hv("-i", str(tmp_path / "lab" / "hvauto.toml"), "lab", "serve")
    assert res.code == ExitCode.USAGE
    assert f"cannot listen on 127.0.0.1:{port}" in res.err
    assert time.monotonic() - started < 5


def test_serve_unknown_host_is_a_clear_error(tmp_path: Path) -> None:
    assert hv("lab", "init", str(tmp_path / "lab"), "--serve").code == 0
    res = hv("-i", str(tmp_path / "lab" / "hvauto.toml"), "lab", "serve", "--port", "0", "--hosts", "nosuch")
    assert res.code == ExitCode.USAGE
    assert "no such lab host" in res.err
