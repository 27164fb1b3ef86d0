"""Validate a move's input before any host is contacted, and find the VM on the hosts."""

from __future__ import annotations

import math
import time

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
             source_flag: str = "--from", poll_interval: float = 1.0) -> None:
    """Every input problem at once, before any remote call (``source_flag``: the option that named the source)."""
    problems: list[str] = []
    if not (isinstance(poll_interval, (int, float)) and math.isfinite(poll_interval)
            and 0 <= poll_interval <= MAX_POLL_INTERVAL):
        # inf would crash the sleep after the move started, NaN would never sleep at all.
        problems.append(f"poll interval {poll_interval!r}: expected a number of seconds from 0 to "
                        f"{MAX_POLL_INTERVAL:g}")
    if not vm.strip():
        problems.append("VM name is empty")
    hyperv = {h.lower() for h in session.inventory.with_role("hyperv")}
    for label, host in (("destination", dest), (source_flag, source)):
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


#: Seconds before a second look for a VM that neither host has (a move may be switching it over).
LOOK_AGAIN = 1.0


def locate_from(session: Session, vm: str, *, source: str | None, dest: str) -> Located:
    """Where the VM to move is. With ``--from`` the source settles a name clash: a VM of that name on the source is
    the one (another of the same name on the destination is not the same VM); only when the source has none is the
    destination asked whether the move is already done."""
    if not source:
        return locate_one(session, vm)
    src = session.host(source).name
    found = locate(session, vm, hosts=[src, dest])
    if not found:
        # The two hosts are read at two moments: a move that ends between them leaves the VM on neither
        # (gone from the source, not yet on the destination). Look once more before calling it missing.
        time.sleep(LOOK_AGAIN)
        found = locate(session, vm, hosts=[src, dest])
    here = [f for f in found if f.host.lower() == src.lower()]
    there = [f for f in found if f.host.lower() == dest.lower()]
    if len(here) > 1 or (not here and len(there) > 1):
        where = src if len(here) > 1 else dest
        raise AmbiguousError(f"{where} has more than one VM named {vm!r}", hint="rename one (Rename-VM) first")
    if here:
        return here[0]
    if there:
        return there[0]
    raise NotFoundError(f"VM {vm!r} is not on {source}", hint="`hvauto vm list` shows every VM")
