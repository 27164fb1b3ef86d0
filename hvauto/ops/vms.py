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


def list_many(session: Session, hosts: list[str], names: list[str] | None = None) -> GroupResult:
    """Every VM on every given host, concurrently; one host's failure does not hide the others."""
    return session.fan_out(hosts, lambda h: list_on(session, h, names))
