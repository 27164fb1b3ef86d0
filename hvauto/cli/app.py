"""The state one CLI invocation shares between its commands, and the options they share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .output import Output

if TYPE_CHECKING:
    from hvauto.inventory import Inventory
    from hvauto.session import Session


def _record_output(ctx: typer.Context, value: Output) -> Output:
    """Every command's ``--output``: noted on the App as it is parsed, so an error the command
    raises (even before it reads the inventory) comes out in the form asked for."""
    obj = ctx.find_root().obj
    if isinstance(obj, App):
        obj.output = value
    return value


OutputOpt = Annotated[Output, typer.Option("--output", "-o", callback=_record_output,
                                           help="table for people, json for programs (JSON lines).")]
RenderOpt = Annotated[bool, typer.Option("--render", help="Print the exact PowerShell that would run; contact no host.")]
WhatIfOpt = Annotated[bool, typer.Option("--what-if", help="Show the plan; change nothing.")]


@dataclass
class App:
    inventory_path: Path | None = None
    retries: int = 4
    #: Hosts contacted at once by a command that fans out (root ``--forks``); None: min(hosts, 64).
    forks: int | None = None
    #: The command's ``--output`` (set while its options are parsed): errors are reported in it too.
    output: Output = Output.table
    _inventory: Inventory | None = None
    _session: Session | None = None

    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            from hvauto.inventory import load

            self._inventory = load(self.inventory_path)
        return self._inventory

    @property
    def session(self) -> Session:
        if self._session is None:
            from hvauto.remote.retry import RetryPolicy
            from hvauto.session import MAX_WORKERS, Session

            self._session = Session(self.inventory, retry=RetryPolicy(attempts=max(1, self.retries)),
                                    max_workers=self.forks or MAX_WORKERS)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def get_app(ctx: typer.Context) -> App:
    obj = ctx.find_root().obj
    assert isinstance(obj, App)
    return obj
