"""iSCSI with MPIO in a fabric spec: what a host needs so that each target is reached once per path.

Pure (state in, changes and ``fabric_apply`` parameters out), like the rest of the host plan.
Per host: the Multipath-IO feature, the MSDSM's automatic claim of iSCSI disks, each dedicated
adapter's initiator address, a portal per path, and a session per target per path, multipath
and persistent. A path is an initiator address and a portal in its subnet (:meth:`FabricSpec.iscsi_paths`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hvauto.ops.fabric.spec import FabricSpec

#: The order fabric_apply makes these changes in (after the network part).
ISCSI_ORDER = ("install-mpio", "claim-iscsi", "add-initiator-address", "add-portal", "connect-target")


def plan_iscsi(spec: FabricSpec, host: str, state: dict[str, Any], params: dict[str, Any],
               change: Callable[..., None], warn: Callable[..., None]) -> None:
    """Add the host's iSCSI changes and their parameters; nothing when the spec has no ``storage.iscsi``."""
    if not spec.iscsi_portals:
        return
    iscsi = state.get("iscsi") or {}
    paths = spec.iscsi_paths(host)
    if not iscsi.get("mpio_installed"):
        params["InstallMpio"] = True
        change("install-mpio", "Multipath-IO", "the feature MPIO needs; a restart may follow before it claims disks")
        warn("iscsi", f"{host}: installing Multipath-IO may need a restart before MPIO claims the iSCSI disks",
             f"restart {host} when the apply says so, then run the apply again to verify the paths")
    if not iscsi.get("mpio_claim_iscsi"):
        params["ClaimIscsi"] = True
        change("claim-iscsi", "MPIO automatic claim", "the MSDSM claims iSCSI disks (one disk, many paths)")
    nics = {str(a["name"]).lower(): a for a in state.get("adapters") or []}
    addresses = []
    for path in {(p.adapter, p.address, p.prefix): p for p in paths}.values():
        have = [str(x).split("/")[0] for x in (nics.get(path.adapter.lower()) or {}).get("addresses") or []]
        if path.address not in have:
            addresses.append({"Adapter": path.adapter, "Address": path.address, "Prefix": path.prefix})
            change("add-initiator-address", f"{path.address}/{path.prefix}", f"on {path.adapter} (iSCSI)")
    if addresses:
        params["IscsiAddresses"] = addresses
    portals_have = {(str(p["address"]), str(p["initiator"])) for p in iscsi.get("portals") or []}
    portals = [{"Portal": p.portal, "Port": spec.iscsi_port, "Initiator": p.address} for p in paths
               if (p.portal, p.address) not in portals_have]
    for p in portals:
        change("add-portal", f"portal {p['Portal']}:{p['Port']}", f"through {p['Initiator']}")
    if portals:
        params["IscsiPortals"] = portals
    sessions = {(str(s["target"]).lower(), str(s["initiator"])) for s in iscsi.get("sessions") or []
                if s.get("connected")}
    connect = [{"Target": t, "Portal": p.portal, "Port": spec.iscsi_port, "Initiator": p.address}
               for t in spec.iscsi_targets for p in paths if (t.lower(), p.address) not in sessions]
    for c in connect:
        change("connect-target", c["Target"], f"through {c['Initiator']} to {c['Portal']} (multipath, persistent)")
    if connect:
        params["IscsiConnect"] = connect
    not_persistent = [s for s in iscsi.get("sessions") or [] if s.get("connected") and not s.get("persistent")
                      and str(s["target"]).lower() in {t.lower() for t in spec.iscsi_targets}]
    for s in not_persistent:
        warn("iscsi", f"{host}: the session to {s['target']} through {s['initiator']} is not persistent: it will not "
             "come back after a restart", "disconnect it; the apply then connects it persistently")


def paths_per_target(spec: FabricSpec, state: dict[str, Any]) -> dict[str, int]:
    """Connected sessions per target the spec names (what verify compares with the paths)."""
    out = {t: 0 for t in spec.iscsi_targets}
    for s in (state.get("iscsi") or {}).get("sessions") or []:
        for t in out:
            if s.get("connected") and str(s["target"]).lower() == t.lower():
                out[t] += 1
    return out


__all__ = ["ISCSI_ORDER", "paths_per_target", "plan_iscsi"]
