"""hvauto doctor: reach, the migration matrix, shares in use; each reason with its fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hvauto.errors import ExitCode
from tests.conftest import Lab, hv
from tests.test_migration_rules import merge

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = yaml.safe_load((ROOT / "hvauto" / "lab" / "estates" / "default.yaml").read_text(encoding="utf-8"))
ESTATE_CASES: list[dict[str, Any]] = yaml.safe_load((ROOT / "tests" / "estates" / "doctor.yaml").read_text())


def _pair(doc: dict[str, Any], source: str, dest: str) -> dict[str, Any]:
    return next(p for p in doc["pairs"] if p["source"] == source and p["dest"] == dest)


def _host_doc(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(h for h in doc["hosts"] if h["host"] == name)


def test_default_lab_matrix_then_the_grant_it_names_makes_the_pair_ready(lab: Lab,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    res = hv("doctor", "-o", "json")
    assert res.code == ExitCode.NOT_READY, res.err
    doc = res.json()
    assert doc["event"] == "result" and doc["ready"] is False
    assert _pair(doc, "hostA", "hostB")["verdict"] == "ready"
    back = _pair(doc, "hostB", "hostA")
    assert back["verdict"] == "blocked"
    fixes = {p["fix"] for p in back["problems"] if p["blocking"]}
    assert fixes == {"hvauto delegation grant hostB --to hostA"}
    assert any(p["check"] == "delegation" for p in back["problems"])
    hv12 = {p["check"] for p in _pair(doc, "hostA", "hv12")["problems"] if p["blocking"]}
    assert {"dest.migration", "dest.auth", "delegation", "dest.config_version", "dest.switch"} <= hv12
    assert {p["check"] for p in _pair(doc, "hv12", "hostA")["problems"]} >= {"source.migration", "source.auth"}
    # the text view says the same, within 80 columns
    text = hv("doctor")
    assert text.code == ExitCode.NOT_READY
    assert "hostB -> hostA: blocked" in text.out and "fix: hvauto delegation grant hostB --to hostA" in text.out
    assert "hostA -> hostB" not in text.out  # a ready pair has no reasons
    assert all(len(line) <= 80 for line in text.out.splitlines()), max(text.out.splitlines(), key=len)

    assert hv("delegation", "grant", "hostB", "--to", "hostA").code == 0
    after = hv("doctor", "-o", "json").json()
    assert _pair(after, "hostB", "hostA")["verdict"] == "ready"


def test_everything_ready_exits_0(lab: Lab) -> None:
    assert hv("delegation", "grant", "hostB", "--to", "hostA").code == 0
    res = hv("doctor", "hostA", "hostB")
    assert res.code == 0, res.out
    assert "everything is ready" in res.out


def test_doctor_costs_one_read_per_host_and_one_ad_read(lab: Lab) -> None:
    before = lab.calls()
    hv("doctor")
    unknown = [h for h, c in lab.inventory.hosts.items() if not c.os]  # asked their version first
    assert lab.calls() - before == len(lab.inventory.hosts) + 1 + len(unknown)
    for host in lab.inventory.hosts:
        assert lab.calls(host=host, template="doctor_host") == 1
    assert lab.calls(template="ad_computer_get") == 1


def _unreachable(lab: Lab) -> None:
    assert hv("lab", "fault", "hostB", "--down").code == 0


CASES: list[tuple[str, Callable[[Lab], None], str, str, str]] = [
    # id, setup, where the reason is (host name or "share"), its text, its fix; the situations an estate
    # file holds are in tests/estates/doctor.yaml (below), a fault the lab injects here
    ("unreachable", _unreachable, "hostB", "no connection to hostB", "firewall lets 5986 through"),
]


@pytest.mark.parametrize(("setup", "where", "text", "fix"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_situation_gives_its_reason_and_fix(lab: Lab, setup: Callable[[Lab], None], where: str, text: str,
                                                 fix: str) -> None:
    setup(lab)
    res = hv("doctor", "-o", "json")
    assert res.code in (0, ExitCode.NOT_READY), res.err
    doc = res.json()
    if where == "share":
        found = [(p["message"], p["fix"]) for s in doc["shares"] for p in s["problems"]]
    else:
        h = _host_doc(doc, where)
        found = [(s["detail"], s["fix"]) for s in h["stages"] if not s["ok"] or s["warning"]]
        found += [(p["message"], p["fix"]) for p in h["problems"]]
    assert any(text in m and fix in (f or "") for m, f in found), found
    shown = hv("doctor")
    assert text in " ".join(shown.out.split()), shown.out


def test_an_unreachable_host_leaves_its_pairs_unknown_and_the_rest_judged(lab: Lab) -> None:
    _unreachable(lab)
    doc = hv("doctor", "-o", "json").json()
    assert _host_doc(doc, "hostB")["reachable"] is False
    assert _pair(doc, "hostA", "hostB")["verdict"] == "unknown"
    assert _pair(doc, "hostA", "hv12")["verdict"] == "blocked"
    assert lab.calls(host="hostB", template="doctor_host") == 0  # the probe stopped before any script


def test_render_lists_the_reads_and_contacts_no_host(lab: Lab) -> None:
    res = hv("doctor", "--render", "-o", "json")
    assert res.code == 0, res.err
    steps = res.json_lines()
    assert {s["template"] for s in steps} == {"doctor_host", "ad_computer_get", "host_facts"}
    assert [s["host"] for s in steps if s["template"] == "host_facts"] == ["hv12"]  # no version in the inventory
    assert all(s["read_only"] for s in steps)
    assert lab.calls() == 0


def test_unknown_host_is_not_found(lab: Lab) -> None:
    res = hv("doctor", "nosuch", "-o", "json")
    assert res.code == ExitCode.NOT_FOUND
    assert res.json()["event"] == "error"


@pytest.mark.parametrize("case", ESTATE_CASES, ids=[c["name"] for c in ESTATE_CASES])
def test_each_estate_situation_gives_its_reason_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       case: dict[str, Any]) -> None:
    estate = tmp_path / "estate.yaml"
    estate.write_text(yaml.safe_dump(merge(DEFAULT, case.get("patch") or {}), sort_keys=False), encoding="utf-8")
    assert hv("lab", "init", str(tmp_path / "lab"), "--estate", str(estate)).code == 0
    monkeypatch.chdir(tmp_path / "lab")
    assert hv("delegation", "grant", "hostB", "--to", "hostA").code == 0  # only the situation itself is left
    res = hv("doctor", "hostA", "hostB", "fs01", "-o", "json")
    doc = res.json()
    if case["where"] == "share":
        found = [(p["message"], p["fix"]) for s in doc["shares"] for p in s["problems"]]
    else:
        h = _host_doc(doc, case["where"])
        found = [(s["detail"], s["fix"]) for s in h["stages"] if not s["ok"] or s["warning"]]
        found += [(p["message"], p["fix"]) for p in h["problems"]]
    assert any(case["says"] in m and case["fix"] in (f or "") for m, f in found), found
    assert res.code == (0 if case.get("ready") else ExitCode.NOT_READY), found


def test_the_network_probe_warns_of_a_certificate_that_expires_within_30_days() -> None:
    import datetime as dt

    from hvauto.remote.probe import expiry_stage

    now = dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc)
    soon, later = expiry_stage("Dec 10 00:00:00 2026 GMT", "hostA", now), expiry_stage("Jun  1 00:00:00 2027 GMT",
                                                                                         "hostA", now)
    assert soon.ok and soon.warning and "expires in 7 day(s)" in soon.detail and "renew" in soon.fix
    assert later.ok and not later.warning and "valid until 2027-06-01" in later.detail
