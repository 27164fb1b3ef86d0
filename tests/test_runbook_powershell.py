"""The powershell step: a user's own .ps1.j2 under hvauto's template rules (declared, typed
parameters; values bound as parameters, never rendered into code; what-if only when declared),
and the sandbox that renders runbook values."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from hvauto.errors import ExitCode
from hvauto.lab import transport as lab_transport
from hvauto.lab.handlers import HANDLERS, CmdletError, LabCall
from hvauto.render import Renderer
from hvauto.script import Script
from hvauto.session import Session

from .conftest import Lab, hv

TEMPLATE = """\
{#- hvauto
summary: Set a VM's notes (a site's own step).
targets: [2016, 2019, 2022, 2025]
safe_to_resend: true
params:
  Name: {type: string, required: true, doc: "the VM, exact name"}
  Note: {type: string, doc: "the text"}
  WhatIf: {type: switch, doc: "say what would change"}
output: {changed: bool, before: str}
-#}
{% extends "_base.ps1.j2" %}
{% block body %}
    $vm = Get-VM | Where-Object { $_.Name -eq $Name }
    if ($null -eq $vm) { throw "no VM named $Name" }
    $before = [string]$vm.Notes
    $changed = $before -ne $Note
    if ($changed -and -not $WhatIf) { Set-VM -VM $vm -Notes $Note }
    $result = [ordered]@{ changed = $changed; before = $before }
{% endblock %}
"""


def _vm_note(call: LabCall) -> dict[str, Any]:
    """The lab's answer to the template above, as a Windows host would give it."""
    name = call.params["Name"]
    vm = next((v for v in call.estate.all("vm", host=call.name) if v["name"] == name), None)
    if vm is None:
        raise CmdletError(f"no VM named {name}", category="OperationStopped", fqid="no VM named")
    before = str(vm.get("notes") or "")
    note = call.params.get("Note") or ""
    changed = before != note
    if changed and not call.params.get("WhatIf"):
        vm["notes"] = note
        call.estate.put("vm", vm["key"], vm, host=vm.get("host"))
    return {"changed": changed, "before": before}


@pytest.fixture
def ps(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    d = lab.dir / "site-templates"
    d.mkdir()
    (d / "vm_note.ps1.j2").write_text(TEMPLATE)
    # The lab answers the site's template too (a test double: the lab knows only hvauto's own).
    monkeypatch.setitem(HANDLERS, "vm_note", _vm_note)
    monkeypatch.setattr(lab_transport, "default_renderer", lambda: Renderer(extra_dirs=[d]))
    return d


def write(lab: Lab, steps: str) -> None:
    (lab.dir / "rb.yml").write_text("name: notes\ntarget: hostA\nsteps:\n" + textwrap.indent(textwrap.dedent(steps),
                                                                                               "  "))


def notes(lab: Lab, vm: str) -> str:
    with lab.store.transaction() as est:
        rec = next(v for v in est.all("vm") if v["name"] == vm)
    return str(rec.get("notes") or "")


def test_values_are_bound_as_parameters_never_as_code(lab: Lab, ps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = "'; Remove-VM -Name * -Force; '$(Stop-Computer)"
    seen: list[Script] = []
    real = Session.run_script

    def spy(self: Session, host: str, script: Script, **kw: Any) -> Any:
        seen.append(script)
        return real(self, host, script, **kw)

    monkeypatch.setattr(Session, "run_script", spy)
    write(lab, """
    - powershell:
        template: site-templates/vm_note.ps1.j2
        params:
          Name: vm01
          Note: "{{ note }}"
      register: noted
    """)
    res = hv("runbook", "run", "rb.yml", "--var", f"note={hostile}", "-o", "json")
    assert res.code == 0, res.err
    assert notes(lab, "vm01") == hostile
    (script,) = [s for s in seen if s.template == "vm_note"]
    assert script.params == {"Name": "vm01", "Note": hostile}
    assert hostile not in script.body and "Remove-VM" not in script.body
    assert "[string] $Note = ''" in script.body
    task = next(e for e in res.json_lines() if e["event"] == "task")
    assert task["changed"] is True
    again = hv("runbook", "run", "rb.yml", "--var", f"note={hostile}", "-o", "json")
    assert next(e for e in again.json_lines() if e["event"] == "task")["changed"] is False


def test_check_mode_passes_whatif_when_the_template_declares_it(lab: Lab, ps: Path) -> None:
    write(lab, """
    - powershell:
        template: site-templates/vm_note.ps1.j2
        params: {Name: vm01, Note: patched}
    """)
    before = lab.store.snapshot()
    res = hv("runbook", "run", "rb.yml", "--check", "-o", "json")
    assert res.code == 0, res.err
    assert lab.store.snapshot() == before
    assert lab.calls(template="vm_note") == 1


def test_check_mode_skips_a_template_without_whatif(lab: Lab, ps: Path) -> None:
    (ps / "vm_note2.ps1.j2").write_text(TEMPLATE.replace("  WhatIf: {type: switch, doc: \"say what would change\"}\n", "")
                                        .replace(",\n    [switch] $WhatIf", "").replace(" -and -not $WhatIf", ""))
    write(lab, """
    - powershell:
        template: site-templates/vm_note2.ps1.j2
        params: {Name: vm01, Note: patched}
    """)
    res = hv("runbook", "run", "rb.yml", "--check")
    assert res.code == 0, res.err
    assert "declares no WhatIf switch: not run in check mode" in res.out
    assert lab.calls() == 0


@pytest.mark.parametrize(("params", "line", "needle"), [
    ("{Name: vm01, Colour: red}", 7, "parameter 'Colour' is not declared in vm_note's header"),
    ("{Note: x}", 7, "vm_note needs parameter 'Name'"),
    ("{Name: 5}", 7, "parameter Name (string): expected a string, got int"),
])
def test_template_parameters_are_checked_before_any_call(lab: Lab, ps: Path, params: str, line: int,
                                                         needle: str) -> None:
    write(lab, f"""
    - powershell:
        template: site-templates/vm_note.ps1.j2
        params: {params}
    """)
    res = hv("runbook", "validate", "rb.yml")
    assert res.code == ExitCode.USAGE
    assert f"rb.yml:{line}: " in res.err and needle in res.err, res.err
    assert lab.calls() == 0


@pytest.mark.parametrize(("file", "text", "needle"), [
    ("missing.ps1.j2", None, "no such template file"),
    ("plain.ps1.j2", "{#- hvauto\nsummary: x\nparams: {}\n-#}\nGet-VM\n", 'must {% extends "_base.ps1.j2" %}'),
    ("vm_list.ps1.j2", TEMPLATE, "one of hvauto's own templates"),
    ("noheader.ps1.j2", '{% extends "_base.ps1.j2" %}\n', "no '{#- hvauto' metadata header"),
])
def test_bad_templates_are_refused(lab: Lab, ps: Path, file: str, text: str | None, needle: str) -> None:
    if text is not None:
        (ps / file).write_text(text)
    write(lab, f"""
    - powershell:
        template: site-templates/{file}
    """)
    res = hv("runbook", "validate", "rb.yml")
    assert res.code == ExitCode.USAGE
    assert "rb.yml:6: " in res.err and needle in res.err, res.err
    assert lab.calls() == 0


@pytest.mark.parametrize("expr", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ names.append('x') }}",
    "{{ inventory.hosts.clear() }}",
])
def test_values_render_in_a_sandbox(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expr: str) -> None:
    monkeypatch.setenv("HVAUTO_STATE_DIR", str(tmp_path / "state"))
    (lab.dir / "rb.yml").write_text(textwrap.dedent(f"""
    name: sandbox
    target: hostA
    vars:
      names: [vm01]
    steps:
      - report:
          message: "{expr}"
    """))
    res = hv("runbook", "run", "rb.yml")
    assert res.code == ExitCode.ABORTED
    assert "unsafe" in res.out.lower() or "unsafe" in res.err.lower()
