"""Every input kind hvauto reads, fed every hostile case: a clear error with its documented code.

Input kinds: a runbook, a vars file, a ``--var`` value, a fabric spec, an inventory, the user's
config.toml, plus arguments and environment values. Cases: alias bombs, an alias that contains
itself, deep nesting, files over the limit, FIFOs, devices, directories, bytes that are not UTF-8,
lone surrogates, duplicate keys, numbers out of range, expressions that would build something huge.
None exits 1 (an internal error), none prints a traceback, none takes over 5 s or 500 MB.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv

REPO = Path(__file__).resolve().parent.parent


def _bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


BOMB = _bomb()
#: YAML (or raw) contents, each hostile in its own way; FIFO/DEVICE/DIRECTORY are made on disk.
YAML_CASES: dict[str, str | bytes] = {
    "alias-bomb": BOMB,
    "alias-bomb-flow": "{" + BOMB.replace("\n", ", ").rstrip(", ") + "}",
    "self-alias": "a: &s [*s]\n",
    "deep-nesting": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-mapping": "a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n",
    "oversized": "a: 1\n# " + "x" * (2 * 1024 * 1024) + "\n",
    "not-utf8": b"a: \xff\xfe\n",
    "surrogate": 'a: "x\\ud800y"\n',
    "duplicate-keys": "a: 1\na: 2\n",
    "nul-byte": "a: 1\x00\n",
    "complex-key": "? [a, b]\n: 1\n",
    "python-tag": "a: !!python/object/apply:os.system ['true']\n",
    "empty": "",
    "FIFO": "", "DEVICE": "", "DIRECTORY": "",
}
TOML_CASES: dict[str, str | bytes] = {
    "deep-arrays": "a = " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-tables": "a = " + "{b = " * 2000 + "1" + "}" * 2000 + "\n",
    "oversized": "# " + "x" * (2 * 1024 * 1024) + "\n",
    "not-utf8": b"[defaults]\ntransport = \"\xff\"\n",
    "duplicate-keys": "[defaults]\nauth = \"ntlm\"\nauth = \"basic\"\n",
    "port-70000": "[hosts.a]\nport = 70000\n",
    "timeout-inf": "[defaults]\nread_timeout = inf\n",
    "timeout-nan": "[defaults]\nconnect_timeout = nan\n",
    "timeout-huge": "[defaults]\noperation_timeout = 1e300\n",
    "password-command": "[hosts.a]\npassword_command = \"cat 'x\"\n",
    "FIFO": "", "DEVICE": "", "DIRECTORY": "",
}


def make(tmp: Path, name: str, content: str | bytes) -> str:
    if name == "DEVICE":
        return "/dev/zero"
    path = tmp / f"input-{name}"
    if name == "FIFO":
        os.mkfifo(path)
    elif name == "DIRECTORY":
        path.mkdir()
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return str(path)


def bounded(run: Callable[[], object]) -> object:
    """Run ``run`` and hold it to 5 s and 500 MB of Python allocations."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        out = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    took = time.monotonic() - started
    assert took < 5, f"took {took:.1f}s"
    assert peak < 500 * 1024 * 1024, f"peak {peak / 1024**2:.0f} MB"
    return out


def check(res: object, allowed: set[int]) -> None:
    code, err = res.code, res.err  # type: ignore[attr-defined]
    assert code in allowed, (code, err)
    assert code != ExitCode.ERROR and "Traceback" not in err and "internal error" not in err, err
    # hvauto's own error line, the run's abort line, or Click's usage error for an option out of range.
    assert "hvauto: error:" in err or "aborted" in err or "\nError: " in err or code == 0, err


OK_RUNBOOK = "name: ok\ntarget: hostA\nsteps:\n  - vm.list: {}\n"


@pytest.fixture
def ok_runbook(lab: Lab) -> str:
    (lab.dir / "ok.yml").write_text(OK_RUNBOOK)
    return "ok.yml"


@pytest.mark.parametrize("case", sorted(YAML_CASES))
@pytest.mark.parametrize("kind", ["runbook", "vars-file", "fabric-spec", "estate"])
def test_yaml_inputs(lab: Lab, tmp_path: Path, ok_runbook: str, kind: str, case: str) -> None:
    path = make(tmp_path, case, YAML_CASES[case])
    argv = {"runbook": ["runbook", "validate", path],
            "vars-file": ["runbook", "validate", ok_runbook, "--vars-file", path],
            "fabric-spec": ["fabric", "validate", "--spec", path],
            "estate": ["lab", "init", str(tmp_path / "new-lab"), "--estate", path]}[kind]
    # An empty vars file or a harmless one may pass; everything else is refused as input.
    check(bounded(lambda: hv(*argv)), {ExitCode.USAGE} | ({ExitCode.OK} if kind == "vars-file" else set()))


@pytest.mark.parametrize("case", [c for c in sorted(YAML_CASES) if c not in ("FIFO", "DEVICE", "DIRECTORY",
                                                                               "not-utf8", "oversized")])
def test_var_values(lab: Lab, ok_runbook: str, case: str) -> None:
    value = YAML_CASES[case]
    assert isinstance(value, str)
    check(bounded(lambda: hv("runbook", "validate", ok_runbook, "--var", f"x={value}")),
          {ExitCode.OK, ExitCode.USAGE})


@pytest.mark.parametrize("case", sorted(TOML_CASES))
def test_inventory_inputs(lab: Lab, tmp_path: Path, case: str) -> None:
    path = make(tmp_path, case, TOML_CASES[case])
    check(bounded(lambda: hv("-i", path, "host", "list")), {ExitCode.CONFIG})


@pytest.mark.parametrize("case", sorted(TOML_CASES))
def test_user_config_inputs(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    target = conf / "config.toml"
    made = make(tmp_path, case, TOML_CASES[case])
    os.symlink(made, target)
    monkeypatch.setenv("HVAUTO_CONFIG_DIR", str(conf))
    check(bounded(lambda: hv("host", "list")), {ExitCode.CONFIG} | ({ExitCode.OK} if case.startswith("port")
                                                                    or case.startswith("password") else set()))


EXPRESSIONS = ["range(10**9) | list | length", "('a' * 10**10) | length", "[1] * 10**9", "2 ** (10**9)",
               "'x' | center(10**10)", "'%0999999999d' % 1", "'{:>999999999}'.format(1)", "1 / 0",
               "'%0999999999d' | format(1)", "'a' + 1", "{}.__class__", "lipsum(10**9)", "x" * 20000]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=range(len(EXPRESSIONS)))
def test_sandbox_expressions(lab: Lab, expr: str) -> None:
    (lab.dir / "e.yml").write_text(f'name: e\ntarget: hostA\nsteps:\n  - report: {{message: "{{{{ {expr} }}}}"}}\n')
    check(bounded(lambda: hv("runbook", "run", "e.yml")), {ExitCode.USAGE, ExitCode.ABORTED})


ARGUMENTS: list[tuple[list[str], dict[str, str], set[int]]] = [
    (["runbook", "show", "99999999999999999999999"], {}, {ExitCode.NOT_FOUND}),
    (["runbook", "resume", "99999999999999999999999"], {}, {ExitCode.NOT_FOUND}),
    (["vm", "list", "hostA"], {"HVAUTO_READ_TIMEOUT": "abc"}, {ExitCode.CONFIG}),
    (["vm", "list", "hostA"], {"HVAUTO_READ_TIMEOUT": "inf"}, {ExitCode.CONFIG}),
    (["migrate", "--shared-nothing", "vm01", "hostB", "--poll-interval", "inf"], {}, {ExitCode.USAGE}),
    (["migrate", "--shared-nothing", "vm01", "hostB", "--poll-interval", "nan"], {}, {ExitCode.USAGE}),
    (["storage", "move", "vm02", "C:\\VMs\\vm02", "--poll-interval", "nan"], {}, {ExitCode.USAGE}),
    (["lab", "init", "/dev/null"], {}, {ExitCode.USAGE}),
    (["smb", "share", "create", "VMs", "--server", "fs01", "--path", "D:\\S\udcff", "--hosts", "hostA",
      "--render"], {}, {ExitCode.USAGE}),
    (["fabric", "validate", "--spec", "/dev/zero"], {}, {ExitCode.USAGE}),
]


@pytest.mark.parametrize(("argv", "env", "allowed"), ARGUMENTS, ids=[" ".join(a[:3]) + str(e) for a, e, _ in ARGUMENTS])
def test_arguments_and_environment(lab: Lab, monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str],
                                   allowed: set[int]) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    check(bounded(lambda: hv(*argv)), allowed)
    assert lab.calls(template="migrate_start") == 0


def test_lab_state_a_directory(lab: Lab, tmp_path: Path) -> None:
    inv = (lab.dir / "hvauto.toml").read_text().replace('lab_state = "lab/estate.db"', f'lab_state = "{tmp_path}"')
    (tmp_path / "inv.toml").write_text(inv)
    check(bounded(lambda: hv("-i", str(tmp_path / "inv.toml"), "vm", "list", "hostA")), {ExitCode.CONFIG})
