"""iSCSI and MPIO on a lab host, as the Storage and MPIO modules behave.

The estate's SAN (kind ``san_portal``: a portal address and the targets it offers) answers
discovery and logins. A host keeps whether Multipath-IO is installed and claims iSCSI disks,
its portals (kind ``iscsi_portal``) and its sessions (kind ``iscsi_session``). The rules it
enforces are listed in docs/fidelity.md: the MPIO cmdlets need the feature; a portal needs an
initiator address on the host in the portal's subnet and a SAN that answers there; a login
needs the target at that portal; a second login over the same initiator and portal is refused.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from . import CmdletError, LabCall


def iscsi_state(call: LabCall) -> dict[str, Any]:
    est, host = call.estate, call.name
    return {
        "mpio_installed": bool(call.host.get("mpio_installed")),
        "mpio_claim_iscsi": bool(call.host.get("mpio_claim_iscsi")),
        "portals": [{"address": p["address"], "initiator": p["initiator"]} for p in est.all("iscsi_portal", host=host)],
        "sessions": [{"target": s["target"], "initiator": s["initiator"], "connected": True,
                      "persistent": bool(s.get("persistent"))} for s in est.all("iscsi_session", host=host)],
    }


def _host_addresses(call: LabCall) -> list[ipaddress.IPv4Interface]:
    out = []
    for item in [*call.estate.all("adapter", host=call.name), *call.estate.all("vnic", host=call.name)]:
        for a in item.get("addresses") or []:
            try:
                out.append(ipaddress.IPv4Interface(a))
            except ValueError:
                continue
    return out


def _save_host(call: LabCall, **changes: Any) -> None:
    host = dict(call.host)
    host.update(changes)
    call.estate.put("host", host["key"], host, host=host["host"])
    call.host.update(changes)


def install_mpio(call: LabCall, steps: list[str]) -> None:
    _save_host(call, mpio_installed=True)
    steps.append("installed Multipath-IO")


def claim_iscsi(call: LabCall, steps: list[str]) -> None:
    if not call.host.get("mpio_installed"):
        raise CmdletError("The term 'Enable-MSDSMAutomaticClaim' is not recognized as the name of a cmdlet, function, "
                          "script file, or operable program.", category="ObjectNotFound",
                          fqid="CommandNotFoundException", target="Enable-MSDSMAutomaticClaim",
                          exception="System.Management.Automation.CommandNotFoundException")
    _save_host(call, mpio_claim_iscsi=True)
    steps.append("MPIO claims iSCSI disks (the MSDSM)")


def add_initiator_address(call: LabCall, adapter: str, address: str, prefix: int, steps: list[str]) -> None:
    est = call.estate
    nic = next((a for a in est.all("adapter", host=call.name) if str(a["name"]).lower() == adapter.lower()), None)
    if nic is None:
        raise CmdletError(f"No MSFT_NetIPInterface objects found with property 'InterfaceAlias' equal to '{adapter}'.",
                          category="ObjectNotFound", fqid="CmdletizationQuery_NotFound_InterfaceAlias,New-NetIPAddress",
                          target=adapter, exception="Microsoft.Management.Infrastructure.CimException")
    nic = dict(nic)
    nic["addresses"] = [*list(nic.get("addresses") or []), f"{address}/{prefix}"]
    est.put("adapter", nic["key"], nic, host=call.name)
    steps.append(f"added initiator address {address} on {adapter}")


def _san(call: LabCall, portal: str) -> dict[str, Any] | None:
    return call.estate.get("san_portal", portal)


def new_portal(call: LabCall, portal: str, initiator: str, steps: list[str]) -> None:
    mine = [a for a in _host_addresses(call) if str(a.ip) == initiator]
    if not mine:
        raise CmdletError(f"The initiator address {initiator} is not an address of this computer.",
                          category="InvalidArgument", fqid="MI RESULT 4,New-IscsiTargetPortal", target=initiator,
                          exception="Microsoft.Management.Infrastructure.CimException")
    if _san(call, portal) is None or ipaddress.ip_address(portal) not in mine[0].network:
        raise CmdletError("Connection Failed.", category="NotSpecified", fqid="MI RESULT 1,New-IscsiTargetPortal",
                          target=portal, exception="Microsoft.Management.Infrastructure.CimException")
    key = f"{call.name}/{portal}/{initiator}"
    if call.estate.get("iscsi_portal", key) is None:
        call.estate.put("iscsi_portal", key, {"key": key, "host": call.name, "address": portal,
                                              "initiator": initiator}, host=call.name)
    steps.append(f"added portal {portal} through {initiator}")


def connect_target(call: LabCall, target: str, portal: str, initiator: str, *, multipath: bool, persistent: bool,
                   steps: list[str]) -> None:
    if call.estate.get("iscsi_portal", f"{call.name}/{portal}/{initiator}") is None:
        raise CmdletError("Target portal not found.", category="ObjectNotFound",
                          fqid="MI RESULT 6,Connect-IscsiTarget", target=portal,
                          exception="Microsoft.Management.Infrastructure.CimException")
    san = _san(call, portal) or {}
    if target.lower() not in {str(t).lower() for t in san.get("targets") or []}:
        raise CmdletError("The target name is not found or is marked as hidden from login.", category="ObjectNotFound",
                          fqid="MI RESULT 6,Connect-IscsiTarget", target=target,
                          exception="Microsoft.Management.Infrastructure.CimException")
    key = f"{call.name}/{target.lower()}/{initiator}/{portal}"
    others = [s for s in call.estate.all("iscsi_session", host=call.name) if str(s["target"]).lower() == target.lower()]
    if call.estate.get("iscsi_session", key) is not None or (others and not multipath):
        raise CmdletError("The target has already been logged in via an iSCSI session.", category="NotSpecified",
                          fqid="MI RESULT 1,Connect-IscsiTarget", target=target,
                          exception="Microsoft.Management.Infrastructure.CimException")
    call.estate.put("iscsi_session", key, {"key": key, "host": call.name, "target": target, "initiator": initiator,
                                           "portal": portal, "multipath": multipath, "persistent": persistent},
                    host=call.name)
    steps.append(f"connected {target} through {initiator} to {portal}")


def apply_iscsi(call: LabCall, steps: list[str]) -> None:
    p = call.params
    if p.get("InstallMpio"):
        install_mpio(call, steps)
    if p.get("ClaimIscsi"):
        claim_iscsi(call, steps)
    for a in p.get("IscsiAddresses") or []:
        add_initiator_address(call, str(a["Adapter"]), str(a["Address"]), int(a["Prefix"]), steps)
    for portal in p.get("IscsiPortals") or []:
        new_portal(call, str(portal["Portal"]), str(portal["Initiator"]), steps)
    for c in p.get("IscsiConnect") or []:
        connect_target(call, str(c["Target"]), str(c["Portal"]), str(c["Initiator"]), multipath=True,
                       persistent=True, steps=steps)


__all__ = ["apply_iscsi", "iscsi_state"]
