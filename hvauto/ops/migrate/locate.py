"""Validate a move's input before any host is contacted, and find the VM on the hosts."""

from __future__ import annotations

import math

from hvauto.errors import (
    AmbiguousError,
    HvautoError,
    NotFoundError,
    ValidationError,
)
from hvauto.ops import vms as vm_ops
from hvauto.ops.migrate.model import Located
from hvauto.session import Session


def is_windows_path(path: str) -> bool:
    if path.startswith("\\\\"):
        parts = [p for p in path[2:].split("\\") if p]
        return len(parts) >= 2
    return len(path) >= 3 and path[0].isalpha() and path[1] == ":" and path[2] == "\\"


#: The longest pause between two polls of a migration job.
MAX_POLL_INTERVAL = 3600.0


def validate(session: Session, *, vm: str, dest: str | None, source: str | None, storage_path: str | None,
             poll_interval: float = 1.0) -> None:
    """Every input problem at once, before any remote call."""
    problems: list[str] = []
    if not (isinstance(poll_interval, (int, float)) and math.isfinite(poll_interval)
            and 0 <= poll_interval <= MAX_POLL_INTERVAL):
        # inf would crash the sleep after the move started, NaN would never sleep at all.
        problems.append(f"poll interval {poll_interval!r}: expected a number of seconds from 0 to "
                        f"{MAX_POLL_INTERVAL:g}")
    if not vm.strip():
        problems.append("VM name is empty")
    hyperv = {h.lower() for h in session.inventory.with_role("hyperv")}
    for label, host in (("destination", dest), ("--from", source)):
        if host is None:
            continue
        try:
            name = session.host(host).name
        except HvautoError as exc:
            problems.append(f"{label}: {exc.message}")
            continue
        if name.lower() not in hyperv:
            problems.append(f"{label}: {name} is not a Hyper-V host (no 'hyperv' role in the inventory)")
    if dest and source and dest.lower() == source.lower():
        problems.append("the destination is the source")
    if storage_path is not None and not is_windows_path(storage_path):
        problems.append(f"--storage-path {storage_path!r} is not an absolute Windows path (D:\\VMs\\vm01 or "
                        "\\\\server\\share\\vm01)")
    if problems:
        raise ValidationError(problems)


def locate(session: Session, vm: str, *, hosts: list[str] | None = None) -> list[Located]:
    """Where the VM is: every Hyper-V host asked at once. Unreachable hosts fail the search only if it finds nothing."""
    targets = hosts or session.inventory.with_role("hyperv")
    group = vm_ops.list_many(session, targets, [vm])
    found = [Located(h, v) for h, vs in group.values().items() for v in vs if v.name.lower() == vm.lower()]
    if not found:
        group.raise_if_failed()
    return found


def locate_one(session: Session, vm: str, *, hosts: list[str] | None = None) -> Located:
    found = locate(session, vm, hosts=hosts)
    if not found:
        where = ", ".join(hosts or session.inventory.with_role("hyperv"))
        raise NotFoundError(f"VM {vm!r} was not found on {where}", hint="`hvauto vm list` shows every VM")
    if len(found) > 1:
        raise AmbiguousError(f"VM {vm!r} is on more than one host: {', '.join(f.host for f in found)}",
                             hint="pass --from HOST to say which one")
    return found[0]
