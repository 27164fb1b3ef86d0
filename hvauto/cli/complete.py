"""Shell completion of hvauto's own names: hosts and groups from the inventory, VMs, runbook files.

VM names come from a small cache (``vms.json`` in hvauto's cache directory, kept for ten minutes)
that a completion fills by asking the Hyper-V hosts once, in parallel and without retries; a
host that does not answer adds nothing. Completion never prints an error: a shell
would show it as a candidate.
"""

import json
import time
from pathlib import Path
from typing import Any

#: How long VM names read from the hosts are reused.
VM_CACHE_SECONDS = 600


def _inventory(ctx: Any) -> Any:
    from hvauto.inventory import load

    explicit = None
    root = ctx.find_root() if ctx is not None else None
    if root is not None:
        explicit = root.params.get("inventory")
    try:
        return load(explicit)
    except Exception:  # noqa: BLE001 - no inventory: nothing to offer
        return None


def hosts(ctx: Any, incomplete: str) -> list[str]:
    """Host and group names from the inventory."""
    inv = _inventory(ctx)
    if inv is None:
        return []
    names = [*inv.hosts, *inv.groups]
    return [n for n in names if n.lower().startswith(incomplete.lower())]


def _cache_file() -> Path:
    from hvauto.render import cache_dir

    return cache_dir() / "vms.json"


def vm_names(inv: Any) -> list[str]:
    """The VMs of the inventory's Hyper-V hosts: from the cache when fresh, else asked (and cached)."""
    path = _cache_file()
    key = str(inv.path)
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        entry = cached.get(key) or {}
        if time.time() - float(entry.get("at", 0)) < VM_CACHE_SECONDS:
            return list(entry.get("vms") or [])
    except (OSError, ValueError, AttributeError):
        cached = {}
    from hvauto.ops import vms as vm_ops
    from hvauto.remote.retry import NO_RETRY
    from hvauto.session import Session

    names: list[str] = []
    with Session(inv, retry=NO_RETRY) as session:
        group = session.fan_out(inv.with_role("hyperv"), lambda h: vm_ops.list_on(session, h))
        for found in group.values().values():
            names += [v.name for v in found]
    names = sorted(set(names), key=str.lower)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        cached = cached if isinstance(cached, dict) else {}
        cached[key] = {"at": time.time(), "vms": names}
        path.write_text(json.dumps(cached), encoding="utf-8")
    except OSError:
        pass
    return names


def vms(ctx: Any, incomplete: str) -> list[str]:
    inv = _inventory(ctx)
    if inv is None:
        return []
    try:
        names = vm_names(inv)
    except Exception:  # noqa: BLE001 - completion offers what it can, never an error
        return []
    return [n for n in names if n.lower().startswith(incomplete.lower())]


def runbooks(ctx: Any, incomplete: str) -> list[str]:
    """YAML files under the current directory and ./playbooks."""
    found = []
    for base in (Path("."), Path("playbooks")):
        if base.is_dir():
            found += [str(p) for p in sorted(base.glob("*.y*ml")) if p.suffix in (".yml", ".yaml")]
    return [f for f in found if f.startswith(incomplete)]


__all__ = ["hosts", "runbooks", "vm_names", "vms"]
