"""Get-ADComputer, as the AD host answers it: computer accounts and their constrained delegation."""

from __future__ import annotations

from typing import Any

from . import CmdletError, LabCall, handles


def require_ad(call: LabCall, cmdlet: str = "Get-ADComputer") -> None:
    if "ad" not in (call.host.get("roles") or []):
        # A host without the ActiveDirectory module (RSAT-AD-PowerShell) does not know the cmdlet.
        raise CmdletError(
            f"The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script file, or operable program.",
            category="ObjectNotFound",
            fqid="CommandNotFoundException",
            target=cmdlet,
            exception="System.Management.Automation.CommandNotFoundException",
        )


def computer_key(name: str) -> str:
    """``hostA``, ``hostA$`` and ``hostA.lab.test`` all name the account ``hostA``."""
    return name.strip().removesuffix("$").split(".")[0]


@handles("ad_computer_get")
def ad_computer_get(call: LabCall) -> dict[str, Any]:
    require_ad(call)
    out = []
    for query in call.params.get("Name") or []:
        entry: dict[str, Any] = {
            "query": query, "found": False, "name": "", "sam": "", "dns": "", "sid": "",
            "allowed_to_delegate_to": [], "trusted_to_auth_for_delegation": False,
        }
        c = call.estate.get("computer", computer_key(query)) if query.strip() else None
        if c is not None:
            entry.update(
                found=True,
                name=c["name"].upper(),
                sam=c["sam"].upper(),
                dns=c["dns"],
                sid=c["sid"],
                allowed_to_delegate_to=list(c.get("allowed_to_delegate_to") or []),
                trusted_to_auth_for_delegation=bool(c.get("trusted_to_auth_for_delegation")),
            )
        out.append(entry)
    return {"computers": out}
