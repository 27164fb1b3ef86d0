"""Set-VMHost, Enable-/Disable-VMMigration and the migration networks, as a Hyper-V host applies them."""

from __future__ import annotations

import ipaddress
from typing import Any

from hvauto import versions

from . import CmdletError, LabCall, handles
from .vms import require_hyperv

AUTH_TYPES = {"kerberos": "Kerberos", "credssp": "CredSSP"}
PERFORMANCE = {"tcpip": "TCPIP", "compression": "Compression", "smb": "SMB"}


def _subnet(value: str, cmdlet: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise CmdletError(f"The parameter Subnet '{value}' is not a valid subnet: use the IPv4/IPv6 address and "
                          "prefix length notation, for example 10.0.50.0/24.", category="InvalidArgument",
                          fqid=f"InvalidParameter,Microsoft.HyperV.PowerShell.Commands.{cmdlet}",
                          target=value) from None


def _save(call: LabCall, mig: dict[str, Any]) -> None:
    host = call.host
    host["hyperv"]["migration"] = mig
    call.estate.put("host", host["key"], host, host=host["host"])


def change_migration(call: LabCall, *, use_any_network: bool | None = None, add: list[str] | None = None,
                     remove: list[str] | None = None) -> list[str]:
    """Add-/Remove-VMMigrationNetwork and Set-VMHost -UseAnyNetworkForMigration; returns the steps done."""
    mig = dict(call.host["hyperv"]["migration"])
    networks = list(mig["networks"])
    steps: list[str] = []
    for subnet in add or []:
        net = _subnet(subnet, "AddVMMigrationNetwork")
        if net not in networks:
            networks.append(net)
        steps.append(f"added migration network {net}")
    for subnet in remove or []:
        net = _subnet(subnet, "RemoveVMMigrationNetwork")
        if net not in networks:
            raise CmdletError(f"No migration network with subnet '{net}' was found.", category="ObjectNotFound",
                              fqid="ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.RemoveVMMigrationNetwork",
                              target=net)
        networks.remove(net)
        steps.append(f"removed migration network {net}")
    mig["networks"] = networks
    if use_any_network is not None:
        mig["use_any_network"] = use_any_network
        steps.append("live migration on any network" if use_any_network
                     else "live migration restricted to the migration networks")
    _save(call, mig)
    return steps


def _cannot_convert(parameter: str, value: Any, enum: str) -> CmdletError:
    """Set-VMHost's parameter binder refusing a value its enum does not have."""
    return CmdletError(f"Cannot bind parameter '{parameter}'. Cannot convert value \"{value}\" to type "
                       f"\"Microsoft.HyperV.PowerShell.{enum}\".", category="InvalidArgument",
                       fqid="CannotConvertArgumentNoMessage,Microsoft.HyperV.PowerShell.Commands.SetVMHost",
                       exception="System.Management.Automation.ParameterBindingException")


@handles("host_migration_set")
def host_migration_set(call: LabCall) -> dict[str, Any]:
    require_hyperv(call)
    p = call.params
    change_migration(call, use_any_network=p.get("UseAnyNetwork"), add=list(p.get("AddNetwork") or []),
                     remove=list(p.get("RemoveNetwork") or []))
    mig = dict(call.host["hyperv"]["migration"])
    if p.get("AuthType"):
        auth = AUTH_TYPES.get(str(p["AuthType"]).lower())
        if auth is None:
            raise _cannot_convert("VirtualMachineMigrationAuthenticationType", p["AuthType"], "MigrationAuthenticationType")
        mig["auth_type"] = auth
    if p.get("PerformanceOption"):
        if not versions.at_least(call.version, "2012r2") or call.host["os"] == "2012":
            raise CmdletError("The migration performance option needs Windows Server 2012 R2 or later.",
                              category="OperationStopped", exception="System.Management.Automation.RuntimeException")
        option = PERFORMANCE.get(str(p["PerformanceOption"]).lower())
        if option is None:
            raise _cannot_convert("VirtualMachineMigrationPerformanceOption", p["PerformanceOption"], "VMMigrationPerformance")
        mig["performance_option"] = option
    for param, key in (("MaxVmMigrations", "max_vm_migrations"), ("MaxStorageMigrations", "max_storage_migrations")):
        value = p.get(param)
        if value:
            if value < 1:
                raise CmdletError(f"Cannot validate argument on parameter '{param}'.", category="InvalidData")
            mig[key] = int(value)
    if p.get("Enable"):
        mig["enabled"] = True
    if p.get("Disable"):
        mig["enabled"] = False
    _save(call, mig)
    out = dict(mig)
    if call.host["os"] == "2012":
        out["performance_option"] = None
    return out
