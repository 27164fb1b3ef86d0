"""Every hvauto template, on every Windows Server version it targets, passes the template checks.

The checks live in :mod:`hvauto.pscheck`; the second half of this module proves that the checker
itself can fail, with PowerShell snippets it must reject and ones it must accept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import pytest
import yaml

from hvauto import pscheck, versions
from hvauto.errors import TemplateError
from hvauto.render import _META_RE, PARAM_TYPES, Renderer

REPO = Path(__file__).resolve().parent.parent
SHARED_REFERENCE = REPO.parent / "shared" / "reference" / "cmdlets.json"
RENDERER = Renderer()
NAMES = [n for n in RENDERER.names() if not n.startswith("_")]
CASES = [(name, version) for name in NAMES for version in RENDERER.meta(name).targets]
SOURCES = sorted({p for d in RENDERER.dirs for p in d.glob("*.j2")}, key=lambda p: p.name)


def _show(findings: list[pscheck.Finding]) -> str:
    return "\n".join(str(f) for f in findings)


# --------------------------------------------------------------------------- the reference


def test_reference_copy_matches_the_shared_reference() -> None:
    if not SHARED_REFERENCE.is_file():
        pytest.skip(f"no shared reference beside the repository ({SHARED_REFERENCE})")
    assert pscheck.REFERENCE_PATH.read_bytes() == SHARED_REFERENCE.read_bytes(), (
        "tests/reference/cmdlets.json differs from ../shared/reference/cmdlets.json: copy it again"
    )


def test_reference_covers_every_version_hvauto_targets() -> None:
    data = json.loads(pscheck.REFERENCE_PATH.read_text(encoding="utf-8"))
    documented = {v for entry in data["cmdlets"].values() for v in entry["versions"]}
    assert documented == set(versions.OS_VERSIONS)


# --------------------------------------------------------------------------- the templates


def test_there_are_templates_to_check() -> None:
    assert {"host_facts", "vm_list"} <= set(NAMES)
    assert len(CASES) >= 2 * len(versions.OS_VERSIONS)


def test_the_renderer_is_strict() -> None:
    assert RENDERER.env.undefined is jinja2.StrictUndefined


@pytest.mark.parametrize("name", NAMES)
def test_header_declares_targets_and_typed_params(name: str) -> None:
    meta = RENDERER.meta(name)
    assert meta.path is not None
    match = _META_RE.match(meta.path.read_text(encoding="utf-8"))
    assert match, f"{name}: no '{{#- hvauto' header"
    raw = yaml.safe_load(match.group("yaml"))
    assert raw.get("targets"), f"{name}: the header must declare targets"
    assert set(meta.targets) <= set(versions.OS_VERSIONS)
    assert str(raw.get("summary", "")).strip(), f"{name}: the header needs a summary"
    for pname, spec in meta.params.items():
        assert spec.type in PARAM_TYPES, f"{name}: {pname} has type {spec.type}"


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_jinja_reads_only_shape_variables(path: Path) -> None:
    findings = pscheck.check_jinja_source(path.read_text(encoding="utf-8"))
    assert not findings, _show(findings)


@pytest.mark.parametrize(("name", "version"), CASES)
def test_template_passes_every_check(name: str, version: str) -> None:
    findings = pscheck.check_template(RENDERER, name, version)
    assert not findings, f"{name} on {versions.label(version)}:\n{_show(findings)}"


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_no_value_goes_to_a_wildcard_vm_name(path: Path) -> None:
    """-VMName is a wildcard pattern ([ ] * ?) and VM names are not unique: templates pick VMs by object (-VM)."""
    calls = re.findall(r"-VMName\s+[$(]", path.read_text(encoding="utf-8"))
    assert not calls, f"{path.name} passes a value to -VMName"


# --------------------------------------------------------------------------- no second hop

#: Cmdlets that name another Hyper-V host for the session's own credentials to reach.
_HOST_CMDLETS = {"move-vm", "compare-vm", "move-vmstorage"}
#: Commands that open a session to another machine from inside the one hvauto opened.
_SESSION_COMMANDS = {"new-cimsession", "new-pssession", "enter-pssession"}


def _is_remote_parameter(written: str) -> bool:
    """-ComputerName (aliases CN, ServerName) or -CimSession, as written (PowerShell takes unique prefixes)."""
    w = written.lower()
    return (w in ("cn", "servername") or (len(w) >= 4 and "computername".startswith(w))
            or (len(w) >= 3 and "cimsession".startswith(w)))


def second_hops(text: str) -> list[str]:
    """Every place a script reaches another machine with the credentials of the session it runs in.

    From inside a remote session that is a second hop, which Kerberos constrained delegation does not carry
    over WinRM (hyperv-wmi.md section 14): the only hop allowed is the migration service's own connection.
    """
    found = []
    for site in pscheck.call_sites(pscheck.parse(text)):
        name = site.name.lower()
        line = site.node.start_point[0] + 1
        if name in _HOST_CMDLETS:
            found.append(f"line {line}: {site.name} (it reaches the other host itself; use "
                         "Msvm_VirtualSystemMigrationService on this host)")
        if name in _SESSION_COMMANDS:
            found.append(f"line {line}: {site.name} opens a session to another machine")
        for arg in site.named:
            if _is_remote_parameter(arg.written):
                found.append(f"line {line}: {site.name} -{arg.written}")
    return found


@pytest.mark.parametrize(("name", "version"), CASES)
def test_no_template_reaches_another_machine(name: str, version: str) -> None:
    """Destination facts come over hvauto's own session to the destination, passed in as parameters."""
    script = RENDERER.render(name, version, pscheck.sample_params(RENDERER.meta(name)))
    hops = second_hops(script.body)
    assert not hops, f"{name} on {versions.label(version)} makes a second hop:\n" + "\n".join(hops)


@pytest.mark.parametrize(
    ("snippet", "hops"),
    [
        ("Move-VM -VM $vm -DestinationHost $h -IncludeStorage -DestinationStoragePath $p", 1),
        ("$r = Compare-VM -VM $vm -DestinationHost $h", 1),
        ("Move-VMStorage -VMName v -DestinationStoragePath p -ComputerName $h", 2),
        ("Get-VM -ComputerName $h", 1),
        ("Get-VM -CN $h", 1),
        ("Get-CimInstance -ClassName Msvm_VirtualSystemMigrationService -CimSession $s", 1),
        ("$s = New-CimSession -ComputerName $h", 2),
        ("Get-CimInstance -Namespace 'root\\virtualization\\v2' -ClassName Msvm_MigrationJob", 0),
        ("Invoke-CimMethod -InputObject $svc -MethodName 'MigrateVirtualSystemToHost' -Arguments $in", 0),
        ("Get-VM -Id $VmId", 0),
    ],
)
def test_the_second_hop_check_can_fail(snippet: str, hops: int) -> None:
    assert len(second_hops(snippet)) == hops, second_hops(snippet)


# --------------------------------------------------------------------------- the checker can fail

# (snippet, version, the set of rules it must raise; empty = must pass)
SCRIPT_CASES: list[tuple[str, str, set[str]]] = [
    # one parameter set per call
    ("Move-VM -IncludeStorage -Vhds @() -DestinationStoragePath x", "2016", {"parameter-set"}),
    # on 2012 R2 one set has all three; what is left is the missing -Name/-VM and -DestinationHost
    ("Move-VM -IncludeStorage -Vhds @() -DestinationStoragePath x", "2012r2", {"missing-mandatory"}),
    ("Move-VM -Name v -DestinationHost h -IncludeStorage -Vhds @() -DestinationStoragePath x", "2012r2", set()),
    ("Move-VM -Name v -DestinationHost h -IncludeStorage -Vhds @() -DestinationStoragePath x", "2016", {"parameter-set"}),
    ("Compare-VM -Name v -DestinationHost h -IncludeStorage -SnapshotFilePath p", "2012", set()),
    ("Compare-VM -Name v -DestinationHost h -IncludeStorage -SnapshotFilePath p", "2019", {"parameter-set"}),
    ("Move-VM -Name v -DestinationHost h -IncludeStorage -DestinationStoragePath p -AsJob", "2022", set()),
    ("Move-VM -Name v -DestinationHost h -RemoveSourceUnmanagedVhds", "2012r2", {"unknown-parameter"}),
    ("Get-VM -Name x -Id ([guid]::Empty)", "2022", {"parameter-set"}),
    # availability of the cmdlet on the version
    ("Set-SmbPathAcl -ShareName x", "2012", {"unavailable-cmdlet"}),
    ("Set-SmbPathAcl -ShareName x", "2012r2", set()),
    ("Get-VMSwitchTeam -Name t", "2012r2", {"unavailable-cmdlet"}),
    ("Get-VMSwitchTeam -Name t", "2016", set()),
    ("New-VMSwitch -Name s -NetAdapterName a -EnableEmbeddedTeaming $true", "2012r2", {"unknown-parameter"}),
    ("New-VMSwitch -Name s -NetAdapterName a -EnableEmbeddedTeaming $true", "2016", set()),
    # full names, documented aliases, case, module qualification, & 'name'
    ("Get-VM -Nmae x", "2022", {"unknown-parameter"}),
    ("Get-VM -Nam x", "2022", {"unknown-parameter"}),
    ("get-vm -NAME x", "2022", set()),
    ("Hyper-V\\Get-VM -Name x", "2022", set()),
    ("& 'Get-VM' -Nmae x", "2022", {"unknown-parameter"}),
    ("Get-VM -VMName x", "2016", set()),
    ("Move-VMStorage -VMName v -DestinationStoragePath p", "2012", set()),
    ("Move-VMStorage -VMName v -DestinationStoragePath p", "2025", set()),
    # -Param:value, switches, missing values, duplicates
    ("Get-VM -Name:'x'", "2022", set()),
    ("Move-VM -Name v -DestinationHost h -AsJob:$true", "2022", set()),
    ("Move-VM -Name v -DestinationHost h -AsJob $true", "2022", {"positional"}),
    ("Get-VM -Name", "2022", {"missing-argument"}),
    ("Get-VM -Name x -Name y", "2022", {"duplicate-parameter"}),
    # positional arguments against positional_order
    ("Get-VM x", "2022", set()),
    ("Get-VM x y", "2022", {"positional"}),
    ("Move-VM v h", "2012", set()),
    ("Move-VM v h extra", "2012", {"positional"}),
    ("Get-VMNetworkAdapter -All x", "2016", set()),
    ("Get-VMNetworkAdapter -All x y", "2016", {"positional"}),
    # mandatory parameters: by name, by position, or from the pipeline when piped
    ("Move-VM -Name v", "2022", {"missing-mandatory"}),
    ("Move-VM v h", "2022", set()),
    ("$vm | Move-VM -DestinationHost h", "2022", set()),
    ("Move-VM -DestinationHost h", "2022", {"missing-mandatory"}),
    ("Get-VM | Stop-VM -Force", "2012", set()),
    ("Set-VMNetworkAdapterVlan -VMNetworkAdapterName LM -Access -VlanId 12", "2012r2", {"missing-mandatory"}),
    ("Set-VMNetworkAdapterVlan -ManagementOS -VMNetworkAdapterName LM -Access -VlanId 12", "2012r2", set()),
    ("Get-VMNetworkAdapter -All", "2012", set()),
    # splatting hides the names
    ("Get-VM @p", "2022", {"splatting"}),
    ("$p = @{ Name = 'x' }; Move-VM @p -DestinationHost h", "2022", {"splatting"}),
    ("& { param($Name) $Name } @p", "2012", set()),
    ("Get-ChildItem @p", "2022", set()),
    # common parameters and the PowerShell that has them
    ("Get-VM -Name x -ErrorAction Stop -WarningAction SilentlyContinue -Verbose", "2012", set()),
    ("Get-VM -Name x -ErrorVariable e -OutVariable o -OutBuffer 1 -Debug:$false", "2012", set()),
    ("Get-VM -Name x -ea Stop", "2012", set()),
    ("Get-VM -Name x -PipelineVariable v", "2012", {"unknown-parameter"}),
    ("Get-VM -Name x -PipelineVariable v", "2012r2", set()),
    ("Get-VM -Name x -InformationAction Ignore", "2012r2", {"unknown-parameter"}),
    ("Get-VM -Name x -InformationVariable i", "2016", set()),
    ("Get-VM -Name x -WhatIf", "2022", {"unknown-parameter"}),
    ("Stop-VM -Name x -WhatIf -Confirm:$false", "2022", set()),
    # typographic quotes and dashes are what PowerShell reads them as
    ("Get-VM \u2013Nmae \u2018x\u2019", "2022", {"unknown-parameter"}),
    ("Get-VM \u2013Name \u201cx\u201d", "2022", set()),
    # syntax newer than Windows PowerShell
    ("$a ?? $b", "2022", {"newer-syntax", "parse"}),
    ("$a ??= 1", "2025", {"newer-syntax", "parse"}),
    ("$a?.Name", "2022", {"newer-syntax", "parse"}),
    ("${a}?[0]", "2022", {"newer-syntax", "parse"}),
    ("$a ? 1 : 2", "2022", {"newer-syntax", "parse"}),
    ("Get-VM && Get-VMHost", "2022", {"newer-syntax"}),
    ("Get-VM || Get-VMHost", "2022", {"newer-syntax"}),
    ("function f { process { } clean { } }", "2022", {"newer-syntax", "parse"}),
    ("[Foo]::new()", "2012r2", {"newer-syntax"}),
    ("[Foo]::new()", "2016", set()),
    ("class Foo { }", "2012", {"newer-syntax"}),
    ("class Foo { }", "2016", set()),
    ("enum Color { Red }", "2012r2", {"newer-syntax"}),
    ("using namespace System.IO", "2012r2", {"newer-syntax"}),
    ("using namespace System.IO", "2016", set()),
    ("using module Foo", "2012", {"newer-syntax"}),
    # ... but not in strings, comments, or PowerShell 5.1 look-alikes
    ("$x = 'a ?? b && c ?. d'  # $a ?? $b, [Foo]::new()\n<# class X {} #>", "2012", set()),
    ("$x = \"$($a -eq 1) ?? ::new(\"", "2012", set()),
    ("$x = \"$($a ?? 1)\"", "2022", {"newer-syntax", "parse"}),
    ("Get-VM | Where-Object { $_.Name -like 'a?b' }", "2012", set()),
    ("if ($?) { 'ok' }", "2012", set()),
    # ConvertTo-Json / ConvertFrom-Json
    ("ConvertTo-Json -InputObject $x -Compress -Depth 8", "2012", set()),
    ("$x | ConvertTo-Json -Depth:4 -Compress", "2012", set()),
    ("ConvertTo-Json -InputObject $x", "2022", {"convertto-json"}),
    ("ConvertTo-Json -InputObject $x -Compress", "2022", {"convertto-json"}),
    ("ConvertTo-Json -InputObject $x -Compress -Depth 4 -EnumsAsStrings", "2025", {"newer-syntax"}),
    ("ConvertTo-Json -InputObject $x -Compress -Depth 4 -NoEnumerate", "2025", {"unknown-parameter"}),
    ("ConvertTo-Json -InputObject $x -Compress -Depth 4 -AsArray", "2025", {"newer-syntax"}),
    ("ConvertTo-Json -InputObject $x -Compress -Dept 4", "2022", {"unknown-parameter", "convertto-json"}),
    ("ConvertTo-Json -InputObject $x -Compress -Depth 4 -ErrorAction Stop", "2022", set()),
    ("ConvertFrom-Json -InputObject $j -Depth 4", "2022", {"newer-syntax"}),
    ("$x | ConvertFrom-Json -AsHashtable", "2022", {"newer-syntax"}),
    ("ConvertFrom-Json -InputObject $j", "2012", set()),
    # parse errors
    ("Get-VM -Name 'x", "2022", {"parse", "missing-argument"}),
    ("if ($x) { Get-VM", "2022", {"parse"}),
]


@pytest.mark.parametrize(("script", "version", "rules"), SCRIPT_CASES, ids=[f"{v}:{s[:50]}" for s, v, _ in SCRIPT_CASES])
def test_checker_verdicts(script: str, version: str, rules: set[str]) -> None:
    findings = pscheck.check_script(script, version)
    assert {f.rule for f in findings} == rules, _show(findings)


def test_findings_say_where_and_why() -> None:
    findings = pscheck.check_script("$ok = 1\n  Get-VM -Nam x", "2022")
    assert [(f.rule, f.line, f.column) for f in findings] == [("unknown-parameter", 2, 10)]
    assert "-Name" in findings[0].message and "full name" in findings[0].message
    assert str(findings[0]).startswith("2:10: [unknown-parameter]")


def test_unknown_parameter_finding_says_where_it_exists() -> None:
    (finding,) = pscheck.check_script("New-VMSwitch -Name s -NetAdapterName a -EnableEmbeddedTeaming $true", "2012")
    assert "Windows Server 2016" in finding.message and "2012 R2" not in finding.message


def test_parameter_set_finding_names_the_sets() -> None:
    (finding,) = pscheck.check_script("Move-VM -Name v -DestinationHost h -IncludeStorage -Vhds @()", "2016")
    assert "NameMultipleDestinations" in finding.message and "NameSingleDestination" in finding.message


def test_fold_typography() -> None:
    assert pscheck.fold_typography("\u2018a\u2019\u201a\u201b \u201cb\u201d\u201e \u2013\u2014\u2015") == "'a''' \"b\"\" ---"
    assert pscheck.fold_typography("\u201f") == "\u201f"  # PowerShell does not treat U+201F as a quote


@pytest.mark.parametrize(
    ("header", "block", "problem"),
    [
        ({"Name": "string"}, "param([string] $Name)", None),
        ({"Name": "string[]", "Count": "int", "Ids": "int[]"}, "param([string[]]$Name, [int64]$Count, [long[]]$Ids)", None),
        ({"Force": "switch", "On": "bool"}, "param([Parameter()][switch] $Force, [bool] $On = $false)", None),
        ({}, "param()", None),
        ({"Name": "string"}, "param([string] $Nmae)", "not in the param() block"),
        ({"Name": "string"}, "param([string] $Name, [string] $Extra)", "not declared in the header"),
        ({"Name": "string[]"}, "param([string] $Name)", "[string[]]"),
        ({"Count": "int"}, "param([string] $Count)", "[int64]"),
        ({"On": "bool"}, "param([switch] $On)", "[bool]"),
        ({"Name": "string"}, "$x = 1", "no param() block"),
        ({}, "function f { param([string] $Inner) }", None),
    ],
)
def test_param_block_must_match_header(header: dict[str, str], block: str, problem: str | None) -> None:
    findings = pscheck.check_param_block(header, block)
    if problem is None:
        assert not findings, _show(findings)
    else:
        assert findings and problem in _show(findings)


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ("{{ template_name }} {{ meta.summary | replace('#>', '# >') }} {{ version ~ ps_version }}", True),
        ("{% if version is at_least('2016') %}x{% endif %}{{ meta.depth }}", True),
        ("{% for p in meta.params %}{{ p }}{% endfor %}", True),
        ("{% set d = meta.depth %}{{ d }}", True),
        ("{% for p in params %}{{ p }}{% endfor %}", False),
        ("$x = '{{ Name }}'", False),
        ("{{ params.Name }}", False),
        ("{% set v = value %}{{ v }}", False),
        ("{{ version }}{{ host }}", False),
        ("{% if Force %}x{% endif %}", False),
    ],
)
def test_jinja_scan_verdicts(source: str, ok: bool) -> None:
    assert (not pscheck.check_jinja_source(source)) is ok


def test_error_action_detection() -> None:
    assert pscheck.sets_error_action_stop("$ErrorActionPreference = 'Stop'")
    assert pscheck.sets_error_action_stop('$errorActionPreference = "Stop"')
    assert not pscheck.sets_error_action_stop("$ErrorActionPreference = 'Continue'")
    assert not pscheck.sets_error_action_stop("function f { $ErrorActionPreference = 'Stop' }")
    assert not pscheck.sets_error_action_stop("# $ErrorActionPreference = 'Stop'")


BROKEN_TEMPLATES = {
    # a value interpolated into the code
    "bad_interp": (
        "params:\n  Name: {type: string}\n",
        "    $vm = Get-VM -Name '{{ meta.params.Name.doc }}{{ Name }}'\n    $result = @{}",
        {"jinja", "render"},
    ),
    # a parameter from another set, and a 2016 parameter for every version
    "bad_sets": (
        "params: {}\n",
        "    Move-VM -Name a -DestinationHost b -IncludeStorage -Vhds @() -RemoveSourceUnmanagedVhds\n    $result = $null",
        {"parameter-set", "unknown-parameter"},
    ),
    # PowerShell 7 syntax
    "bad_syntax": (
        "params: {}\n",
        "    $result = $null ?? 1",
        {"parse", "newer-syntax"},
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN_TEMPLATES))
def test_check_template_rejects_broken_templates(tmp_path: Path, name: str) -> None:
    header, body, rules = BROKEN_TEMPLATES[name]
    (tmp_path / f"{name}.ps1.j2").write_text(
        "{#- hvauto\nsummary: a broken template\ntargets: [2012r2, 2016]\n"
        + header
        + "-#}\n{% extends \"_base.ps1.j2\" %}\n{% block body %}\n"
        + body
        + "\n{% endblock %}\n",
        encoding="utf-8",
    )
    renderer = Renderer(extra_dirs=[tmp_path])
    findings = [f for v in ("2012r2", "2016") for f in pscheck.check_template(renderer, name, v)]
    assert {f.rule for f in findings} >= rules, _show(findings)


def test_check_template_requires_declared_targets(tmp_path: Path) -> None:
    (tmp_path / "no_targets.ps1.j2").write_text(
        '{#- hvauto\nsummary: x\nparams: {}\n-#}\n{% extends "_base.ps1.j2" %}\n'
        "{% block body %}\n    $result = 1\n{% endblock %}\n",
        encoding="utf-8",
    )
    findings = pscheck.check_template(Renderer(extra_dirs=[tmp_path]), "no_targets", "2022")
    assert {f.rule for f in findings} == {"header"}, _show(findings)


def test_check_template_requires_error_action_stop(tmp_path: Path) -> None:
    (tmp_path / "no_stop.ps1.j2").write_text(
        "{#- hvauto\nsummary: x\ntargets: [2022]\nparams: {}\n-#}\n[CmdletBinding()]\nparam()\n"
        "ConvertTo-Json -InputObject @{ ok = $true } -Compress -Depth 2\n",
        encoding="utf-8",
    )
    findings = pscheck.check_template(Renderer(extra_dirs=[tmp_path]), "no_stop", "2022")
    assert {f.rule for f in findings} == {"error-action"}, _show(findings)


def test_the_param_block_is_generated_from_the_header(tmp_path: Path) -> None:
    """One declaration: a template that writes its own param() block is refused, and the generated one
    makes a required parameter Mandatory and gives the others the header's defaults."""
    (tmp_path / "own_params.ps1.j2").write_text(
        '{#- hvauto\nsummary: x\ntargets: [2016]\nparams:\n  Name: {type: string, required: true}\n-#}\n'
        '{% extends "_base.ps1.j2" %}\n{% block params %}\n    [string] $Name\n{% endblock %}\n'
        "{% block body %}\n    $result = 1\n{% endblock %}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="param\\(\\) block is generated"):
        Renderer(extra_dirs=[tmp_path]).meta("own_params")
    body = RENDERER.render("switch_create", "2022", {"Name": "x"}).body
    assert "[Parameter(Mandatory = $true)] [string] $Name," in body
    assert "[bool] $AllowManagementOS = $true," in body and "[string] $BandwidthMode = 'Absolute'" in body
    assert ".PARAMETER Name" in body and ".SYNOPSIS" in body


def test_the_other_templates_follow_microsofts_documentation() -> None:
    """Issue 11 item 7: each a rule of its own."""
    from hvauto.render import Renderer

    r = Renderer()
    # Set-Acl writes the owner too, and fails on a folder another account owns: only the access rules are written.
    for v in ("2012", "2012r2", "2022"):
        body = r.render("smb_share_apply", v, {"Name": "VMs", "Path": "D:\\S"}).body
        assert "Set-Acl -" not in body and "GetAccessControl('Access')" in body and ".SetAccessControl($acl)" in body
    # The FQDN from Win32_ComputerSystem, not from what the resolver says of 'localhost'.
    for t in ("host_facts", "migrate_dest_preflight"):
        body = r.render(t, "2022", {} if t == "host_facts" else {"Name": "", "VmId": "", "Path": ""}).body
        assert "::GetHostEntry(" not in body and "$cs.DNSHostName" in body
    # Get-VM on 2012 has no Generation: every VM there is generation 1.
    assert "$vm.Generation" not in r.render("vm_list", "2012", {}).body
    assert "$vm.Generation" in r.render("vm_list", "2012r2", {}).body
