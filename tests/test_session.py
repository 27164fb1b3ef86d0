"""The session: retry only what is safe, one transport per host, fan-out with every host's outcome."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hvauto.errors import ConnectError, ErrorRecord, HostsFailedError, OperationTimeout
from hvauto.remote.base import Result
from hvauto.remote.retry import RetryPolicy
from hvauto.script import Script

from .conftest import Lab

FAST = RetryPolicy(attempts=3, initial=0.001, maximum=0.002, jitter=0.001)


class Flaky:
    """A transport that fails its first calls with a given error."""

    def __init__(self, host: str, errors: list[Exception]) -> None:
        self.host = host
        self.errors = list(errors)
        self.calls = 0

    def run(self, script: Script, *, timeout: float | None = None, on_progress: Any = None) -> Result:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Result(self.host, script.template, ok=True, data={"vms": []})

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("idempotent", "error", "calls", "raises"),
    [
        (True, ConnectError("reset", sent=True), 2, False),
        (False, ConnectError("refused", sent=False), 2, False),
        (False, ConnectError("reset after send", sent=True), 1, True),
        (False, OperationTimeout("lost", sent=True), 1, True),
        (True, OperationTimeout("lost", sent=True), 2, False),
    ],
)
def test_retry_policy(lab: Lab, idempotent: bool, error: Exception, calls: int, raises: bool) -> None:
    session = lab.session(retry=FAST)
    flaky = Flaky("hostA", [error])
    session._transports["hostA"] = flaky
    script = Script("vm_list", "2022", "body", {}, safe_to_resend=idempotent)
    if raises:
        with pytest.raises(type(error)):
            session.run_script("hostA", script)
    else:
        assert session.run_script("hostA", script).ok
    assert flaky.calls == calls


def test_one_transport_per_host_is_reused(lab: Lab) -> None:
    with lab.session() as session:
        session.run("hostA", "vm_list")
        first = session.transport("hostA")
        session.run("hostA", "vm_list")
        assert session.transport("hostA") is first


def test_fan_out_runs_hosts_concurrently_and_keeps_every_outcome(lab: Lab) -> None:
    seen: set[str] = set()
    barrier = threading.Barrier(2, timeout=5)

    def fn(host: str) -> str:
        seen.add(threading.current_thread().name)
        if host == "hostB":
            raise ConnectError("down", host=host)
        barrier.wait()  # proves hostA and hv12 ran at the same time
        return host.upper()

    with lab.session() as session:
        group = session.fan_out(["hostA", "hostB", "hv12"], fn)
    assert group.values() == {"hostA": "HOSTA", "hv12": "HV12"}
    assert set(group.failed()) == {"hostB"}
    with pytest.raises(HostsFailedError) as err:
        group.raise_if_failed()
    assert err.value.exit_code == 9


def test_remote_error_record_is_kept(lab: Lab) -> None:
    res = Result("h", "t", ok=False, errors=[ErrorRecord("boom", category="InvalidOperation", fqid="X,Y")])
    with pytest.raises(Exception) as err:
        res.raise_for_error()
    assert "InvalidOperation" in str(err.value) and "X,Y" in str(err.value)


def test_observers_hear_every_call(lab: Lab) -> None:
    heard: list[tuple[str, str, bool]] = []

    class Obs:
        def call_started(self, host: str, script: Script) -> None:
            heard.append((host, script.template, False))

        def call_finished(self, host: str, script: Script, result: Result | None, error: BaseException | None) -> None:
            heard.append((host, script.template, result is not None and result.ok))

    with lab.session(observers=[Obs()]) as session:
        session.run("hostA", "vm_list")
    assert heard == [("hostA", "vm_list", False), ("hostA", "vm_list", True)]


def test_close_closes_every_host_concurrently(lab: Lab) -> None:
    """Closing is not a sequential tail: three transports that each wait for the other two all close."""
    barrier = threading.Barrier(3, timeout=5)
    closed: list[str] = []

    class Waiting:
        def __init__(self, host: str) -> None:
            self.host = host

        def run(self, *a: object, **kw: object) -> None:  # pragma: no cover - never run here
            raise AssertionError

        def close(self) -> None:
            barrier.wait()  # broken (and never appended) if the others are not closing at the same time
            closed.append(self.host)

    session = lab.session()
    session._transports = {h: Waiting(h) for h in ("hostA", "hostB", "hv12")}  # type: ignore[misc]
    session.close()
    assert sorted(closed) == ["hostA", "hostB", "hv12"]
    assert session._transports == {}
