"""Every example runbook in playbooks/ validates, runs against the lab, and changes nothing in
--check mode (the whole estate is compared); a second real run changes nothing either."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hvauto.runbook.schema import errors, full_schema

from .conftest import Lab, hv

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


def runbooks() -> list[Path]:
    """The runbooks among the playbooks (fabric specs live there too)."""
    out = []
    for p in sorted(PLAYBOOKS.glob("*.y*ml")):
        data = yaml.safe_load(p.read_text())
        if isinstance(data, dict) and "steps" in data:
            out.append(p)
    return out


#: Variables an example needs (its `~` defaults), as a user would give them.
VARS = {
    "onboard-host": ["--var", "new_host=hostB"],
    "nightly-evacuate": ["--var", "patch_host=hostA"],
}


@pytest.fixture(autouse=True)
def _fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HVAUTO_POLL_INTERVAL", "0.01")


def test_the_four_examples_are_there() -> None:
    assert {p.stem for p in runbooks()} >= {"onboard-host", "smb-storage", "nightly-evacuate", "vm-report"}


@pytest.mark.parametrize("path", runbooks(), ids=lambda p: p.stem)
def test_example_matches_the_published_schema(path: Path) -> None:
    assert list(errors(yaml.safe_load(path.read_text()), full_schema())) == []


def test_the_schema_catches_a_typo() -> None:
    doc = {"name": "x", "steps": [{"vm.lst": {}}]}
    assert any("needs exactly one of" in why for _, why in errors(doc, full_schema()))


@pytest.mark.parametrize("path", runbooks(), ids=lambda p: p.stem)
def test_example_validates_checks_and_runs(lab: Lab, path: Path) -> None:
    with lab.store.transaction() as est:
        est.set_meta("time_scale", "200")
    extra = VARS.get(path.stem, [])
    res = hv("runbook", "validate", str(path), *extra)
    assert res.code == 0, res.err
    assert lab.calls() == 0

    before = lab.store.snapshot()
    res = hv("runbook", "run", str(path), "--check", *extra)
    assert res.code == 0, res.err
    assert lab.store.snapshot() == before, "--check changed the lab"

    res = hv("runbook", "run", str(path), *extra, "-o", "json")
    assert res.code == 0, res.err
    assert res.json_lines()[-1]["state"] == "ok"

    again = hv("runbook", "run", str(path), *extra, "-o", "json")
    assert again.code == 0, again.err
    changed = [(e["step"], e["host"]) for e in again.json_lines() if e["event"] == "task" and e["changed"]]
    assert changed == [], "a second run changed something"


@pytest.mark.parametrize("stem", sorted(VARS))
def test_examples_say_which_variable_is_missing(lab: Lab, stem: str) -> None:
    res = hv("runbook", "validate", str(PLAYBOOKS / f"{stem}.yml"))
    assert res.code == 2
    name = VARS[stem][1].split("=")[0]
    assert f"variable {name!r} has no value" in res.err
    assert lab.calls() == 0


def test_nightly_evacuate_empties_the_host(lab: Lab) -> None:
    with lab.store.transaction() as est:
        est.set_meta("time_scale", "200")
    res = hv("runbook", "run", str(PLAYBOOKS / "nightly-evacuate.yml"), "--var", "patch_host=hostA")
    assert res.code == 0, res.err
    assert "hostA: empty, ready for patching" in res.out
    assert "vm01 -> hostB 100% Completed" in res.err  # live progress of each move
    assert hv("vm", "list", "hostA", "-o", "json").json()["vms"] == []
