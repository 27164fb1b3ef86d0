"""The lab is held to the templates' contracts: every answer it gives matches the template's output schema.

The scenarios drive the real CLI over the in-process lab (and a few direct calls for states the CLI
reaches only mid-move); every answer a lab handler gives is recorded before any check and then
validated against its template's declared output. A field renamed on one side only fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hvauto import contract
from hvauto.errors import ContractError, ExitCode
from hvauto.lab import setup
from hvauto.lab import transport as lab_transport
from hvauto.lab.estate import GiB
from hvauto.lab.handlers import HANDLERS, handler_for
from hvauto.render import Renderer, default_renderer

from .conftest import Lab, hv

FAST = ("--poll-interval", "0.01")
SPEC = str(Path(__file__).resolve().parent.parent / "playbooks" / "fabric-converged.yaml")
SHARE = ("VMs", "--server", "fs01", "--path", "D:\\Shares\\VMs", "--hosts", "hostA,hostB")


def _speed(lab: Lab, scale: float) -> None:
    with lab.store.transaction() as est:
        est.set_meta("time_scale", str(scale))


def _vm(lab: Lab, name: str) -> dict[str, Any]:
    with lab.store.transaction() as est:
        return next(v for v in est.all("vm") if v["name"] == name)


def _reads(lab: Lab) -> None:
    for argv in (["vm", "list"], ["host", "show", "hostA"], ["host", "show", "hv12"], ["host", "show", "fs01"],
                 ["switch", "list"], ["smb", "share", "show", "VMs", "--server", "fs01"],
                 ["delegation", "show", "hostA"], ["fabric", "plan", "hostA", "--spec", SPEC], ["doctor"],
                 ["vm", "show", "vm01"], ["lab", "capture", "--to", "captured.yaml"]):
        hv(*argv)


def _changes(lab: Lab) -> None:
    _speed(lab, 2000)
    for argv in (["host", "migration", "hostA", "--max-vm", "3"], ["host", "migration", "hv12", "--enable"],
                 ["switch", "create", "hostA", "Int1", "--type", "internal"], ["switch", "remove", "hostA", "Int1"],
                 ["smb", "share", "create", *SHARE], ["smb", "share", "show", "VMs", "--server", "fs01"],
                 ["smb", "share", "remove", "VMs", "--server", "fs01"],
                 ["delegation", "grant", "hostB", "--to", "hostA"], ["delegation", "revoke", "hostB", "--to", "hostA"],
                 ["fabric", "apply", "hostA", "--spec", SPEC],
                 ["migrate", "--shared-nothing", "vm01", "hostB", *FAST],
                 ["storage", "move", "vm02", "D:\\Moved\\vm02", *FAST]):
        hv(*argv)


def _cancel(lab: Lab) -> None:
    _speed(lab, 0.01)  # the move would take minutes: still running when it is cancelled
    with lab.session() as session:
        session.run("hostA", "migrate_start", {"VmId": _vm(lab, "vm01")["id"], "DestinationHost": "hostB.lab.test",
                                               "DestinationStoragePath": "D:\\Hyper-V\\vm01", "IncludeStorage": True})
    hv("migrate", "--cancel", "vm01")


def _cluster(lab: Lab) -> None:
    _speed(lab, 2000)
    for host in ("hostA", "hostB"):
        with lab.store.transaction() as est:
            h = est.get("host", host)
            assert h is not None
            est.put("host", host, {**h, "cluster": "clu1"}, host=host)
    with lab.store.transaction() as est:
        vm = next(v for v in est.all("vm") if v["name"] == "vm01")
        vm.update(clustered=True, disks=[{"path": "C:\\ClusterStorage\\Volume1\\vm01\\vm01.vhdx",
                                          "size": 60 * GiB, "file_size": 22 * GiB}])
        est.put("vm", vm["key"], vm, host=vm["host"])
    hv("migrate", "--live", "vm01", "hostB", *FAST)


SCENARIOS: dict[str, Callable[[Lab], None]] = {"reads": _reads, "changes": _changes, "cancel": _cancel,
                                               "cluster": _cluster}
Answers = list[tuple[str, str, Any]]


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Answers:
    """Every answer a lab handler gives (template, host, result), recorded before anything checks it."""
    seen: Answers = []
    real = lab_transport.execute

    def recording(store: Any, host: str, template: str, *args: Any, **kw: Any) -> lab_transport.LabRun:
        run = real(store, host, template, *args, **kw)
        if run.doc.get("ok"):
            seen.append((template, host, run.doc["result"]))
        return run

    monkeypatch.setattr(lab_transport, "execute", recording)
    return seen


def _shipped_templates() -> list[str]:
    return [n for n in default_renderer().names() if handler_for(n) is not None]


def test_every_lab_answer_matches_its_templates_output_contract(lab: Lab, answers: Answers) -> None:
    for scenario in SCENARIOS.values():
        setup.reset(lab.paths.state, lab.paths.password)
        scenario(lab)
    renderer = default_renderer()
    broken = [f"{t} on {h}: {p}" for t, h, data in answers
              for p in contract.problems(t, renderer.meta(t).output, data)]
    assert not broken, "\n".join(broken)
    answered = {t for t, _, _ in answers}
    missing = sorted(set(_shipped_templates()) - answered)
    assert not missing, f"no scenario makes the lab answer {missing}: add one"


def test_every_shipped_template_has_a_lab_handler_and_a_contract() -> None:
    renderer = default_renderer()
    for name in renderer.names():
        assert name in HANDLERS or handler_for(name) is not None, f"{name} has no lab handler"
        schema = renderer.meta(name).output
        assert schema.get("type") == "object" or "$ref" in schema, f"{name}: output is not declared"


def test_a_field_renamed_by_the_lab_only_is_a_contract_error(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    real = HANDLERS["vm_list"]

    def renamed(call: Any) -> Any:
        out = real(call)
        for vm in out["vms"]:
            vm["memory_bytes"] = vm.pop("memory_startup_bytes")
        return out

    monkeypatch.setitem(HANDLERS, "vm_list", renamed)
    res = hv("vm", "list", "hostA")
    assert res.code == ExitCode.UNREACHABLE  # a ProtocolError: the answer cannot be understood
    assert "vm_list" in res.err and "memory_startup_bytes" in res.err and "memory_bytes" in res.err
    assert "Traceback" not in res.err
    with lab.session() as session, pytest.raises(ContractError) as info:
        session.run("hostA", "vm_list")
    assert info.value.template == "vm_list" and any("result.vms[0]" in p for p in info.value.problems)


def test_a_field_renamed_in_the_contract_only_fails_the_labs_answer(lab: Lab, tmp_path: Path) -> None:
    source = (default_renderer().dirs[-1] / "vm_list.ps1.j2").read_text(encoding="utf-8")
    (tmp_path / "vm_list.ps1.j2").write_text(source.replace("    memory_startup_bytes: int\n",
                                                            "    memory_start_bytes: int\n", 1), encoding="utf-8")
    renderer = Renderer(extra_dirs=[tmp_path])
    with lab.session(renderer=renderer) as session, pytest.raises(ContractError) as info:
        session.run("hostA", "vm_list")
    text = " ".join(info.value.problems)
    assert "memory_start_bytes" in text and "memory_startup_bytes" in text


@pytest.mark.parametrize(("spec", "good", "bad"), [
    ({"a": "str?", "b?": "int"}, {"a": None}, {"a": 1}),
    ({"xs": [{"n": "int"}]}, {"xs": [{"n": 1}]}, {"xs": [{"n": 1, "extra": 2}]}),
    ({"state": "Running|Off"}, {"state": "Off"}, {"state": "Paused"}),
    ({"counts": {"*": "int"}}, {"counts": {"x": 1}}, {"counts": {"x": "1"}}),
    ("job", {"id": "1"}, {"id": 1}),
])
def test_the_short_form_means_what_it_says(spec: Any, good: Any, bad: Any) -> None:
    schema = contract.schema(spec, {"job": {"id": "str"}})
    assert contract.problems("t", schema, good) == []
    assert contract.problems("t", schema, bad)


@pytest.mark.parametrize("spec", [{"a": "strng"}, {"xs": ["int", "str"]}, {"a": 5}])
def test_a_bad_short_form_is_refused(spec: Any) -> None:
    with pytest.raises(contract.ContractSyntaxError):
        contract.schema(spec)
