"""The template checker is part of the package: its reference ships in the wheel, and it runs as
``python -m hvauto.pscheck`` on files or on hvauto's own templates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hvauto import pscheck

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent


def _pscheck(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hvauto.pscheck", *argv], capture_output=True, text=True,
                          input=stdin, cwd=REPO, timeout=120, check=False)


def test_the_reference_is_found_in_a_checkout_and_in_an_installed_package(tmp_path: Path) -> None:
    assert pscheck.REFERENCE_PATH == REPO / "tests" / "reference" / "cmdlets.json"
    installed = tmp_path / "site-packages" / "hvauto"
    (installed / "reference").mkdir(parents=True)
    (installed / "reference" / "cmdlets.json").write_text("{}")
    assert pscheck.reference_path(installed) == installed / "reference" / "cmdlets.json"


def test_the_wheel_ships_the_reference_where_the_checker_looks() -> None:
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert build["force-include"]["tests/reference/cmdlets.json"] == "hvauto/reference/cmdlets.json"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert {"tree-sitter>=0.23", "tree-sitter-powershell>=0.24"} <= set(project["dependencies"])


def test_importing_the_checker_imports_no_parser() -> None:
    code = "import sys, hvauto.pscheck; print(sorted(m for m in ('tree_sitter', 'jinja2') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def test_a_clean_file_passes_and_a_bad_one_is_reported_per_line(tmp_path: Path) -> None:
    good = tmp_path / "good.ps1"
    good.write_text("$vm = Get-VM -Name 'vm01'\nConvertTo-Json -InputObject $vm -Compress -Depth 3\n")
    bad = tmp_path / "bad.ps1"
    bad.write_text("$x = 1\nNew-VMSwitch -Name s -NetAdapterName a -EnableEmbeddedTeaming $true\n$y = $x ?? 2\n")
    res = _pscheck("2012r2", str(good))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = _pscheck("2012R2", str(good), str(bad))
    assert res.returncode == 1, res.stderr
    lines = res.stdout.splitlines()
    assert lines and all(line.startswith(f"{bad}:") for line in lines), lines
    assert any(line.startswith(f"{bad}:2:") and "[unknown-parameter]" in line and "EnableEmbeddedTeaming" in line
               for line in lines), lines
    assert any(line.startswith(f"{bad}:3:") and "[newer-syntax]" in line and "??" in line for line in lines), lines


def test_stdin_is_read_for_a_dash() -> None:
    res = _pscheck("2016", "-", stdin="Get-VM -Nam x\n")
    assert res.returncode == 1 and "-:1:" in res.stdout and "Nam" in res.stdout


def test_hvautos_templates_pass_by_name() -> None:
    res = _pscheck("--template", "vm_list", "host_facts")
    assert (res.returncode, res.stdout) == (0, ""), res.stdout + res.stderr


@pytest.mark.parametrize(("argv", "needle"), [
    (["2030", "x.ps1"], "unknown Windows Server version '2030'"),
    (["2016", "no-such-file.ps1"], "no-such-file.ps1: cannot read"),
    (["--template", "no_such_template"], "no template named 'no_such_template'"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], needle: str) -> None:
    res = _pscheck(*argv)
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr
