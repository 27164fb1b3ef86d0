"""Set-ADComputer -Add/-Remove msDS-AllowedToDelegateTo and Set-ADAccountControl, as the AD host answers them.

The read side (Get-ADComputer) is :mod:`hvauto.lab.handlers.ad`; this module writes the same
``computer`` objects: the SPN list only ever gains or loses the values named, and the
protocol-transition flag (TrustedToAuthForDelegation) is a separate bit.
"""

from __future__ import annotations

from typing import Any

from hvauto.lab.estate import DOMAIN

from . import CmdletError, LabCall, handles
from .ad import computer_key, require_ad


def _not_found(identity: str) -> CmdletError:
    base = ",".join(f"DC={part}" for part in DOMAIN.split("."))
    return CmdletError(
        f"Cannot find an object with identity: '{identity}' under: '{base}'.",
        category="ObjectNotFound",
        fqid="ActiveDirectoryCmdlet:Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException,"
             "Microsoft.ActiveDirectory.Management.Commands.GetADComputer",
        target=identity,
        exception="Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException",
    )


@handles("ad_delegation_set")
def ad_delegation_set(call: LabCall) -> dict[str, Any]:
    require_ad(call)
    identity = call.params["Name"]
    computer = call.estate.get("computer", computer_key(identity)) if identity.strip() else None
    if computer is None:
        raise _not_found(identity)
    current: list[str] = list(computer.get("allowed_to_delegate_to") or [])
    lower = {s.lower() for s in current}
    added: list[str] = []
    for spn in call.params.get("Add") or []:
        if spn.lower() not in lower and spn.lower() not in {a.lower() for a in added}:
            added.append(spn)
    remove = {s.lower() for s in call.params.get("Remove") or []}
    removed = [s for s in current if s.lower() in remove]
    computer["allowed_to_delegate_to"] = [s for s in current if s.lower() not in remove] + added
    transition = bool(call.params.get("TrustedToAuth")) and not computer.get("trusted_to_auth_for_delegation")
    if transition:
        computer["trusted_to_auth_for_delegation"] = True
    call.estate.put("computer", computer["key"], computer)
    return {
        "name": computer["name"].upper(),
        "sam": computer["sam"].upper(),
        "added": added,
        "removed": removed,
        "protocol_transition_set": transition,
        "allowed_to_delegate_to": list(computer["allowed_to_delegate_to"]),
        "trusted_to_auth_for_delegation": bool(computer["trusted_to_auth_for_delegation"]),
    }
