"""The lab over the wire: an endpoint on an ephemeral loopback port, and a lab inventory that uses it.

``wire`` is parametrized over the back-ends (psrp, winrm) and TLS on/off; every test that
takes it runs the real transports against :class:`WireServer` and checks afterwards that
the endpoint left no thread and no listening port behind.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hvauto.inventory import Inventory, load
from hvauto.lab import setup
from hvauto.lab.handlers import CmdletError, LabCall, handles
from hvauto.lab.store import LabStore
from hvauto.lab.transport import store_for
from hvauto.lab.wire import certs
from hvauto.lab.wire.server import TLSFiles, WireServer
from hvauto.remote.base import Progress
from hvauto.render import Renderer
from hvauto.session import Session

TEMPLATES = Path(__file__).parent / "templates"
OPERATION_TIMEOUT = 1
READ_TIMEOUT = 3

pytestmark = [pytest.mark.slow, pytest.mark.wire]


@handles("lab_probe")
def lab_probe(call: LabCall) -> dict[str, Any]:
    """The test-only template's handler: echoes its values, fails or reports progress on request."""
    mode = call.params["Mode"]
    text = call.params.get("Text") or ""
    if mode == "write_error":
        call.write_error(text, category="InvalidOperation", fqid="HvautoProbe")
    if mode == "throw":
        raise CmdletError(text, category="InvalidOperation", fqid="HvautoProbeThrown",
                          exception="System.Management.Automation.RuntimeException")
    count = int(call.params.get("Count") or 0)
    for i in range(count):
        if mode == "slow":
            time.sleep(0.5)
        call.report(Progress(activity="Probe", status=f"{i + 1} of {count}", percent=(i + 1) * 100 // count))
    call.warn("probe warning")
    return {"text": text, "items": list(call.params.get("Items") or [])}


@dataclass
class WireLab:
    dir: Path
    paths: setup.LabPaths
    server: WireServer
    backend: str
    tls: bool
    renderer: Renderer

    @property
    def inventory_path(self) -> Path:
        return self.paths.inventory

    @property
    def inventory(self) -> Inventory:
        return load(self.paths.inventory)

    @property
    def store(self) -> LabStore:
        return store_for(str(self.paths.state.resolve()))

    def session(self, **kw: Any) -> Session:
        return Session(self.inventory, renderer=self.renderer, **kw)

    def fault(self, host: str, **kw: Any) -> None:
        self.store.set_fault(host, **kw)


def wire_inventory(text: str, port: int, backend: str) -> str:
    """The `lab init --serve` inventory, pointed at the ephemeral port, with short test timeouts."""
    marker = f"port = {setup.DEFAULT_SERVE_PORT[True]}" if f"port = {setup.DEFAULT_SERVE_PORT[True]}" in text \
        else f"port = {setup.DEFAULT_SERVE_PORT[False]}"
    assert marker in text
    text = text.replace(marker, f"port = {port}\noperation_timeout = {OPERATION_TIMEOUT}\nread_timeout = {READ_TIMEOUT}"
                        "\nconnect_timeout = 3")
    return text.replace('transport = "psrp"', f'transport = "{backend}"')


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0



def start_wire(directory: Path, backend: str, tls: bool) -> tuple[setup.LabPaths, WireServer]:
    paths = setup.init(directory, serve=setup.ServeOptions(tls=tls))
    files = certs.files(paths.state.parent)
    server = WireServer(paths.state, port=0, tls=TLSFiles(files.cert, files.key) if tls else None,
                        renderer=Renderer([TEMPLATES])).start()
    paths.inventory.write_text(wire_inventory(paths.inventory.read_text(), server.port, backend))
    return paths, server


WIRE_PARAMS = [("psrp", True), ("psrp", False), ("winrm", False), ("winrm", True)]


@pytest.fixture(params=WIRE_PARAMS, ids=[f"{b}-{'tls' if t else 'http'}" for b, t in WIRE_PARAMS])
def wire(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WireLab]:
    backend, tls = request.param
    before = set(threading.enumerate())
    paths, server = start_wire(tmp_path / "wire", backend, tls)
    try:
        yield WireLab(tmp_path / "wire", paths, server, backend, tls, Renderer([TEMPLATES]))
    finally:
        port = server.port
        server.stop()
        store_for(str(paths.state.resolve())).close()
    assert port_closed(port), "the endpoint's port is still open after stop()"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stray = [t for t in set(threading.enumerate()) - before if t.is_alive() and t.name.startswith(("hvauto-lab",
                                                                                                        "lab-"))]
        if not stray:
            break
        time.sleep(0.05)
    assert not stray, f"threads left behind: {stray}"


@pytest.fixture
def psrp_wire(tmp_path: Path) -> Iterator[WireLab]:
    """PSRP over TLS only: for the tests of PSRP-specific behaviour."""
    paths, server = start_wire(tmp_path / "wire", "psrp", True)
    try:
        yield WireLab(tmp_path / "wire", paths, server, "psrp", True, Renderer([TEMPLATES]))
    finally:
        port = server.port
        server.stop()
        store_for(str(paths.state.resolve())).close()
    assert port_closed(port)
