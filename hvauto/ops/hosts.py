"""Host facts: identity, OS, PowerShell, memory and Hyper-V migration settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.session import GroupResult, Session


@dataclass(frozen=True)
class MigrationSettings:
    enabled: bool
    auth_type: str
    use_any_network: bool
    networks: list[str]
    max_vm_migrations: int
    max_storage_migrations: int
    performance_option: str | None


@dataclass(frozen=True)
class HostFacts:
    name: str
    fqdn: str
    os_version: str | None
    os_caption: str
    kernel: str
    ps_version: str
    memory_total: int
    memory_free: int
    logical_processors: int
    vm_count: int | None = None
    supported_versions: list[str] = field(default_factory=list)
    migration: MigrationSettings | None = None

    @classmethod
    def from_result(cls, name: str, data: dict[str, Any]) -> HostFacts:
        hv = data.get("hyperv") or None
        mig = None
        if hv:
            m = hv["migration"]
            mig = MigrationSettings(
                enabled=bool(m["enabled"]),
                auth_type=str(m["auth_type"]),
                use_any_network=bool(m["use_any_network"]),
                networks=list(m.get("networks") or []),
                max_vm_migrations=int(m["max_vm_migrations"]),
                max_storage_migrations=int(m["max_storage_migrations"]),
                performance_option=m.get("performance_option"),
            )
        return cls(
            name=name,
            fqdn=str(data.get("fqdn") or ""),
            os_version=versions.from_kernel_version(str(data["os"]["version"])),
            os_caption=str(data["os"]["caption"]),
            kernel=str(data["os"]["version"]),
            ps_version=str(data["ps_version"]),
            memory_total=int(data["memory"]["total_bytes"]),
            memory_free=int(data["memory"]["free_bytes"]),
            logical_processors=int(data["logical_processors"]),
            vm_count=int(hv["vm_count"]) if hv else None,
            supported_versions=list(hv.get("supported_versions") or []) if hv else [],
            migration=mig,
        )


def facts(session: Session, host: str) -> HostFacts:
    # host_facts is written for PowerShell 3.0, so it runs before we know the version.
    cfg = session.host(host)
    version = session.known_version(cfg.name) or versions.OLDEST
    data = session.run(cfg.name, "host_facts", version=version).data
    found = HostFacts.from_result(cfg.name, data)
    session.learn_version(cfg.name, found.os_version)
    return found


def facts_many(session: Session, hosts: list[str]) -> GroupResult:
    return session.fan_out(hosts, lambda h: facts(session, h))
