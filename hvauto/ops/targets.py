"""Target helpers shared by the operations that grant access or delegation to domain hosts.

They live here, not in :mod:`hvauto.ops.smb`, so that :mod:`hvauto.ops.delegation` and
:mod:`hvauto.ops.smb` can use them without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable

from hvauto.errors import UnknownHostError
from hvauto.inventory import HostConfig, Inventory


def split_list(values: Iterable[str] | None) -> list[str]:
    """``--hosts a,b --hosts c`` -> [a, b, c], without blanks or repeats (case-insensitive)."""
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            part = part.strip()
            if part and part.lower() not in (o.lower() for o in out):
                out.append(part)
    return out


def check_domain_host(inv: Inventory, name: str, problems: list[str], *, role: str | None = None,
                      what: str = "host") -> HostConfig | None:
    """An inventory host with a domain (a computer account) and, when asked, a role."""
    try:
        cfg = inv.host(name)
    except UnknownHostError:
        problems.append(f"unknown {what} {name!r}: not in the inventory (known: {', '.join(inv.hosts)})")
        return None
    if role is not None and role not in cfg.roles:
        problems.append(f"{cfg.name} is not a Hyper-V host (its roles: {', '.join(cfg.roles) or 'none'})")
        return None
    if not cfg.domain:
        problems.append(f"{cfg.name} is not in a domain (no `domain` for it in the inventory): "
                        "only a domain computer account can be granted access or delegation")
        return None
    return cfg
