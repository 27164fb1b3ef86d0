"""Shared fixtures: a fresh lab estate per test and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hvauto.cli.main import run
from hvauto.inventory import Inventory, load
from hvauto.lab import setup
from hvauto.lab.store import LabStore
from hvauto.lab.transport import store_for
from hvauto.session import Session


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The command's result: its one JSON line, or its ``result`` event when it printed more."""
        lines = self.json_lines()
        if len(lines) == 1:
            return lines[0]
        results = [e for e in lines if e.get("event") == "result"]
        assert len(results) == 1, self.out
        return results[0]

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@dataclass
class Lab:
    dir: Path
    paths: setup.LabPaths

    @property
    def store(self) -> LabStore:
        return store_for(str(self.paths.state.resolve()))

    @property
    def inventory(self) -> Inventory:
        return load(self.paths.inventory)

    def session(self, **kw: Any) -> Session:
        return Session(self.inventory, **kw)

    def calls(self, **kw: Any) -> int:
        return self.store.calls(**kw)

    @property
    def password(self) -> str:
        return self.paths.password.read_text().strip()


def hv(*args: str, input: str | None = None) -> Outcome:
    """Run the real CLI in-process, as a user would, and capture what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return Outcome(int(code), out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in list(os.environ):
        if var.startswith("HVAUTO_"):
            monkeypatch.delenv(var, raising=False)
    # Output width is each test's own choice (pytest-xdist's workers, and many shells, export COLUMNS).
    for var in ("COLUMNS", "LINES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HVAUTO_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.setenv("HVAUTO_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("HVAUTO_CACHE_DIR", str(tmp_path / "cache"))  # rendered templates
    # Runbook journal, locks and schedule logs: never the user's own state directory.
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """A fresh lab (inventory + estate) in a temporary directory, which is also the cwd."""
    directory = tmp_path / "estate"
    paths = setup.init(directory)
    monkeypatch.chdir(directory)
    yield Lab(directory, paths)
    store_for(str(paths.state.resolve())).close()
