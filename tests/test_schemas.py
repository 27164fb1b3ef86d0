"""Runbooks and fabric specs are checked against their JSON Schemas by the jsonschema library:
every problem at once, each ``FILE:LINE: key: reason``, whole values matched by patterns."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hvauto import schemas
from hvauto.errors import ExitCode
from hvauto.runbook.schema import base_schema, full_schema

from .conftest import Lab, hv
from .test_startup import _imported_modules

REPO = Path(__file__).resolve().parent.parent
SPEC = (REPO / "playbooks" / "fabric-converged.yaml").read_text(encoding="utf-8")


def test_the_shipped_schemas_are_valid_2020_12_schemas() -> None:
    for schema in (schemas.load("fabric.schema.json"), base_schema(), full_schema()):
        schemas.check_schema(schema)


def test_help_imports_neither_jsonschema_nor_the_powershell_parser() -> None:
    names = _imported_modules("--help")
    assert not {n for n in names if n.split(".")[0] in ("jsonschema", "referencing", "tree_sitter")}


@pytest.mark.parametrize(("pattern", "value", "ok"), [
    ("^[A-Za-z]+$", "Converged", True),
    ("^[A-Za-z]+$", "Converged\n", False),
    ("^[A-Za-z_][A-Za-z0-9_]*$", "facts\n", False),
    ("^a[$]$", "a$", True),
    ("^a\\$$", "a$", True),
    ("^a\\$$", "a$\n", False),
    ("\\{\\{|\\{%", "x {{ y }}", True),
])
def test_patterns_match_the_whole_value(pattern: str, value: str, ok: bool) -> None:
    assert (schemas.validate({"type": "string", "pattern": pattern}, value) == []) is ok


def test_an_integer_is_written_as_one() -> None:
    assert schemas.validate({"type": "integer"}, 2) == []
    assert schemas.validate({"type": "integer"}, 2.0) == [((), "expected an integer, got a number")]
    assert schemas.validate({"type": "integer"}, True) == [((), "expected an integer, got a boolean")]


def test_one_problem_per_unknown_key_with_a_suggestion() -> None:
    schema = {"type": "object", "additionalProperties": False, "properties": {"extra": {}, "name": {}}}
    assert schemas.validate(schema, {"extar": 1, "zzz": 2, "name": "x"}) == [
        (("extar",), "unknown key 'extar' (did you mean 'extra'?)"),
        (("zzz",), "unknown key 'zzz' (known keys: extra, name)"),
    ]


def _spec(tmp_path: Path, text: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_spec_problem_is_file_line_key_and_reason_every_one_at_once(lab: Lab, tmp_path: Path) -> None:
    text = SPEC.replace("  name: Converged\n", '  name: "Converged\\n"\n', 1)
    text = text.replace("    vlan: 10\n", "    vlan: 5000\n", 1)
    text = text.replace("fabric: 1\n", "fabric: 1\nextar: true\n", 1)
    lines = text.splitlines()
    spec = _spec(tmp_path, text)
    res = hv("fabric", "validate", "--spec", spec)
    assert res.code == ExitCode.USAGE, res.err
    extar, name, vlan = (next(i for i, line in enumerate(lines, 1) if line.startswith(start))
                         for start in ("extar:", '  name: "Converged', "    vlan: 5000"))
    assert f"{spec}:{extar}: extar: unknown key 'extar' (known keys: fabric, description," in res.err
    assert f"{spec}:{name}: switch.name: 'Converged\\n' is not a name: 1-64 letters" in res.err
    assert f"{spec}:{vlan}: vnics[0].vlan: must be at most 4094 (got 5000)" in res.err
    assert "Traceback" not in res.err
    assert lab.calls() == 0


def test_a_design_problem_names_its_line_too(lab: Lab, tmp_path: Path) -> None:
    text = SPEC.replace("    weight: 10\n", "    weight: 3\n", 1)
    line = text.splitlines().index("    weight: 3") + 1
    spec = _spec(tmp_path, text)
    res = hv("fabric", "validate", "--spec", spec)
    assert res.code == ExitCode.USAGE
    assert f"{spec}:{line}: vnics[0].weight: management traffic" in res.err, res.err


def test_a_duplicate_key_in_a_spec_is_refused(lab: Lab, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "fabric: 1\nfabric: 1\nswitch: {name: S, adapters: [NIC3]}\n")
    res = hv("fabric", "validate", "--spec", spec)
    assert res.code == ExitCode.USAGE and f"{spec}:2: duplicate key 'fabric'" in res.err


@pytest.mark.parametrize(("body", "line", "needle"), [
    ("vars:\n  bad-name: 1\nsteps:\n  - report: {message: x}\n", 3, "vars/bad-name: bad name: 'bad-name' does not match"),
    ("steps:\n  - report: {message: x}\n    register: \"facts\\n\"\n", 4,
     "steps/0/register: 'facts\\n' does not match"),
    ("steps:\n  - report: {message: x}\n    retries: 2.0\n", 4, "steps/0/retries: expected an integer, got a number"),
    ("forks: 0\nsteps:\n  - report: {message: x}\n", 2, "forks: must be at least 1 (got 0)"),
    ("steps: []\n", 2, "steps: needs at least 1 item(s)"),
    ("target: 5\nsteps:\n  - report: {message: x}\n", 2, "target: expected a list or a string, got an integer"),
    ("steps:\n  - report: {message: x}\n    hosts: 5\n", 4, "steps/0/hosts: expected a list or a string, got an integer"),
    ("stepz: []\n", 2, "stepz: unknown key 'stepz' (did you mean 'steps'?)"),
])
def test_runbook_schema_problems_are_file_line_and_reason(lab: Lab, body: str, line: int, needle: str) -> None:
    (lab.dir / "rb.yml").write_text("name: x\n" + textwrap.dedent(body))
    res = hv("runbook", "validate", "rb.yml")
    assert res.code == ExitCode.USAGE, res.err
    assert f"rb.yml:{line}: {needle}" in res.err, res.err
    assert lab.calls() == 0


def test_a_missing_required_key_is_named_at_its_own_path() -> None:
    schema = {"type": "object", "required": ["fabric", "switch"], "properties": {"fabric": {"const": 1}}}
    assert schemas.validate(schema, {"fabric": 1}) == [(("switch",), "is required")]
