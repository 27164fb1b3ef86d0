"""``hvauto runbook validate`` puts a ``powershell`` step's own template through hvauto's template
checks (hvauto.pscheck) on every version its header targets: each problem is FILE:LINE: reason
at the template's own line, exit 2, and no host is contacted."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hvauto.errors import ExitCode

from .conftest import Lab, hv
from .test_runbook_powershell import TEMPLATE

BAD = [
    ("parse error", "    if ($changed -and -not $WhatIf) { Set-VM -VM $vm -Notes $Note }",
     "    if ($changed -and -not $WhatIf { Set-VM -VM $vm -Notes $Note }", "cannot parse"),
    ("unknown parameter", "    $vm = Get-VM | Where-Object { $_.Name -eq $Name }",
     "    $vm = Get-VM -Nmae $Name", "Get-VM has no parameter -Nmae"),
    ("parameters of two sets", "    $vm = Get-VM | Where-Object { $_.Name -eq $Name }",
     "    $vm = Get-VM -Name $Name -Id ([guid]::Empty)",
     "Get-VM on Windows Server 2016, 2019, 2022, 2025: no parameter set has all of -Name, -Id"),
    ("newer syntax", "    $before = [string]$vm.Notes", "    $before = $vm.Notes ?? ''",
     "null-coalescing operator ?? needs PowerShell 7.0"),
]


def _write(lab: Lab, template: str) -> Path:
    d = lab.dir / "site-templates"
    d.mkdir(exist_ok=True)
    path = d / "vm_note.ps1.j2"
    path.write_text(template)
    (lab.dir / "rb.yml").write_text(textwrap.dedent("""\
        name: notes
        target: hostA
        steps:
          - powershell:
              template: site-templates/vm_note.ps1.j2
              params: {Name: vm01, Note: x}
        """))
    return path


def test_the_good_template_passes(lab: Lab) -> None:
    _write(lab, TEMPLATE)
    res = hv("runbook", "validate", "rb.yml")
    assert res.code == 0, res.err


@pytest.mark.parametrize(("case", "old", "new", "needle"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_template_is_reported_at_its_own_line(lab: Lab, case: str, old: str, new: str, needle: str) -> None:
    assert old in TEMPLATE
    text = TEMPLATE.replace(old, new, 1)
    _write(lab, text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t == new.splitlines()[-1])
    res = hv("runbook", "validate", "rb.yml")
    assert res.code == ExitCode.USAGE, (case, res.err)
    found = [p for p in res.err.splitlines() if needle in p]
    assert found, res.err
    assert any(f"site-templates/vm_note.ps1.j2:{line}: " in p for p in found), res.err
    assert "Traceback" not in res.err
    assert lab.calls() == 0


#: Header mistakes: the template as a whole is refused (named in the runbook's problem line).
HEADER_BAD = [
    ("its own param() block", '{% extends "_base.ps1.j2" %}\n',
     '{% extends "_base.ps1.j2" %}\n{% block params %}\n    [int] $Note = 0\n{% endblock %}\n',
     "the param() block is generated from the header's params"),
    ("the old idempotent key", "safe_to_resend: true\n", "idempotent: true\n",
     "'idempotent' is now two keys"),
]


@pytest.mark.parametrize(("case", "old", "new", "needle"), HEADER_BAD, ids=[b[0] for b in HEADER_BAD])
def test_a_bad_header_is_refused_naming_the_template(lab: Lab, case: str, old: str, new: str, needle: str) -> None:
    assert old in TEMPLATE
    _write(lab, TEMPLATE.replace(old, new, 1))
    res = hv("runbook", "validate", "rb.yml")
    assert res.code == ExitCode.USAGE, (case, res.err)
    assert any(needle in p and "vm_note" in p for p in res.err.splitlines()), res.err
    assert "Traceback" not in res.err and lab.calls() == 0


def test_a_parameter_only_newer_versions_have_is_reported_for_the_older_targets(lab: Lab) -> None:
    text = TEMPLATE.replace("targets: [2016, 2019, 2022, 2025]", "targets: [2012r2, 2016]").replace(
        "    $result = [ordered]@{", "    New-VMSwitch -Name s -NetAdapterName a -EnableEmbeddedTeaming $true\n"
        "    $result = [ordered]@{")
    _write(lab, text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "New-VMSwitch" in t)
    res = hv("runbook", "validate", "rb.yml", "-o", "json")
    assert res.code == ExitCode.USAGE
    problems = [p["message"] if isinstance(p, dict) else p for p in res.json()["problems"]]
    mine = [p for p in problems if "EnableEmbeddedTeaming" in p]
    assert len(mine) == 1 and f"vm_note.ps1.j2:{line}: " in mine[0] and "Windows Server 2012 R2" in mine[0], mine
    assert lab.calls() == 0


def test_run_refuses_a_bad_template_before_any_call(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    _write(lab, TEMPLATE.replace("    $before = [string]$vm.Notes", "    $before = $vm.Notes ?? ''"))
    res = hv("runbook", "run", "rb.yml")
    assert res.code == ExitCode.USAGE and "??" in res.err
    assert lab.calls() == 0
