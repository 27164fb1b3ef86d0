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


def host_to_change(inventory: Inventory, name: str, *, label: str = "") -> HostConfig:
    """One host a changing command acts on (see :func:`hosts_to_change`)."""
    try:
        return inventory.host(name)
    except UnknownHostError as exc:
        text = f"{label}: {exc.message}" if label else exc.message
        raise ValidationError([text + (f" ({exc.hint})" if exc.hint else "")]) from None
