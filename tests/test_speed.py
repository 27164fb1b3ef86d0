"""What the speed work promises without timing anything: how many hosts run at once, what a
command builds and imports at start, how many requests a step costs (tests/wire pins those)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from hvauto import contract
from hvauto.ops import vms
from tests.conftest import Lab, hv


def _peak_concurrency(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch vm listing so that each host takes a moment; returns [peak] filled in as it runs."""
    lock = threading.Lock()
    state = {"now": 0}
    peak = [0]
    real = vms.list_on

    def slow(session: Any, host: str, names: Any = None) -> Any:
        with lock:
            state["now"] += 1
            peak[0] = max(peak[0], state["now"])
        try:
            time.sleep(0.05)
            return real(session, host, names)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(vms, "list_on", slow)
    return peak


def test_hosts_run_at_once_by_default(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    peak = _peak_concurrency(monkeypatch)
    out = hv("vm", "list", "hostA", "hostB", "hv12")
    assert out.code == 0, out.err
    assert peak[0] == 3


@pytest.mark.parametrize("how", ["option", "env"])
def test_forks_caps_the_hosts_at_once(lab: Lab, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    peak = _peak_concurrency(monkeypatch)
    if how == "env":
        monkeypatch.setenv("HVAUTO_FORKS", "1")
        out = hv("vm", "list", "hostA", "hostB", "hv12")
    else:
        out = hv("--forks", "2", "vm", "list", "hostA", "hostB", "hv12")
    assert out.code == 0, out.err
    assert peak[0] == (1 if how == "env" else 2)


def test_forks_must_be_positive(lab: Lab) -> None:
    out = hv("--forks", "0", "vm", "list")
    assert out.code == 2 and "--forks" in out.err


def _cli_modules(*argv: str) -> set[str]:
    """The hvauto.cli modules a fresh interpreter has imported after ``hvauto ARGV``.

    Read from sys.modules: -X importtime does not see importlib.import_module, which builds the nouns.
    """
    code = ("import sys\nfrom hvauto.cli.main import run\ncode = run(sys.argv[1:])\n"
            "print(' '.join(m for m in sys.modules if m.startswith('hvauto.cli.')))\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.splitlines()[-1].split())


def test_help_builds_no_noun_and_a_command_builds_only_its_own() -> None:
    nouns = {"hvauto.cli." + m for m in ("delegation", "fabric", "host", "lab", "migrate", "runbook", "schedule",
                                         "smb", "switch", "vm")}
    assert _cli_modules("--help") & nouns == set()
    assert _cli_modules("vm", "--help") & nouns == {"hvauto.cli.vm"}


def test_the_root_lists_every_noun_as_its_module_says() -> None:
    """The table's one-line help (what --help shows without importing a module) is the module's own."""
    import typer.main

    from hvauto.cli.main import COMMANDS, full_app, run

    built = typer.main.get_command(full_app()).commands  # type: ignore[attr-defined]
    assert list(built) == list(COMMANDS)
    for name, cmd in built.items():
        table_line = typer.core.TyperGroup(name=name, help=COMMANDS[name][2]).get_short_help_str(200)
        assert table_line == cmd.get_short_help_str(200), name
    assert run(["--help"]) == 0


def test_an_unknown_noun_is_a_usage_error() -> None:
    out = hv("nosuch")
    assert out.code == 2 and "nosuch" in out.err


def test_retry_waits_grow_from_the_first_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.errors import ConnectError
    from hvauto.remote import retry

    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectError("connection refused", host="h", sent=False)
        return "ok"

    policy = retry.RetryPolicy(attempts=4, initial=0.5, maximum=1.5, jitter=0)
    assert retry.call_with_retry(flaky, policy, idempotent=False) == "ok"
    assert len(calls) == 4 and waits == [0.5, 1.0, 1.5]
    calls.clear()
    with pytest.raises(ConnectError):
        retry.call_with_retry(flaky, retry.RetryPolicy(attempts=2, initial=0.1, jitter=0), idempotent=True)
    assert len(calls) == 2


def test_a_first_attempt_that_succeeds_imports_no_retry_library() -> None:
    code = ("import sys\nfrom hvauto.remote.retry import RetryPolicy, call_with_retry\n"
            "assert call_with_retry(lambda: 1, RetryPolicy(), idempotent=True) == 1\n"
            "print('tenacity' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


# -- the quick contract check agrees with jsonschema ---------------------------------------------

def _shipped_schemas() -> list[dict[str, Any]]:
    from hvauto.render import default_renderer

    r = default_renderer()
    return [dict(r.meta(n).output) for n in r.names()]


def _keys(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        found.update(node.get("properties", {}))
        for v in node.values():
            _keys(v, found)
    elif isinstance(node, list):
        for v in node:
            _keys(v, found)
    return found


SCHEMAS = _shipped_schemas() + [
    contract.schema(spec, {"job": {"id": "str", "n?": "num"}})
    for spec in ({"a": "str?", "b?": "int"}, {"xs": [{"n": "int"}]}, {"state": "Running|Off"},
                 {"counts": {"*": "int|bool"}}, "job", {"j": "job?"}, "any", ["num"])
]


def _values(keys: list[str]) -> Any:
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=False, width=32),
                        st.sampled_from(["", "Running", "Off", "x", "1"]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(keys or ["k"]) | st.text(max_size=2), inner, max_size=6)), max_leaves=25)


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
def test_the_quick_check_agrees_with_jsonschema(index: int) -> None:
    import jsonschema
    from hypothesis import given, settings

    schema = SCHEMAS[index]
    validator = jsonschema.Draft202012Validator(schema)

    @settings(max_examples=60, deadline=None)
    @given(_values(sorted(_keys(schema, set()))))
    def check(value: Any) -> None:
        assert contract.conforms(schema, value) is validator.is_valid(value), value

    check()


def test_every_lab_answer_passes_the_quick_check(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid answers (the common case) never reach jsonschema: the quick check knows every shipped contract."""
    from hvauto.session import Session

    seen = []
    real = contract.conforms

    def spy(schema: Any, data: Any) -> Any:
        seen.append(real(schema, data))
        return seen[-1]

    monkeypatch.setattr(contract, "conforms", spy)
    with Session(lab.inventory) as session:
        session.run("hostA", "vm_list")
        session.run("hostA", "host_facts")
    assert seen == [True, True]
    assert all(contract.conforms(s, None) is not None for s in SCHEMAS)


# -- rendered templates are cached -------------------------------------------------------------

def test_a_cached_render_imports_neither_jinja2_nor_yaml(tmp_path: Any) -> None:
    code = ("import sys\nfrom hvauto.render import Renderer\n"
            "s = Renderer().render('vm_list', '2022', {'Name': ['a']})\n"
            "print(s.body.splitlines()[0], 'jinja2' in sys.modules, 'yaml' in sys.modules)")
    env = dict(os.environ, HVAUTO_CACHE_DIR=str(tmp_path / "cache"))
    first, second = (subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                                    check=True, env=env).stdout.split() for _ in range(2))
    assert first[-2:] == ["True", "True"] and second[-2:] == ["False", "False"]
    assert first[:-2] == second[:-2]  # the same machine line: the same body


def test_the_cache_gives_what_rendering_gives_and_follows_a_changed_template(tmp_path: Any) -> None:
    from hvauto.render import Renderer

    fresh = Renderer(cache=False)
    Renderer().render("vm_list", "2012")  # fills the cache
    cached = Renderer()
    for name in ("vm_list", "host_facts", "migrate_start"):
        for version in ("2012", "2022"):
            assert cached.body(name, version) == fresh.body(name, version)
        assert cached.meta(name) == fresh.meta(name)
    mine = tmp_path / "mine"
    mine.mkdir()
    src = '{#- hvauto\nsummary: Mine.\noutput: {n: int}\n-#}\n@{ok=$true; result=@{n=1}} | ConvertTo-Json\n'
    (mine / "mine.ps1.j2").write_text(src)
    assert "n=1" in Renderer([mine]).body("mine", "2022")
    (mine / "mine.ps1.j2").write_text(src.replace("n=1", "n=22"))
    assert "n=22" in Renderer([mine]).body("mine", "2022")


def test_an_unwritable_cache_only_costs_time(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvauto.render import Renderer

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("HVAUTO_CACHE_DIR", str(blocker / "cache"))
    assert Renderer().render("vm_list", "2022").body == Renderer(cache=False).render("vm_list", "2022").body
