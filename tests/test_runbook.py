"""Runbooks against the lab: validate finds every problem with its line and calls no host; runs
journal each step and host; failures drop hosts or abort; --check changes nothing."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(state))
    return state


def write(lab: Lab, text: str, name: str = "rb.yml") -> Path:
    path = lab.dir / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def journal_rows(state: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(state / "journal.db")
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


REPORT = """
name: report
vars:
  names: []
target: hyperv
steps:
  - name: facts
    host.facts: {}
    register: facts
  - name: list VMs where there are some
    vm.list:
      name: "{{ names }}"
    when: "facts.hosts[host].vm_count > 0"
    register: vms
"""


def test_run_journals_every_step_and_host(lab: Lab, _state: Path) -> None:
    write(lab, REPORT)
    res = hv("runbook", "run", "rb.yml")
    assert res.code == 0, res.err
    assert "run 1 ok: 4 ok (0 changed), 0 failed, 2 skipped" in res.out
    assert "[2/2] list VMs where there are some (vm.list) on hostA, hostB, hv12" in res.err
    rows = journal_rows(_state, "SELECT idx, host, state, attempts FROM tasks ORDER BY idx, host")
    assert rows == [(0, "hostA", "done", 1), (0, "hostB", "done", 1), (0, "hv12", "done", 1),
                    (1, "hostA", "done", 1), (1, "hostB", "skipped", 0), (1, "hv12", "skipped", 0)]
    # `when` used the registered facts: only hostA has VMs, so only hostA was asked for them.
    assert lab.calls(template="vm_list") == 1
    shown = hv("runbook", "show", "1", "-o", "json").json()
    assert shown["state"] == "ok"
    vms = next(t for t in shown["steps"][1]["tasks"] if t["host"] == "hostA")["result"]["vms"]
    assert {v["name"] for v in vms} == {"vm01", "vm02", "web01"}
    assert {c["template"] for c in shown["calls"]} == {"host_facts", "vm_list"}
    history = hv("runbook", "history", "-o", "json").json()["runs"]
    assert [(r["run"], r["runbook"], r["state"]) for r in history] == [(1, "report", "ok")]


def test_json_output_is_one_event_per_line(lab: Lab) -> None:
    write(lab, REPORT)
    res = hv("runbook", "run", "rb.yml", "-o", "json", "--limit", "hostA")
    assert res.code == 0, res.err
    events = res.json_lines()
    assert [e["event"] for e in events] == ["run.started", "step.started", "task", "step.started", "task",
                                            "run.finished"]
    assert events[-1]["counts"] == {"ok": 2, "changed": 0, "failed": 0, "skipped": 0}


def test_var_overrides_runbook_defaults(lab: Lab) -> None:
    write(lab, REPORT)
    res = hv("runbook", "run", "rb.yml", "--limit", "hostA", "--var", "names=[vm02]", "-o", "json")
    assert res.code == 0, res.err
    shown = hv("runbook", "show", "1", "-o", "json").json()
    task = shown["steps"][1]["tasks"][0]
    assert task["inputs"]["name"] == ["vm02"]
    assert [v["name"] for v in task["result"]["vms"]] == ["vm02"]


def test_vars_file_and_inventory_vars_layer(lab: Lab) -> None:
    inv = lab.paths.inventory
    inv.write_text(inv.read_text().replace("[settings]\n", "[settings]\nvars = { names = [\"web01\"] }\n"))
    write(lab, REPORT)
    res = hv("runbook", "run", "rb.yml", "--limit", "hostA")
    assert res.code == 0, res.err
    assert hv("runbook", "show", "1", "-o", "json").json()["vars"]["names"] == ["web01"]
    (lab.dir / "v.yml").write_text("names: [vm01]\n")
    assert hv("runbook", "run", "rb.yml", "--limit", "hostA", "--vars-file", "v.yml").code == 0
    assert hv("runbook", "show", "2", "-o", "json").json()["vars"]["names"] == ["vm01"]


BAD = [
    ("typo in an operation",
     """
     name: bad
     target: hyperv
     steps:
       - name: list
         vm.lst: {}
     """, 5, "unknown operation 'vm.lst' (did you mean 'vm.list'?)"),
    ("undefined variable",
     """
     name: bad
     target: hyperv
     vars:
       names: []
     steps:
       - vm.list:
           name: "{{ nmaes }}"
     """, 7, "undefined variable 'nmaes' (did you mean 'names'?)"),
    ("unknown host",
     """
     name: bad
     steps:
       - host.facts: {}
         hosts: [hostA, hostZ]
     """, 4, "unknown host or group 'hostZ'"),
    ("unknown option",
     """
     name: bad
     target: hostA
     steps:
       - vm.list:
           names: [vm01]
     """, 5, "vm.list: unknown option 'names' (did you mean 'name'?)"),
    ("wrong type",
     """
     name: bad
     target: hostA
     steps:
       - vm.list: {}
         retries: many
     """, 5, "retries: expected an integer, got a string"),
    ("not YAML",
     """
     name: bad
     steps:
       - vm.list: {name: [}
     """, 3, "not valid YAML"),
    ("register used before it is set",
     """
     name: bad
     target: hostA
     steps:
       - vm.list: {}
         when: "facts.ok"
       - host.facts: {}
         register: facts
     """, 5, "undefined variable 'facts'"),
    ("templated host through a variable",
     """
     name: bad
     vars:
       where: hostQ
     steps:
       - host.facts: {}
         hosts: "{{ where }}"
     """, 6, "unknown host or group 'hostQ'"),
    ("variable with no value",
     """
     name: bad
     vars:
       patch_host: ~
     steps:
       - host.facts: {}
         hosts: "{{ patch_host }}"
     """, 3, "variable 'patch_host' has no value"),
    ("hosts on a step that runs once",
     """
     name: bad
     steps:
       - smb.show: {name: VMs, server: fs01}
         hosts: hyperv
     """, 4, "smb.show runs once per step and names its hosts in its options"),
    ("unknown host in an option",
     """
     name: bad
     steps:
       - migrate:
           vm: vm01
           dest: hostC
     """, 5, "unknown host or group 'hostC'"),
    ("bad when expression",
     """
     name: bad
     target: hostA
     steps:
       - vm.list: {}
         when: "facts.ok and"
     """, 5, "bad expression"),
    ("missing required option",
     """
     name: bad
     steps:
       - migrate: {vm: vm01}
     """, 3, "migrate: missing required option 'dest'"),
    ("a variable named like a built-in",
     """
     name: bad
     target: hostA
     vars:
       host: hostB
     steps:
       - vm.list: {}
     """, 4, "'host' is reserved"),
    ("two operations in a step",
     """
     name: bad
     target: hostA
     steps:
       - vm.list: {}
         host.facts: {}
     """, 4, "one operation per step"),
]


@pytest.mark.parametrize(("case", "text", "line", "needle"), BAD, ids=[b[0] for b in BAD])
def test_validate_reports_file_line_and_reason_and_calls_no_host(lab: Lab, case: str, text: str, line: int,
                                                                  needle: str) -> None:
    write(lab, text)
    for argv in (["runbook", "validate", "rb.yml"], ["runbook", "run", "rb.yml"]):
        res = hv(*argv)
        assert res.code == ExitCode.USAGE, (case, res.out, res.err)
        assert f"rb.yml:{line}: " in res.err, res.err
        assert needle in res.err, res.err
        assert "Traceback" not in res.err
    assert lab.calls() == 0


def test_validate_lists_every_problem_at_once(lab: Lab) -> None:
    write(lab, """
    name: bad
    target: hyperv
    steps:
      - vm.lst: {}
      - vm.list:
          name: "{{ nope }}"
      - host.facts: {}
        hosts: ghost
    """)
    res = hv("runbook", "validate", "rb.yml", "-o", "json")
    assert res.code == ExitCode.USAGE
    problems = res.json()["problems"]
    assert [p.split(": ")[0] for p in problems] == ["rb.yml:4", "rb.yml:6", "rb.yml:8"]


def test_unknown_limit_is_a_validation_problem(lab: Lab) -> None:
    write(lab, REPORT)
    res = hv("runbook", "run", "rb.yml", "--limit", "hostX")
    assert res.code == ExitCode.USAGE
    assert "--limit: unknown host or group 'hostX'" in res.err
    assert lab.calls() == 0


def test_a_host_that_fails_drops_out_and_the_run_is_partial(lab: Lab, _state: Path) -> None:
    write(lab, """
    name: two steps
    target: [hostA, hostB]
    steps:
      - host.facts: {}
      - vm.list: {}
    """)
    hv("lab", "fault", "hostB", "--down")
    res = hv("--retries", "1", "runbook", "run", "rb.yml")
    assert res.code == ExitCode.PARTIAL, res.err
    assert "some hosts failed: hostB" in res.err
    rows = journal_rows(_state, "SELECT idx, host, state FROM tasks ORDER BY idx, host")
    assert rows == [(0, "hostA", "done"), (0, "hostB", "failed"), (1, "hostA", "done")]
    assert lab.calls(host="hostB", template="vm_list") == 0


def test_a_step_that_fails_everywhere_aborts(lab: Lab) -> None:
    write(lab, """
    name: abort
    target: hostB
    steps:
      - host.facts: {}
      - vm.list: {}
    """)
    hv("lab", "fault", "hostB", "--down")
    res = hv("--retries", "1", "runbook", "run", "rb.yml")
    assert res.code == ExitCode.ABORTED
    assert "aborted: step 1 (host.facts) failed on every host" in res.err
    assert "hvauto runbook resume 1" in res.err
    hv("lab", "fault", "hostB", "--up")
    res = hv("runbook", "resume", "1")
    assert res.code == 0, res.err
    assert lab.calls(host="hostB", template="vm_list") == 1


def test_continue_on_error_keeps_the_host(lab: Lab) -> None:
    write(lab, """
    name: keep going
    target: hostB
    steps:
      - host.facts: {}
        continue_on_error: true
        register: f
      - vm.list: {}
        when: "not f.ok"
    """)
    hv("lab", "fault", "hostB", "--fail-next", "1", "--kind", "permanent")
    res = hv("runbook", "run", "rb.yml", "-o", "json")
    assert res.code == 0, res.err
    tasks = [(e["step"], e["state"]) for e in res.json_lines() if e["event"] == "task"]
    assert tasks == [(1, "failed"), (2, "done")]


def test_step_retries_rerun_a_failed_operation(lab: Lab) -> None:
    write(lab, """
    name: retry
    target: hostA
    steps:
      - vm.list: {}
        retries: 2
        retry_delay: 0
    """)
    hv("lab", "fault", "hostA", "--fail-next", "2", "--kind", "permanent")
    res = hv("runbook", "run", "rb.yml")
    assert res.code == 0, res.err
    assert lab.calls(host="hostA", template="vm_list") == 3
    shown = hv("runbook", "show", "1", "-o", "json").json()
    assert shown["steps"][0]["tasks"][0]["attempts"] == 1  # one task, retried inside it
    assert shown["steps"][0]["tasks"][0]["state"] == "done"


def test_check_mode_changes_nothing(lab: Lab) -> None:
    write(lab, REPORT)
    before = lab.store.snapshot()
    res = hv("runbook", "run", "rb.yml", "--check")
    assert res.code == 0, res.err
    assert "(check mode)" in res.out
    assert lab.store.snapshot() == before
    assert hv("runbook", "show", "1", "-o", "json").json()["check_mode"] is True


def test_show_unknown_run_is_not_found(lab: Lab) -> None:
    res = hv("runbook", "show", "42")
    assert res.code == ExitCode.NOT_FOUND
    assert "no run 42" in res.err


def test_journal_path_from_inventory_settings(lab: Lab) -> None:
    inv = lab.paths.inventory
    inv.write_text(inv.read_text().replace("[settings]\n", "[settings]\njournal = \"runs/j.db\"\n"))
    write(lab, REPORT)
    assert hv("runbook", "run", "rb.yml", "--limit", "hostA").code == 0
    assert (lab.dir / "runs" / "j.db").is_file()


def test_schema_lists_every_operation_and_is_json(lab: Lab) -> None:
    from hvauto.runbook.operations import OPERATIONS

    res = hv("runbook", "schema")
    assert res.code == 0
    schema = json.loads(res.out)
    step = schema["$defs"]["step"]
    assert set(OPERATIONS) <= set(step["properties"])
    assert {o["required"][0] for o in step["oneOf"]} == set(OPERATIONS)


def test_every_registered_operation_matches_its_function() -> None:
    """The registry names real functions whose keywords are the options (lazy imports, checked here)."""
    import inspect

    from hvauto.runbook import operations

    positional = {operations._vm_list, operations._host_facts, operations._switch_list}
    for name, op in operations.OPERATIONS.items():
        fn = op.function()
        if op.adapter in positional:
            continue
        params = inspect.signature(fn).parameters
        wanted = [o.param or k for k, o in op.options.items()]
        if op.host_option:
            wanted.append(op.host_option)
        if op.changes:
            wanted.append("what_if")
        missing = [w for w in wanted if w not in params]
        assert not missing, f"{name}: {op.func} has no parameter(s) {missing}"
        required = [p for p, v in params.items() if v.default is inspect.Parameter.empty
                    and v.kind is inspect.Parameter.KEYWORD_ONLY]
        optional_here = [p for p in required if p not in wanted]
        assert not optional_here, f"{name}: {op.func} requires {optional_here}, which the registry does not offer"
        for k, o in op.options.items():
            if params[o.param or k].default is inspect.Parameter.empty and k != op.host_option:
                assert o.required, f"{name}: option {k!r} is required by {op.func}"


def test_assert_stops_a_host_with_its_message(lab: Lab) -> None:
    write(lab, """
    name: only empty hosts
    target: [hostA, hostB]
    steps:
      - host.facts: {}
        register: facts
      - assert:
          that: "{{ facts.hosts[host].vm_count == 0 }}"
          message: "{{ host }} has no VMs"
      - vm.list: {}
    """)
    res = hv("runbook", "run", "rb.yml")
    assert res.code == ExitCode.PARTIAL
    assert "not so: hostA has no VMs" in res.out
    assert lab.calls(host="hostA", template="vm_list") == 0
    assert lab.calls(host="hostB", template="vm_list") == 1


@pytest.mark.parametrize(("data", "needle"), [
    (b"name: x\xff\nsteps: []\n", "rb.yml:1: cannot read: not UTF-8 text (byte 0xff)"),
    (b"name: x\x07\nsteps:\n  - vm.list: {}\n", "rb.yml:1: not valid YAML: special characters are not allowed"),
    (b"name: x\nsteps:\n  - vm.list: {}\n    name: a\n    name: b\n", "rb.yml:5: duplicate key 'name'"),
    (b"name: !!python/object:os.system x\nsteps: []\n", "could not determine a constructor"),
    (b"- a\n- b\n", "rb.yml:1: expected a mapping, got a list"),
    (b"", "rb.yml:1: the runbook is empty"),
    (b"name: x\nsteps:\n  - ? [a, b]\n    : 1\n", "rb.yml:3: a key must be a name"),
])
def test_malformed_files_are_validation_errors_not_crashes(lab: Lab, data: bytes, needle: str) -> None:
    (lab.dir / "rb.yml").write_bytes(data)
    res = hv("runbook", "validate", "rb.yml")
    assert res.code == ExitCode.USAGE, res.err
    assert needle in res.err
    assert "internal error" not in res.err


def test_any_text_is_either_valid_or_a_validation_error(lab: Lab) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(["name: x\n", "steps:\n", "  - vm.list: {}\n", "  - host.facts:\n", "    hosts: ",
                              "hostA\n", "{{ x }}\n", "    when: \"", "'\n", "  - ", "vars: {x: 1}\n", ": ", "[", "]",
                              "\t", "\x00", "\u00e9", "&a ", "*a\n", "<<: *a\n", "!!binary ", "? ", "{%", "%}"])

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(pieces, max_size=12).map("".join) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
    def check(text: str) -> None:
        (lab.dir / "rb.yml").write_text(text, encoding="utf-8", errors="surrogateescape")
        res = hv("runbook", "validate", "rb.yml", "--limit", "hostA")
        assert res.code in (0, ExitCode.USAGE), (text, res.err)
        assert "internal error" not in res.err

    check()
    assert lab.calls() == 0
