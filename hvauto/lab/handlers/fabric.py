"""Host networking as Hyper-V and the NetLbfo/NetTCPIP modules see it: adapters, teams, switches, host vNICs.

The state: physical adapters (kind ``adapter``), LBFO teams (``team``), virtual switches
(``switch``) whose ``adapters`` name their uplinks (physical adapters, or a team's NIC, which
carries the team's name), and host vNICs (``vnic``, "vEthernet (NAME)") with their weight,
access VLAN, IPv4 addresses and default gateway. Which adapter is bound to what is derived,
never stored. The rules enforced here are Hyper-V's, with its own messages: an adapter can be
bound once; no switch on an LBFO team from Windows Server 2022; weights only on a switch created
in Weight mode (the mode cannot change after creation); SET only from 2016, on alike adapters.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hvauto import versions
from hvauto.lab.estate import _guid, vms_on
from hvauto.lab.store import Estate

from . import CmdletError, LabCall, handles
from .vms import require_hyperv

NEW_SWITCH_FQID = "Microsoft.HyperV.PowerShell.Commands.NewVMSwitch"
LBFO_DEPRECATED = (
    "Failed while adding virtual Ethernet switch connections. Attaching a virtual switch to an LBFO team is "
    "deprecated. Switch Embedded Teaming (SET) is an inbox replacement for this functionality. For more "
    "information on LBFO deprecation please see https://aka.ms/lbfodeprecation. To override this block, use the "
    "AllowNetLbfoTeams option in New-VMSwitch."
)


def _key(host: str, name: str) -> str:
    return f"{host}/{name}"


def binding(est: Estate, host: str, adapter: str) -> str | None:
    """What an adapter is bound to: 'switch NAME', 'team NAME', or None (free)."""
    for sw in est.all("switch", host=host):
        if any(a.lower() == adapter.lower() for a in sw.get("adapters", [])):
            return f"switch {sw['name']}"
    for team in est.all("team", host=host):
        if any(m.lower() == adapter.lower() for m in team.get("members", [])):
            return f"team {team['name']}"
    return None


def _adapter_view(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": a["name"],
        "description": a.get("description") or f"{a['driver']} #{a['name'][3:] or '1'}",
        "driver": a["driver"],
        "link_speed_bps": a["link_speed_bps"],
        "mac": a["mac"],
        "status": a["status"],
        "addresses": list(a.get("addresses") or []),
        "gateway": a.get("gateway"),
    }


def _switch_view(sw: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": sw["name"],
        "id": sw["id"],
        "type": sw["type"],
        "adapters": list(sw.get("adapters") or []),
        "embedded_teaming": bool(sw.get("embedded_teaming")),
        "bandwidth_mode": sw.get("bandwidth_mode", "Absolute"),
        "allow_management_os": bool(sw.get("allow_management_os")),
        "default_flow_weight": int(sw.get("default_flow_weight") or 0),
    }


def _vnics_on(est: Estate, host: str, switch: str) -> list[dict[str, Any]]:
    return [v for v in est.all("vnic", host=host) if v["switch"].lower() == switch.lower()]


@handles("fabric_get")
def fabric_get(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    est, host = call.estate, call.name
    mig = call.host["hyperv"]["migration"]
    switches = []
    for sw in est.all("switch", host=host):
        view = _switch_view(sw)
        # AllowManagementOS reads true while the management OS has a vNIC on the switch.
        view["allow_management_os"] = bool(_vnics_on(est, host, sw["name"]))
        switches.append(view)
    from .iscsi import iscsi_state

    return {
        "iscsi": iscsi_state(call),
        "adapters": [_adapter_view(a) for a in est.all("adapter", host=host)],
        "teams": [
            {"name": t["name"], "members": list(t["members"]), "mode": t["mode"],
             "load_balancing": t["load_balancing"], "status": "Up"}
            for t in est.all("team", host=host)
        ],
        "switches": switches,
        "vnics": [
            {"name": v["name"], "switch": v["switch"], "weight": v.get("weight"), "vlan": v.get("vlan"),
             "addresses": list(v.get("addresses") or []), "gateway": v.get("gateway")}
            for v in est.all("vnic", host=host)
        ],
        "vm_adapters": [
            {"vm": vm["name"], "switch": a["switch"]}
            for vm in sorted(vms_on(est, host), key=lambda v: v["name"].lower())
            for a in vm["adapters"]
        ],
        "migration": {
            "enabled": mig["enabled"],
            "auth_type": mig["auth_type"],
            "use_any_network": mig["use_any_network"],
            "networks": list(mig["networks"]),
        },
    }


# -- the cmdlets fabric_apply and switch_* call, as the lab answers them -------------------------------

def new_lbfo_team(call: LabCall, name: str, members: list[str], algorithm: str) -> None:
    est, host = call.estate, call.name
    if est.get("team", _key(host, name)) is not None:
        raise CmdletError(f"A team with the name '{name}' already exists.", category="ResourceExists",
                          fqid="MSFT_NetLbfoTeam,New-NetLbfoTeam", target=name, exception="Microsoft.Management"
                          ".Infrastructure.CimException")
    for m in members:
        if est.get("adapter", _key(host, m)) is None:
            raise CmdletError(f"No MSFT_NetAdapter objects found with property 'Name' equal to '{m}'.",
                              category="ObjectNotFound", fqid="CmdletizationQuery_NotFound_Name,New-NetLbfoTeam",
                              target=m, exception="Microsoft.Management.Infrastructure.CimException")
        bound = binding(est, host, m)
        if bound:
            raise CmdletError(f"Could not add network adapter '{m}' to team '{name}': it is bound to {bound}.",
                              category="InvalidOperation", fqid="MSFT_NetLbfoTeam,New-NetLbfoTeam", target=m,
                              exception="Microsoft.Management.Infrastructure.CimException")
    est.put("team", _key(host, name), {
        "key": _key(host, name), "host": host, "name": name, "members": members,
        "mode": "SwitchIndependent", "load_balancing": algorithm,
    }, host=host)


def new_vm_switch(call: LabCall, name: str, *, adapters: list[str], switch_type: str = "External",
                  embedded: bool = False, mode: str = "Absolute", allow_management_os: bool = True) -> dict[str, Any]:
    est, host = call.estate, call.name
    os = call.host["os"]
    if est.get("switch", _key(host, name)) is not None:
        # Hyper-V itself allows two switches of one name; the lab (and hvauto) never creates one.
        raise CmdletError(f"A virtual switch named '{name}' already exists on '{host}'.", category="ResourceExists",
                          fqid=f"ResourceExists,{NEW_SWITCH_FQID}", target=name)
    if mode not in ("Absolute", "Weight", "None", "Default"):
        raise CmdletError(f"Cannot bind parameter 'MinimumBandwidthMode'. Cannot convert value \"{mode}\" to type "
                          "\"Microsoft.HyperV.PowerShell.VMSwitchBandwidthMode\".", category="InvalidArgument",
                          fqid=f"CannotConvertArgumentNoMessage,{NEW_SWITCH_FQID}",
                          exception="System.Management.Automation.ParameterBindingException")
    if embedded and not versions.at_least(os, "2016"):
        raise CmdletError("A parameter cannot be found that matches parameter name 'EnableEmbeddedTeaming'.",
                          category="InvalidArgument", fqid=f"NamedParameterNotFound,{NEW_SWITCH_FQID}",
                          exception="System.Management.Automation.ParameterBindingException")
    if switch_type == "External":
        if not adapters:
            raise CmdletError("Cannot validate argument on parameter 'NetAdapterName'. The argument is null or empty.",
                              category="InvalidData", fqid=f"ParameterArgumentValidationError,{NEW_SWITCH_FQID}",
                              exception="System.Management.Automation.ParameterBindingValidationException")
        if len(adapters) > 1 and not embedded:
            raise CmdletError("Failed while adding virtual Ethernet switch connections. Teaming several network "
                              "adapters needs -EnableEmbeddedTeaming $true.", category="InvalidArgument",
                              fqid=f"InvalidParameter,{NEW_SWITCH_FQID}", target=name)
        speeds = set()
        drivers = set()
        for a in adapters:
            team = est.get("team", _key(host, a))
            nic = est.get("adapter", _key(host, a))
            if team is not None:
                if embedded:
                    raise CmdletError(f"Failed while adding virtual Ethernet switch connections. '{a}' is an LBFO "
                                      "team interface and cannot be a Switch Embedded Teaming member.",
                                      category="InvalidArgument", fqid=f"InvalidParameter,{NEW_SWITCH_FQID}", target=a)
                if versions.at_least(os, "2022"):
                    raise CmdletError(LBFO_DEPRECATED, category="InvalidArgument",
                                      fqid=f"InvalidParameter,{NEW_SWITCH_FQID}", target=a)
            elif nic is None:
                raise CmdletError(f"No MSFT_NetAdapter objects found with property 'Name' equal to '{a}'.",
                                  category="ObjectNotFound", fqid=f"ObjectNotFound,{NEW_SWITCH_FQID}", target=a)
            else:
                speeds.add(nic["link_speed_bps"])
                drivers.add(nic["driver"])
            bound = binding(est, host, a)
            if bound:
                raise CmdletError(f"Failed while adding virtual Ethernet switch connections. External Ethernet adapter "
                                  f"'{a}' is already bound to {bound}.", category="InvalidArgument",
                                  fqid=f"InvalidParameter,{NEW_SWITCH_FQID}", target=a)
        if embedded and (len(speeds) > 1 or len(drivers) > 1):
            raise CmdletError("Failed while adding virtual Ethernet switch connections. The members of a Switch "
                              "Embedded Team must be identical adapters (same make, model and link speed).",
                              category="InvalidArgument", fqid=f"InvalidParameter,{NEW_SWITCH_FQID}", target=name)
    record: dict[str, Any] = {
        "key": _key(host, name), "host": host, "name": name, "id": _guid(f"switch-{host}-{name}"),
        "type": switch_type, "adapters": list(adapters) if switch_type == "External" else [],
        "embedded_teaming": embedded, "bandwidth_mode": "Absolute" if mode == "Default" else mode,
        "allow_management_os": allow_management_os if switch_type == "External" else switch_type == "Internal",
        "default_flow_weight": 0,
    }
    est.put("switch", record["key"], record, host=host)
    if record["allow_management_os"]:
        # The switch's default host vNIC carries the switch's name ("vEthernet (NAME)").
        est.put("vnic", _key(host, name), {"key": _key(host, name), "host": host, "name": name, "switch": name,
                                           "weight": None, "vlan": None, "addresses": [], "gateway": None},
                host=host)
    return record


def _switch_or_fail(call: LabCall, name: str, cmdlet: str) -> dict[str, Any]:
    sw = call.estate.get("switch", _key(call.name, name))
    if sw is None:
        raise CmdletError(f'Hyper-V was unable to find a virtual switch with name "{name}".', category="ObjectNotFound",
                          fqid=f"ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.{cmdlet}", target=name)
    return sw


def remove_vm_switch(call: LabCall, name: str) -> None:
    est, host = call.estate, call.name
    sw = _switch_or_fail(call, name, "RemoveVMSwitch")
    for v in _vnics_on(est, host, sw["name"]):
        est.delete("vnic", v["key"])
    # VM adapters stay, disconnected (SwitchName empty).
    for vm in vms_on(est, host):
        changed = False
        for a in vm["adapters"]:
            if a["switch"].lower() == sw["name"].lower():
                a["switch"] = ""
                changed = True
        if changed:
            est.put("vm", vm["key"], vm, host=host)
    est.delete("switch", sw["key"])


def _vnic_or_fail(call: LabCall, name: str, cmdlet: str) -> dict[str, Any]:
    v = call.estate.get("vnic", _key(call.name, name))
    if v is None:
        raise CmdletError(f"Hyper-V was unable to find a virtual network adapter named '{name}' in the management "
                          "operating system.", category="ObjectNotFound",
                          fqid=f"ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.{cmdlet}", target=name)
    return v


def _require_weight_mode(sw: dict[str, Any], what: str, cmdlet: str) -> None:
    mode = sw.get("bandwidth_mode", "Absolute")
    if mode != "Weight":
        raise CmdletError(
            f"Failed to set {what}: the virtual switch '{sw['name']}' uses the {mode} minimum bandwidth mode. "
            "The bandwidth mode is chosen when the switch is created (New-VMSwitch -MinimumBandwidthMode) and "
            "cannot be changed afterwards.",
            category="InvalidOperation", fqid=f"InvalidOperation,Microsoft.HyperV.PowerShell.Commands.{cmdlet}",
            target=sw["name"])


def _interface(call: LabCall, alias: str, cmdlet: str) -> dict[str, Any]:
    est, host = call.estate, call.name
    if alias.startswith("vEthernet (") and alias.endswith(")"):
        found = est.get("vnic", _key(host, alias[len("vEthernet ("):-1]))
        if found is not None:
            return found
    nic = est.get("adapter", _key(host, alias))
    if nic is not None:
        return nic
    raise CmdletError(f"No MSFT_NetIPInterface objects found with property 'InterfaceAlias' equal to '{alias}'. "
                      "Verify the value of the property and retry.", category="ObjectNotFound",
                      fqid=f"CmdletizationQuery_NotFound_InterfaceAlias,{cmdlet}", target=alias,
                      exception="Microsoft.Management.Infrastructure.CimException")


def _put_interface(call: LabCall, iface: dict[str, Any]) -> None:
    kind = "vnic" if "switch" in iface else "adapter"
    call.estate.put(kind, iface["key"], iface, host=call.name)


def _all_addresses(call: LabCall) -> list[tuple[str, str]]:
    est, host = call.estate, call.name
    return [(i["name"], a) for kind in ("adapter", "vnic") for i in est.all(kind, host=host)
            for a in i.get("addresses") or []]


@handles("fabric_apply")
def fabric_apply(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    p = call.params
    est, host = call.estate, call.name
    steps: list[str] = []
    if p.get("TeamName"):
        algorithm = "Dynamic" if versions.at_least(call.version, "2012r2") else "HyperVPort"
        new_lbfo_team(call, p["TeamName"], list(p.get("TeamMembers") or []), algorithm)
        steps.append(f"created LBFO team {p['TeamName']}")
    if p.get("RemoveSwitch"):
        # The script picks the switch by exact name (no match: nothing to remove).
        if est.get("switch", _key(host, p["RemoveSwitch"])) is not None:
            remove_vm_switch(call, p["RemoveSwitch"])
        steps.append(f"removed switch {p['RemoveSwitch']}")
    switch_name = p.get("SwitchName") or ""
    if p.get("CreateSwitch"):
        adapters = list(p.get("SwitchAdapters") or [])
        embedded = bool(p.get("EmbeddedTeaming"))
        if not versions.at_least(call.version, "2016"):
            adapters, embedded = adapters[:1], False  # the 2012/2012 R2 script binds one uplink
        new_vm_switch(call, switch_name, adapters=adapters, embedded=embedded,
                      mode=p.get("BandwidthMode") or "Weight", allow_management_os=bool(p.get("AllowManagementOS")))
        steps.append(f"created switch {switch_name}")
    if p.get("SetTeamMembers") and versions.at_least(call.version, "2016"):
        sw = _switch_or_fail(call, switch_name, "SetVMSwitchTeam")
        if not sw.get("embedded_teaming"):
            raise CmdletError(f"The virtual switch '{switch_name}' is not a Switch Embedded Teaming switch.",
                              category="InvalidArgument", fqid="InvalidParameter,Microsoft.HyperV.PowerShell."
                              "Commands.SetVMSwitchTeam", target=switch_name)
        for a in p["SetTeamMembers"]:
            bound = binding(est, host, a)
            if bound and bound != f"switch {sw['name']}":
                raise CmdletError(f"Failed while adding virtual Ethernet switch connections. External Ethernet "
                                  f"adapter '{a}' is already bound to {bound}.", category="InvalidArgument",
                                  fqid="InvalidParameter,Microsoft.HyperV.PowerShell.Commands.SetVMSwitchTeam",
                                  target=a)
        sw["adapters"] = list(p["SetTeamMembers"])
        est.put("switch", sw["key"], sw, host=host)
        steps.append(f"set the members of switch {switch_name}")
    for name in p.get("RemoveVnic") or []:
        est.delete("vnic", _key(host, name))  # exact-name filter: no match removes nothing
        steps.append(f"removed host vNIC {name}")
    for name in p.get("AddVnic") or []:
        sw = _switch_or_fail(call, switch_name, "AddVMNetworkAdapter")
        if sw["type"] == "Private":
            raise CmdletError(f"The management operating system cannot connect to the private virtual switch "
                              f"'{switch_name}'.", category="InvalidOperation",
                              fqid="InvalidOperation,Microsoft.HyperV.PowerShell.Commands.AddVMNetworkAdapter")
        if est.get("vnic", _key(host, name)) is not None:
            raise CmdletError(f"A virtual network adapter named '{name}' already exists in the management operating "
                              "system.", category="ResourceExists",
                              fqid="ResourceExists,Microsoft.HyperV.PowerShell.Commands.AddVMNetworkAdapter",
                              target=name)
        est.put("vnic", _key(host, name), {"key": _key(host, name), "host": host, "name": name,
                                           "switch": sw["name"], "weight": None, "vlan": None, "addresses": [],
                                           "gateway": None}, host=host)
        steps.append(f"added host vNIC {name}")
    for row in p.get("Weights") or []:
        name, weight = row["Vnic"], row["Weight"]
        v = _vnic_or_fail(call, name, "SetVMNetworkAdapter")
        _require_weight_mode(_switch_or_fail(call, v["switch"], "SetVMNetworkAdapter"),
                             "MinimumBandwidthWeight", "SetVMNetworkAdapter")
        if not 0 <= weight <= 100:
            raise CmdletError(f"Cannot validate argument on parameter 'MinimumBandwidthWeight'. The {weight} argument "
                              "is greater than the maximum allowed range of 100.", category="InvalidData",
                              fqid="ParameterArgumentValidationError,Microsoft.HyperV.PowerShell.Commands."
                              "SetVMNetworkAdapter",
                              exception="System.Management.Automation.ParameterBindingValidationException")
        v["weight"] = weight
        est.put("vnic", v["key"], v, host=host)
        steps.append(f"weight of {name} set to {weight}")
    dfw = p.get("DefaultFlowWeight")
    if dfw is not None and dfw >= 0:
        sw = _switch_or_fail(call, switch_name, "SetVMSwitch")
        _require_weight_mode(sw, "DefaultFlowMinimumBandwidthWeight", "SetVMSwitch")
        sw["default_flow_weight"] = dfw
        est.put("switch", sw["key"], sw, host=host)
        steps.append(f"default-flow weight of {switch_name} set to {dfw}")
    for row in p.get("Vlans") or []:
        name, vlan = row["Vnic"], row["VlanId"]
        v = _vnic_or_fail(call, name, "SetVMNetworkAdapterVlan")
        if vlan > 4094:
            raise CmdletError("Cannot validate argument on parameter 'VlanId'. The argument is greater than the "
                              "maximum allowed range of 4094.", category="InvalidData",
                              fqid="ParameterArgumentValidationError,Microsoft.HyperV.PowerShell.Commands."
                              "SetVMNetworkAdapterVlan",
                              exception="System.Management.Automation.ParameterBindingValidationException")
        v["vlan"] = vlan if vlan > 0 else None
        est.put("vnic", v["key"], v, host=host)
        steps.append(f"VLAN of {name} set to {vlan}" if vlan > 0 else f"{name} untagged")
    for row in p.get("Addresses") or []:
        name, address, prefix, gateway = row["Vnic"], row["Address"], row["Prefix"], row["Gateway"]
        iface = _interface(call, f"vEthernet ({name})", "New-NetIPAddress")
        cidr = f"{address}/{prefix}"
        try:
            ipaddress.IPv4Interface(cidr)
        except ValueError:
            raise CmdletError(f"Invalid parameter IPAddress {address}", category="InvalidArgument",
                              fqid="Windows System Error 87,New-NetIPAddress", target=address,
                              exception="Microsoft.Management.Infrastructure.CimException") from None
        if any(a.split("/")[0] == address for _, a in _all_addresses(call)):
            raise CmdletError("Instance MSFT_NetIPAddress already exists", category="InvalidArgument",
                              fqid="Windows System Error 87,New-NetIPAddress", target=address,
                              exception="Microsoft.Management.Infrastructure.CimException")
        iface["addresses"] = [*(iface.get("addresses") or []), cidr]
        if gateway:
            iface["gateway"] = gateway
        _put_interface(call, iface)
        steps.append(f"address {cidr} on {name}")
    if p.get("ManagementVnic"):
        mgmt = est.get("vnic", _key(host, p["ManagementVnic"]))
        have = [a.split("/")[0] for a in (mgmt.get("addresses") or [])] if mgmt else []
        if p.get("ManagementAddress") not in have:
            raise CmdletError(f"The management address {p.get('ManagementAddress')} is not up on vEthernet "
                              f"({p['ManagementVnic']}) (Missing); the old management path was left in place.",
                              category="OperationStopped", fqid="", exception="System.Management.Automation."
                              "RuntimeException")
        steps.append(f"management address {p['ManagementAddress']} is up on {p['ManagementVnic']}")
    for row in p.get("DropAddresses") or []:
        name, address = row["Vnic"], row["Address"]
        iface = _interface(call, f"vEthernet ({name})", "Remove-NetIPAddress")
        kept = [a for a in iface.get("addresses") or [] if a.split("/")[0] != address]
        if len(kept) == len(iface.get("addresses") or []):
            raise CmdletError(f"No matching MSFT_NetIPAddress objects found by CIM query for instances of the "
                              f"ROOT/StandardCimv2/MSFT_NetIPAddress class on the  CIM server: SELECT * FROM "
                              f"MSFT_NetIPAddress  WHERE ((IPAddress LIKE '{address}'))",
                              category="ObjectNotFound", fqid="CmdletizationQuery_NotFound,Remove-NetIPAddress",
                              exception="Microsoft.Management.Infrastructure.CimException")
        iface["addresses"] = kept
        if not kept:
            iface["gateway"] = None
        _put_interface(call, iface)
        steps.append(f"removed address {address} from {name}")
    for name in p.get("PruneVnic") or []:
        est.delete("vnic", _key(host, name))
        steps.append(f"removed host vNIC {name} (not in the spec)")
    if p.get("RestrictMigration") or p.get("MigrationAdd") or p.get("MigrationRemove"):
        from .hostsettings import change_migration

        steps += change_migration(call, use_any_network=False if p.get("RestrictMigration") else None,
                                  add=list(p.get("MigrationAdd") or []), remove=list(p.get("MigrationRemove") or []))
    from .iscsi import apply_iscsi

    apply_iscsi(call, steps)
    return {"steps": steps}


@handles("switch_list")
def switch_list(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    est, host = call.estate, call.name
    out = []
    for sw in est.all("switch", host=host):
        view = _switch_view(sw)
        view["allow_management_os"] = bool(_vnics_on(est, host, sw["name"]))
        del view["default_flow_weight"]
        view["vms"] = sorted({vm["name"] for vm in vms_on(est, host)
                              for a in vm["adapters"] if a["switch"].lower() == sw["name"].lower()}, key=str.lower)
        out.append(view)
    return {"switches": out, "physical_adapters": [str(a["name"]) for a in est.all("adapter", host=host)]}


@handles("switch_create")
def switch_create(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    p = call.params
    switch_type = p.get("SwitchType") or "External"
    if switch_type not in ("External", "Internal", "Private"):
        raise CmdletError(f"Cannot bind parameter 'SwitchType'. Cannot convert value \"{switch_type}\" to type "
                          "\"Microsoft.HyperV.PowerShell.VMSwitchType\".", category="InvalidArgument",
                          fqid=f"CannotConvertArgumentNoMessage,{NEW_SWITCH_FQID}",
                          exception="System.Management.Automation.ParameterBindingException")
    adapters = list(p.get("NetAdapterName") or [])
    embedded = switch_type == "External" and len(adapters) > 1 and versions.at_least(call.version, "2016")
    if switch_type == "External" and not embedded:
        adapters = adapters[:1]
    allow = p.get("AllowManagementOS")
    record = new_vm_switch(call, p["Name"], adapters=adapters, switch_type=switch_type, embedded=embedded,
                           mode=p.get("BandwidthMode") or "Absolute",
                           allow_management_os=True if allow is None else bool(allow))
    return {"name": record["name"], "id": record["id"], "type": record["type"]}


@handles("switch_remove")
def switch_remove(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    name = call.params["Name"]
    if call.estate.get("switch", _key(call.name, name)) is None:
        return {"removed": False}
    remove_vm_switch(call, name)
    return {"removed": True}
