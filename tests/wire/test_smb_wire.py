"""SMB shares and delegation over the wire: the real back-ends against the lab served on loopback.

The same commands run against the in-process lab and the served one must give the same
answers; the share and the AD account then look the same in both estates.
"""

from __future__ import annotations

import pytest

from tests.conftest import Lab, hv
from tests.wire.conftest import WireLab
from tests.wire.test_wire import normalized, strip_addresses

pytestmark = [pytest.mark.slow, pytest.mark.wire]

CREATE = ["smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs", "--hosts", "hostA,hostB"]

#: In order: each step sees the state the steps before it left, in both estates.
STEPS: list[list[str]] = [
    ["smb", "share", "show", "VMs", "--server", "fs01", "-o", "json"],  # not there yet: exit 4
    [*CREATE, "--what-if", "-o", "json"],
    [*CREATE, "-o", "json"],
    [*CREATE, "-o", "json"],  # a re-run changes nothing
    ["smb", "share", "show", "VMs", "--server", "fs01", "-o", "json"],
    ["smb", "share", "grant", "VMs", "--server", "fs01", "--hosts", "hv12", "-o", "json"],
    ["smb", "share", "revoke", "VMs", "--server", "fs01", "--hosts", "hv12", "-o", "json"],
    ["smb", "share", "create", "V/Ms", "--server", "fs01", "--path", "rel", "--hosts", "nosuch"],  # exit 2
    ["delegation", "grant", "hostB", "--to", "hostA", "-o", "json"],
    ["delegation", "grant", "hostB", "--to", "hostA", "-o", "json"],
    ["delegation", "show", "hostB", "-o", "json"],
    ["delegation", "revoke", "hostB", "--to", "hostA", "--services", "cifs", "-o", "json"],
    ["smb", "share", "remove", "VMs", "--server", "fs01", "-o", "json"],
]


EXPECTED_CODES = [4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0]


def test_share_and_delegation_steps_match_the_in_process_lab(lab: Lab, wire: WireLab) -> None:
    for argv, code in zip(STEPS, EXPECTED_CODES, strict=True):
        here = hv("-i", str(lab.paths.inventory), *argv)
        there = hv("-i", str(wire.inventory_path), *argv)
        assert here.code == code, (argv, here.err)
        assert (there.code, there.err) == (here.code, here.err), argv
        assert strip_addresses(normalized(there.out)) == strip_addresses(normalized(here.out)), argv
        assert "Traceback" not in there.err
    with lab.store.transaction() as est_here:
        here_state = {k: est_here.all(k) for k in ("share", "folder", "computer")}
    with wire.store.transaction() as est_there:
        there_state = {k: est_there.all(k) for k in ("share", "folder", "computer")}
    assert there_state == here_state
    assert any(c["name"] == "hostB" and "Microsoft Virtual System Migration Service/hostA.lab.test"
               in c["allowed_to_delegate_to"] for c in there_state["computer"])
