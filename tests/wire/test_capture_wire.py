"""hvauto lab capture over the wire (PSRP over TLS): the twin answers as the served estate does."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hvauto.cli.main import run
from tests.wire.conftest import WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]


def _hv(where: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    old = os.getcwd()
    os.chdir(where)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = run(list(argv))
    finally:
        os.chdir(old)
    return int(code), out.getvalue()


def _json(where: Path, *argv: str) -> Any:
    code, out = _hv(where, *argv, "-o", "json")
    assert code == 0, out
    return json.loads(out.splitlines()[-1])


def test_a_capture_over_psrp_builds_a_twin_that_answers_the_same(psrp_wire: WireLab, tmp_path: Path) -> None:
    wire = psrp_wire
    code, out = _hv(wire.dir, "--inventory", str(wire.inventory_path), "lab", "capture", "--to",
                    str(tmp_path / "captured.yaml"))
    assert code == 0, out
    assert _hv(tmp_path, "lab", "init", "twin", "--estate", str(tmp_path / "captured.yaml"))[0] == 0
    for argv in (["vm", "list"], ["switch", "list"], ["host", "show", "hostA"], ["delegation", "show", "hostA"]):
        served = _json(wire.dir, "--inventory", str(wire.inventory_path), *argv)
        twin = _json(tmp_path / "twin", *argv)
        assert twin == served, argv
