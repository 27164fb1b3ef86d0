"""The wire endpoint's fault kinds also mean something to the in-process lab (the nearest failure)."""

from __future__ import annotations

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv


@pytest.mark.parametrize(
    ("kind", "code", "needle"),
    [
        ("http503", ExitCode.UNREACHABLE, "HTTP 503"),
        ("reset", ExitCode.UNREACHABLE, "connection reset"),
        ("hang", ExitCode.TIMEOUT, "read timeout"),
        ("quota", ExitCode.UNREACHABLE, "QUOTA"),
    ],
)
def test_wire_kinds_in_process(lab: Lab, kind: str, code: int, needle: str) -> None:
    assert hv("lab", "fault", "hostA", "--fail-next", "1", "--kind", kind).code == 0
    res = hv("--retries", "1", "vm", "list", "hostA")
    assert res.code == code
    assert needle in res.err
    assert hv("vm", "list", "hostA").code == 0  # one failure only


def test_wire_only_knobs_are_accepted_and_shown(lab: Lab) -> None:
    res = hv("lab", "fault", "hostA", "--fail-next", "2", "--kind", "reset", "--on", "Command", "--stretch", "30",
             "--idle-timeout", "5")
    assert res.code == 0
    assert res.out.strip() == ("hostA: the next 2 calls on Command fail (reset); every script takes 30 s; "
                               "idle shells dropped after 5 s")
