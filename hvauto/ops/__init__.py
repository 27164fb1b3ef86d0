"""Operations: one module per job, each inspect -> plan -> apply -> verify over a Session."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from hvauto.errors import UnknownHostError, ValidationError

if TYPE_CHECKING:
    from hvauto.inventory import HostConfig, Inventory


def hosts_to_change(inventory: Inventory, targets: Iterable[str], *, label: str = "") -> list[str]:
    """The hosts a changing command acts on, checked up front: an unknown one is invalid input (exit 2),
    not "not found" (exit 4, what a read command says)."""
    try:
        return inventory.resolve(list(targets))
    except UnknownHostError as exc:
        text = f"{label}: {exc.message}" if label else exc.message
        raise ValidationError([text + (f" ({exc.hint})" if exc.hint else "")]) from None


def hyperv_hosts(inventory: Inventory, targets: Iterable[str]) -> list[str]:
    """The Hyper-V hosts named (every one when none is): a host without the ``hyperv`` role is refused up front
    (exit 2), not sent a script that fails there with "The term 'Get-VM' is not recognized"."""
    names = inventory.resolve(list(targets), default_role="hyperv")
    other = [n for n in names if "hyperv" not in inventory.host(n).roles]
    if other:
        raise ValidationError([f"{n} is not a Hyper-V host (its roles: {', '.join(inventory.host(n).roles) or 'none'}"
                               "); hvauto asks only hosts with the 'hyperv' role about VMs and switches"
                               for n in other])
    return names


def host_to_change(inventory: Inventory, name: str, *, label: str = "") -> HostConfig:
    """One host a changing command acts on (see :func:`hosts_to_change`)."""
    try:
        return inventory.host(name)
    except UnknownHostError as exc:
        text = f"{label}: {exc.message}" if label else exc.message
        raise ValidationError([text + (f" ({exc.hint})" if exc.hint else "")]) from None
