"""TLS validation over the wire with one shared client context per trust setting (hvauto.remote.psrp)."""

from __future__ import annotations

import pytest

from hvauto.errors import TLSError
from hvauto.inventory import load
from hvauto.remote import psrp
from hvauto.remote.retry import NO_RETRY
from hvauto.session import Session
from tests.wire.conftest import WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]


def _session(wire: WireLab, old: str, new: str) -> Session:
    text = wire.paths.inventory.read_text()
    assert old in text
    wire.paths.inventory.write_text(text.replace(old, new))
    return Session(load(wire.paths.inventory), renderer=wire.renderer, retry=NO_RETRY)


def test_the_lab_ca_validates_and_every_host_shares_one_context(psrp_wire: WireLab) -> None:
    with psrp_wire.session(retry=NO_RETRY) as s:
        assert s.run("hostA", "vm_list").ok and s.run("hostB", "vm_list").ok
        sessions = [s.transport(h)._pool.connection.transport.session for h in ("hostA", "hostB")]  # type: ignore[attr-defined,union-attr]
    contexts = {id(x.adapters["https://"].poolmanager.connection_pool_kw["ssl_context"]) for x in sessions}
    assert len(contexts) == 1


def test_a_certificate_the_trust_does_not_cover_is_refused(psrp_wire: WireLab) -> None:
    # The system's CA bundle does not know the lab's CA.
    with _session(psrp_wire, 'ca_path = "lab/ca.pem"', "") as s, pytest.raises(TLSError):
        s.run("hostA", "vm_list")


def test_a_name_the_certificate_does_not_cover_is_refused(psrp_wire: WireLab) -> None:
    # The lab's certificate names 127.0.0.1 and localhost; 127.0.0.2 is the same loopback but not its name.
    psrp_wire.server.stop()
    from hvauto.lab.wire import certs
    from hvauto.lab.wire.server import TLSFiles, WireServer

    files = certs.files(psrp_wire.paths.state.parent)
    server = WireServer(psrp_wire.paths.state, address="0.0.0.0", port=psrp_wire.server.port,
                        tls=TLSFiles(files.cert, files.key), renderer=psrp_wire.renderer).start()
    try:
        with _session(psrp_wire, 'address = "127.0.0.1"', 'address = "127.0.0.2"') as s, pytest.raises(TLSError):
            s.run("hostA", "vm_list")
        with _session(psrp_wire, 'address = "127.0.0.2"', 'address = "localhost"') as s:
            assert s.run("hostA", "vm_list").ok
    finally:
        server.stop()


def test_a_context_per_trust_setting() -> None:
    assert psrp.shared_tls_context(True) is psrp.shared_tls_context(True)
    assert psrp.shared_tls_context(False) is not psrp.shared_tls_context(True)
    assert psrp.shared_tls_context(True).check_hostname and not psrp.shared_tls_context(False).check_hostname
