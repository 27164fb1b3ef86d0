"""Read computer accounts from Active Directory: constrained delegation and protocol transition.

One reader for every command that needs delegation state (the migration preflight, the
delegation commands): one round trip to the AD host for any number of computers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hvauto.session import Session

#: The service live migration authenticates to on the destination (with ``cifs`` for the storage).
MIGRATION_SERVICE = "Microsoft Virtual System Migration Service"


@dataclass(frozen=True)
class ADComputer:
    query: str
    found: bool
    name: str = ""
    sam: str = ""
    dns: str = ""
    sid: str = ""
    allowed_to_delegate_to: list[str] = field(default_factory=list)
    trusted_to_auth_for_delegation: bool = False

    @classmethod
    def from_result(cls, d: dict[str, Any]) -> ADComputer:
        return cls(
            query=str(d["query"]),
            found=bool(d["found"]),
            name=str(d.get("name") or ""),
            sam=str(d.get("sam") or ""),
            dns=str(d.get("dns") or ""),
            sid=str(d.get("sid") or ""),
            allowed_to_delegate_to=[str(s) for s in d.get("allowed_to_delegate_to") or []],
            trusted_to_auth_for_delegation=bool(d.get("trusted_to_auth_for_delegation")),
        )

    def delegates_to(self, spn: str) -> bool:
        """SPNs compare case-insensitively, as AD does."""
        return spn.lower() in {s.lower() for s in self.allowed_to_delegate_to}


def _first_ad_host(session: Session) -> str | None:
    hosts = session.inventory.with_role("ad")
    return hosts[0] if hosts else None


def ad_host(session: Session) -> str | None:
    """The inventory's first host with the ``ad`` role, or None when it has none."""
    return _first_ad_host(session)


def computer_params(names: list[str]) -> dict[str, Any]:
    return {"Name": list(names)}


def get_computers(session: Session, names: list[str], *, ad_host: str | None = None) -> dict[str, ADComputer]:
    """The accounts of ``names`` (keyed by the lower-cased name asked for), in one round trip to the AD host."""
    host = ad_host if ad_host is not None else _first_ad_host(session)
    if host is None:
        from hvauto.errors import ConfigError

        raise ConfigError("the inventory has no host with the 'ad' role to read Active Directory from",
                          key="hosts.*.roles")
    data = session.run(host, "ad_computer_get", computer_params(names)).data
    return {str(c["query"]).lower(): ADComputer.from_result(c) for c in data["computers"]}


def migration_spns(dest_short: str, dest_fqdn: str) -> list[str]:
    """The four SPNs a source must be allowed to delegate to for a shared-nothing move to ``dest``."""
    names = [dest_short] + ([dest_fqdn] if dest_fqdn and dest_fqdn.lower() != dest_short.lower() else [])
    return [f"{service}/{n}" for service in (MIGRATION_SERVICE, "cifs") for n in names]
