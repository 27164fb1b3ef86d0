"""How the wire endpoint recognises a script it is asked to run (no network: pure parsing)."""

from __future__ import annotations

import base64

import pytest

from hvauto.lab.wire import scripts, soap
from hvauto.lab.wire.shells import WinRSShell, clixml_string, error_view
from hvauto.render import render

HOSTILE = ["x'; Remove-VM * -Force; '", "$(Stop-Computer)", "`n#>", "\u00e9\u4e2d", "_x000D_"]


def test_the_self_contained_form_gives_back_template_version_and_values() -> None:
    script = render("vm_list", "2012r2", {"Name": HOSTILE})
    run = scripts.from_text(script.as_text())
    assert (run.template, run.version, run.params) == ("vm_list", "2012r2", {"Name": HOSTILE})
    assert scripts.from_text(script.as_text().replace("\n", "\r\n")).params == {"Name": HOSTILE}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: "Stop-Computer\n" + t,  # code before the prologue
        lambda t: t.replace("$hvautoParams = @{}", "$hvautoParams = @{}; Stop-Computer"),  # inside it
        lambda t: t + "\nStop-Computer",  # code after the script block
        lambda t: t.replace("$hvautoEnvelope = '", "$hvautoEnvelope = '$(Stop-Computer)"),  # not base64
    ],
    ids=["before", "inside", "after", "envelope"],
)
def test_anything_but_the_fixed_prologue_is_refused(tamper: object) -> None:
    text = render("vm_list", "2022", {"Name": ["vm01"]}).as_text()
    with pytest.raises(scripts.NotATemplate):
        scripts.from_text(tamper(text))  # type: ignore[operator]


def test_psrp_values_come_from_the_parameters_not_the_text() -> None:
    script = render("vm_list", "2022", {})
    run = scripts.from_psrp(script.body, [("Name", ["a", "b"])])
    assert (run.template, run.version, run.params) == ("vm_list", "2022", {"Name": ["a", "b"]})
    with pytest.raises(scripts.NotATemplate):
        scripts.from_psrp("Get-Process", [])
    with pytest.raises(scripts.NotATemplate):
        scripts.from_psrp(script.body, [(None, "positional")])


def test_winrs_stdin_is_the_loader_framing_or_plain_text() -> None:
    text = render("vm_list", "2022", {}).as_text()
    assert WinRSShell.script_text(base64.b64encode(text.encode()) + b"!") == text
    assert WinRSShell.script_text(text.encode()) == text.strip()


def test_errors_on_stderr_read_back_as_windows_powershell_writes_them() -> None:
    lines = error_view({"message": "Hyper-V was unable to find a virtual machine with name \"x\".",
                        "category": "InvalidArgument", "fqid": "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM",
                        "target": "x", "exception": "Microsoft.HyperV.PowerShell.VirtualizationException"})
    assert lines[1] == "    + CategoryInfo          : InvalidArgument: (x:String) [], VirtualizationException"
    assert lines[2] == "    + FullyQualifiedErrorId : InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert clixml_string("a_x0041_<b>\r\n") == "a_x005F_x0041_&lt;b&gt;_x000D__x000A_"


def test_operation_timeout_fault_carries_the_code_clients_branch_on() -> None:
    req = soap.parse(
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        b'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>'
        b"<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</a:Action>"
        b"<a:MessageID>uuid:1</a:MessageID><w:OperationTimeout>PT1.5S</w:OperationTimeout>"
        b"</s:Header><s:Body/></s:Envelope>")
    assert (req.action, req.operation_timeout) == ("Receive", 1.5)
    body = soap.operation_timeout_fault(req, "hostA").decode()
    assert 'Code="2150858793"' in body
    assert "RelatesTo>uuid:1</" in body
