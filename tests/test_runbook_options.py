"""A runbook operation's options are its CLI command's parameters, read from the Typer signature:
declared once, so an option added to a command is a runbook option (and in the schema) at once."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Annotated

import pytest
import typer

from hvauto.cli import vm as vm_cli
from hvauto.cli.app import OutputOpt, RenderOpt
from hvauto.cli.output import Output
from hvauto.errors import ExitCode
from hvauto.runbook import operations

from .conftest import Lab, hv
from .test_startup import _imported_modules

#: The table of options each operation re-declared before they were read from the CLI:
#: (type, required, choices, keyword of the function when it differs). Docs come from the CLI's help now.
BEFORE = {
    "delegation.grant": {"source": ("host", False, (), None), "to": ("host[]", False, (), None),
                         "services": ("str[]", False, (), None), "mesh": ("str", False, (), None)},
    "delegation.revoke": {"source": ("host", True, (), None), "to": ("host[]", True, (), None),
                          "services": ("str[]", False, (), None)},
    "delegation.show": {},
    "evacuate": {"to": ("host[]", False, (), None), "max_parallel": ("int", False, (), None),
                 "poll_interval": ("number", False, (), None)},
    "fabric.apply": {"spec": ("path", True, (), None), "force": ("bool", False, (), None)},
    "fabric.plan": {"spec": ("path", True, (), None), "force": ("bool", False, (), None)},
    "host.facts": {},
    "host.migration": {"enable": ("bool", False, (), None), "auth": ("str", False, ("kerberos", "credssp"), None),
                       "networks": ("str[]", False, (), None), "use_any_network": ("bool", False, (), None),
                       "performance": ("str", False, ("tcpip", "compression", "smb"), None),
                       "max_vm": ("int", False, (), None), "max_storage": ("int", False, (), None)},
    "migrate": {"vm": ("str", True, (), None), "dest": ("host", True, (), None), "from": ("host", False, (), "source"),
                "live": ("bool", False, (), None), "storage_path": ("str", False, (), None),
                "poll_interval": ("number", False, (), None)},
    "migrate.cancel": {"vm": ("str", True, (), None), "from": ("host", False, (), "source")},
    "smb.grant": {"name": ("str", True, (), None), "server": ("host", True, (), None),
                  "hosts": ("host[]", True, (), None), "no_delegation": ("bool", False, (), None)},
    "smb.remove": {"name": ("str", True, (), None), "server": ("host", True, (), None),
                   "force": ("bool", False, (), None)},
    "smb.revoke": {"name": ("str", True, (), None), "server": ("host", True, (), None),
                   "hosts": ("host[]", True, (), None)},
    "smb.share": {"name": ("str", True, (), None), "server": ("host", True, (), None), "path": ("str", True, (), None),
                  "hosts": ("host[]", True, (), None), "group": ("str", False, (), None),
                  "admins": ("str[]", False, (), None), "continuously_available": ("bool", False, (), None),
                  "encrypt": ("bool", False, (), None), "prune": ("bool", False, (), None),
                  "no_delegation": ("bool", False, (), None), "allow_broad": ("bool", False, (), None)},
    "smb.show": {"name": ("str", True, (), None), "server": ("host", True, (), None)},
    "storage.move": {"vm": ("str", True, (), None), "path": ("str", True, (), None), "host": ("host", False, (), None),
                     "poll_interval": ("number", False, (), None)},
    "switch.create": {"name": ("str", True, (), None), "type": ("str", False, ("external", "internal", "private"), None),
                      "adapter": ("str[]", False, (), None), "management_os": ("bool", False, (), None),
                      "bandwidth_mode": ("str", False, ("absolute", "weight", "none", "default"), None)},
    "switch.list": {},
    "switch.remove": {"name": ("str", True, (), None), "force": ("bool", False, (), None)},
    "vm.list": {"name": ("str[]", False, (), None)},
}


@pytest.fixture
def fresh() -> Iterator[None]:
    operations.clear_cache()
    yield
    operations.clear_cache()


def test_every_cli_operation_reads_its_options_from_its_command(fresh: None) -> None:
    derived = {name: {k: (o.type, o.required, o.choices, o.param) for k, o in op.options.items()}
               for name, op in operations.OPERATIONS.items() if op.cli}
    assert derived == BEFORE
    assert {name for name, op in operations.OPERATIONS.items() if not op.cli} == {"assert", "report", "powershell"}


def test_an_option_doc_is_the_commands_help(fresh: None) -> None:
    assert operations.OPERATIONS["migrate"].options["from"].doc == "Source host (else every Hyper-V host is asked)"


def test_validating_a_runbook_imports_no_operation_code(lab: Lab) -> None:
    (lab.dir / "rb.yml").write_text("name: x\ntarget: hostA\nsteps:\n  - vm.list: {name: [vm01]}\n")
    names = _imported_modules("-i", str(lab.paths.inventory), "runbook", "validate", str(lab.dir / "rb.yml"))
    assert "hvauto.cli.params" in names
    assert not {n for n in names if n.startswith("hvauto.ops.") or n.split(".")[0] in ("pypsrp", "winrm")}


def test_help_does_not_read_the_cli_for_the_runbook() -> None:
    names = _imported_modules("--help")
    assert "hvauto.cli.params" not in names and "hvauto.runbook.operations" not in names


def test_an_option_added_to_a_cli_command_is_a_runbook_option_without_another_edit(
        lab: Lab, fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vm list` grows --state (a choice): the runbook schema, validate and the step see it."""

    def list_with_state(
        ctx: typer.Context,
        hosts: Annotated[list[str] | None, typer.Argument(help="Hosts.")] = None,
        name: Annotated[list[str] | None, typer.Option("--name", "-n", help="Only VMs with this exact name.")] = None,
        state: Annotated[str | None, typer.Option("--state", help="Only VMs in this state.")] = None,
        output: OutputOpt = Output.table,
        render: RenderOpt = False,
    ) -> None:
        """List VMs."""

    (info,) = [c for c in vm_cli.app.registered_commands if c.name == "list"]
    monkeypatch.setattr(info, "callback", list_with_state)

    res = hv("runbook", "schema")
    assert res.code == 0
    props = json.loads(res.out)["$defs"]["op:vm.list"]["properties"]
    assert props["state"]["description"] == "Only VMs in this state"
    assert set(props) == {"name", "state"}

    (lab.dir / "rb.yml").write_text(textwrap.dedent("""\
        name: x
        target: hostA
        steps:
          - vm.list: {state: Running}
          - vm.list: {state: 5}
        """))
    res = hv("runbook", "validate", "rb.yml")
    assert res.code == ExitCode.USAGE
    assert "rb.yml:5: vm.list: option 'state': expected str, got an integer" in res.err, res.err
    assert "rb.yml:4:" not in res.err
