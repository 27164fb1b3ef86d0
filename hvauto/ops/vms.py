"""VM inventory across Hyper-V hosts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hvauto.session import GroupResult, Session
from hvauto.steps import Step


@dataclass(frozen=True)
class Disk:
    path: str
    size: int | None
    file_size: int | None


@dataclass(frozen=True)
class VM:
    host: str
    name: str
    id: str
    state: str
    cpu_count: int
    memory_startup: int
    memory_assigned: int
    uptime_seconds: int
    generation: int
    version: str
    path: str
    clustered: bool
    disks: list[Disk] = field(default_factory=list)
    switches: list[str] = field(default_factory=list)

    @classmethod
    def from_result(cls, host: str, d: dict[str, Any]) -> VM:
        return cls(
            host=host,
            name=str(d["name"]),
            id=str(d["id"]),
            state=str(d["state"]),
            cpu_count=int(d["cpu_count"]),
            memory_startup=int(d["memory_startup_bytes"]),
            memory_assigned=int(d["memory_assigned_bytes"]),
            uptime_seconds=int(d["uptime_seconds"]),
            generation=int(d["generation"]),
            version=str(d["version"]),
            path=str(d["path"]),
            clustered=bool(d["clustered"]),
            disks=[Disk(str(x["path"]), x.get("size_bytes"), x.get("file_size_bytes")) for x in d.get("disks") or []],
            switches=[str(s) for s in d.get("switches") or []],
        )

    @property
    def disk_bytes(self) -> int:
        return sum(d.file_size or 0 for d in self.disks)


def list_on(session: Session, host: str, names: list[str] | None = None) -> list[VM]:
    data = session.run(host, "vm_list", list_params(names)).data
    return [VM.from_result(session.host(host).name, v) for v in data["vms"]]


def list_params(names: list[str] | None) -> dict[str, Any]:
    return {"Name": list(names or [])}


def list_steps(session: Session, hosts: list[str], names: list[str] | None = None) -> list[Step]:
    return [Step(session.host(h).name, "vm_list", list_params(names), "read the host's VMs") for h in hosts]


@dataclass
class VMDetail:
    host: str
    vm: dict[str, Any]
    #: Each file of the VM and where it lives (``local D:``, ``share \\\\FS\\SHARE``).
    files: list[dict[str, str]]
    #: The doctor's verdict for this VM to each other Hyper-V host (empty with ``moves=False``).
    moves: list[Any] = field(default_factory=list)


def show_steps(session: Session, vm: str, source: str | None) -> list[Step]:
    from hvauto.errors import UsageError

    hosts = [session.host(source).name] if source else session.inventory.with_role("hyperv")
    if not vm.strip():
        raise UsageError("VM name is empty")
    return [Step(h, "vm_show", {"Name": vm}, f"read {vm} in detail") for h in hosts]


def show(session: Session, vm: str, *, source: str | None = None, moves: bool = True) -> VMDetail:
    """``vm show VM``: the VM in detail (found on ``source`` or on any Hyper-V host), and where it can move."""
    from hvauto.errors import AmbiguousError, NotFoundError, UsageError

    if not vm.strip():
        raise UsageError("VM name is empty")
    hosts = [session.host(source).name] if source else session.inventory.with_role("hyperv")
    group = session.fan_out(hosts, lambda h: session.run(h, "vm_show", {"Name": vm}).data)
    found = [(h, v) for h, d in group.values().items() for v in d["vms"]]
    if not found:
        group.raise_if_failed()
        raise NotFoundError(f"VM {vm!r} was not found on {', '.join(hosts)}", hint="`hvauto vm list` shows every VM")
    if len(found) > 1:
        raise AmbiguousError(f"VM {vm!r} is on more than one host: {', '.join(h for h, _ in found)}",
                             hint="pass --from HOST to say which one")
    host, detail = found[0]
    from hvauto.ops.doctor import vm_moves, where

    files = [{"what": "configuration", "path": detail["path"]}]
    for d in detail["disks"]:
        files.append({"what": "disk", "path": d["path"]})
        files += [{"what": "parent disk", "path": p["path"]} for p in d["parents"]]
    if detail["smart_paging_path"] and detail["smart_paging_path"] != detail["path"]:
        files.append({"what": "smart paging", "path": detail["smart_paging_path"]})
    files += [{"what": "DVD (ISO)", "path": p} for p in detail["dvd"]]
    for f in files:
        f["where"] = where(f["path"])
    return VMDetail(host, detail, files, vm_moves(session, host, detail) if moves else [])


def list_many(session: Session, hosts: list[str], names: list[str] | None = None) -> GroupResult:
    """Every VM on every given host, concurrently; one host's failure does not hide the others."""
    return session.fan_out(hosts, lambda h: list_on(session, h, names))
