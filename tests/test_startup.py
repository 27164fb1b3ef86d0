"""`hvauto --help` stays light: it must not import the remoting libraries (shown with -X importtime)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pypsrp", "winrm", "requests", "requests_ntlm", "spnego", "cryptography")


def _imported_modules(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hvauto", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert names, "importtime printed nothing"
    return names


def test_help_imports_no_remoting_library() -> None:
    names = _imported_modules("--help")
    assert "hvauto.cli.main" in names
    heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
    assert heavy == []


def test_subcommand_help_imports_no_remoting_library() -> None:
    for noun in ("vm", "host", "lab"):
        names = _imported_modules(noun, "--help")
        assert not any(n.split(".")[0] in HEAVY for n in names), noun
