"""The fabric spec: its dataclasses and :func:`load_spec` (schema, then the design rules), before any host is contacted."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from hvauto import schemas, yamldoc
from hvauto.errors import ValidationError
from hvauto.ops.fabric.rules import _design_problems, _net

SCHEMA = "fabric.schema.json"


ROLES_FIRST = ("management", "cluster", "live_migration", "storage", "other")


@dataclass(frozen=True)
class VnicSpec:
    name: str
    role: str
    weight: int | None = None
    vlan: int | None = None
    subnet: str | None = None
    gateway: str | None = None


@dataclass(frozen=True)
class HostSpec:
    adapters: list[str] | None = None
    iscsi_adapters: list[str] | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    #: Per iSCSI adapter, the initiator address it carries (CIDR).
    iscsi_addresses: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IscsiPath:
    """One way from a host to a portal: the dedicated adapter, its initiator address, the portal in its subnet."""

    adapter: str
    address: str
    prefix: int
    portal: str


@dataclass(frozen=True)
class FabricSpec:
    path: str
    switch: str
    adapters: list[str]
    teaming: str = "auto"
    team_name: str | None = None
    bandwidth_mode: str = "Weight"
    management_os: bool = False
    default_flow_weight: int | None = None
    vnics: list[VnicSpec] = field(default_factory=list)
    migration_networks: list[str] | None = None
    iscsi_adapters: list[str] = field(default_factory=list)
    iscsi_portals: list[str] = field(default_factory=list)
    iscsi_port: int = 3260
    iscsi_targets: list[str] = field(default_factory=list)
    prune_vnics: bool = False
    hosts: dict[str, HostSpec] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def host(self, name: str) -> HostSpec:
        for key, value in self.hosts.items():
            if key.lower() == name.lower():
                return value
        return HostSpec()

    def adapters_for(self, host: str) -> list[str]:
        return list(self.host(host).adapters or self.adapters)

    def iscsi_for(self, host: str) -> list[str]:
        own = self.host(host).iscsi_adapters
        return list(own if own is not None else self.iscsi_adapters)

    def iscsi_paths(self, host: str) -> list[IscsiPath]:
        """Every initiator address x portal in its subnet: what MPIO balances over, one session per target each."""
        out = []
        for adapter in self.iscsi_for(host):
            cidr = next((v for k, v in self.host(host).iscsi_addresses.items() if k.lower() == adapter.lower()), None)
            iface = ipaddress.ip_interface(cidr) if cidr else None
            for portal in self.iscsi_portals:
                if iface is not None and ipaddress.ip_address(portal) in iface.network:
                    out.append(IscsiPath(adapter, str(iface.ip), iface.network.prefixlen, portal))
        return out

    def address(self, host: str, vnic: str) -> str | None:
        for key, value in self.host(host).addresses.items():
            if key.lower() == vnic.lower():
                return value
        return None

    @property
    def management(self) -> VnicSpec | None:
        return next((v for v in self.vnics if v.role == "management"), None)

    @property
    def team(self) -> str:
        return self.team_name or f"{self.switch}-Team"

    def ordered_vnics(self) -> list[VnicSpec]:
        """Management first: its address must be up before anything can take an old path away."""
        return sorted(self.vnics, key=lambda v: ROLES_FIRST.index(v.role))


def _line_of_problem(lines: dict[yamldoc.Key, int], problem: str) -> int:
    """The line of the key a design problem starts with (``vnics[1].vlan: ...``)."""
    key: list[str | int] = []
    for name, index in re.findall(r"\.?([^.\[\]:\s]+)|\[(\d+)\]", problem.split(": ", 1)[0]):
        key.append(int(index) if index else name)
    return yamldoc.line_of(lines, tuple(key))


def load_spec(path: str | Path, *, hosts: list[str] | None = None) -> FabricSpec:
    """Read and validate a spec (no remote call); ValidationError lists every problem with key and reason."""
    where = str(path)
    text = yamldoc.read_file(path, what="fabric spec")
    doc, lines = yamldoc.load(text, where, what="fabric spec")
    found = schemas.validate(schemas.load(SCHEMA), doc)
    if found:
        raise ValidationError([f"{where}:{yamldoc.line_of(lines, key)}: {schemas.dotted(key)}: {why}"
                               for key, why in sorted(found, key=lambda p: yamldoc.line_of(lines, p[0]))],
                              what="fabric spec")
    assert isinstance(doc, dict)
    errors, warnings = _design_problems(doc, list(hosts or []))
    if errors:
        raise ValidationError([f"{where}:{_line_of_problem(lines, e)}: {e}" for e in errors], what="fabric spec")
    sw = doc["switch"]
    return FabricSpec(
        path=where,
        switch=str(sw["name"]),
        adapters=list(sw["adapters"]),
        teaming=str(sw.get("teaming", "auto")),
        team_name=sw.get("team_name"),
        bandwidth_mode=str(sw.get("bandwidth_mode", "Weight")),
        management_os=bool(sw.get("management_os", False)),
        default_flow_weight=sw.get("default_flow_weight"),
        vnics=[VnicSpec(name=str(v["name"]), role=str(v["role"]), weight=v.get("weight"), vlan=v.get("vlan"),
                        subnet=v.get("subnet"), gateway=v.get("gateway")) for v in doc.get("vnics") or []],
        migration_networks=[str(_net(n)) for n in doc["migration_networks"]]
        if doc.get("migration_networks") is not None else None,
        iscsi_adapters=list((doc.get("storage") or {}).get("iscsi_adapters") or []),
        iscsi_portals=list(((doc.get("storage") or {}).get("iscsi") or {}).get("portals") or []),
        iscsi_port=int(((doc.get("storage") or {}).get("iscsi") or {}).get("port") or 3260),
        iscsi_targets=list(((doc.get("storage") or {}).get("iscsi") or {}).get("targets") or []),
        prune_vnics=bool(doc.get("prune_vnics", False)),
        hosts={str(k): HostSpec(adapters=v.get("adapters"), iscsi_adapters=v.get("iscsi_adapters"),
                                addresses=dict(v.get("addresses") or {}),
                                iscsi_addresses=dict(v.get("iscsi_addresses") or {}))
               for k, v in (doc.get("hosts") or {}).items()},
        warnings=[f"{where}:{_line_of_problem(lines, w)}: {w}" for w in warnings],
    )
