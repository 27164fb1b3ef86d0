"""The fabric, switch and host-migration commands over real PSRP (and WinRS) against the lab on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvauto.errors import ExitCode
from tests.conftest import Lab, hv
from tests.wire.conftest import WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]

EXAMPLE = str(Path(__file__).resolve().parents[2] / "playbooks" / "fabric-converged.yaml")


def test_the_converged_spec_plans_applies_and_re_applies_as_a_no_op_over_psrp(psrp_wire: WireLab) -> None:
    inv = str(psrp_wire.inventory_path)
    plan = hv("-i", inv, "fabric", "plan", "hostA,hostB,hv12", "--spec", EXAMPLE, "-o", "json")
    assert plan.code == 0, plan.err
    teaming = {h: p["teaming"] for h, p in plan.json()["hosts"].items()}
    assert teaming == {"hostA": "set", "hostB": "set", "hv12": "lbfo"}
    applied = hv("-i", inv, "fabric", "apply", "hostA,hostB,hv12", "--spec", EXAMPLE, "-o", "json")
    assert applied.code == 0, applied.err
    assert applied.json()["applied"] is True
    assert applied.json()["hosts"]["hv12"]["steps"][0] == "created LBFO team Converged-Team"
    again = hv("-i", inv, "fabric", "apply", "hostA,hostB,hv12", "--spec", EXAMPLE, "-o", "json")
    assert again.code == 0, again.err
    assert again.json()["changed"] is False
    assert psrp_wire.store.calls(template="fabric_apply") == 3


def test_lbfo_on_2022_is_refused_over_psrp(psrp_wire: WireLab, tmp_path: Path) -> None:
    spec = tmp_path / "lbfo.yaml"
    spec.write_text(Path(EXAMPLE).read_text().replace("teaming: auto", "teaming: lbfo"))
    res = hv("-i", str(psrp_wire.inventory_path), "fabric", "apply", "hostB", "--spec", str(spec))
    assert res.code == ExitCode.PREFLIGHT
    assert "LBFO" in res.err and "2022" in res.err
    assert psrp_wire.store.calls(template="fabric_apply") == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["fabric", "apply", "hostA,hv12", "--spec", EXAMPLE, "-o", "json"],
        ["switch", "list", "-o", "json"],
        ["switch", "create", "hostB", "Lab", "--type", "internal", "-o", "json"],
        ["switch", "remove", "hostA", "External"],
        ["host", "migration", "hv12", "--enable", "--auth", "kerberos", "--networks", "10.0.50.0/24", "-o", "json"],
    ],
    ids=["fabric-apply", "switch-list", "switch-create", "switch-remove-refused", "host-migration"],
)
def test_same_results_as_the_in_process_lab(lab: Lab, wire: WireLab, argv: list[str]) -> None:
    here = hv("-i", str(lab.paths.inventory), *argv)
    there = hv("-i", str(wire.inventory_path), *argv)
    assert (there.code, there.err) == (here.code, here.err)
    assert there.out.replace(str(wire.inventory_path.parent), "") == here.out.replace(str(lab.paths.inventory.parent), "")
    assert "Traceback" not in there.err
