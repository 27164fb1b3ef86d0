"""Account names and SIDs as a domain member translates them (NTAccount <-> SecurityIdentifier).

The lab's file servers and DC answer from the same directory: well-known principals, the
domain's computer accounts (``LAB\\hostA$``), groups and users. Names are matched without
regard to case, qualified (``LAB\\x``, ``BUILTIN\\x``, ``NT AUTHORITY\\x``) or not, as
``NTAccount.Translate`` does; an unknown name fails with .NET's own message.
"""

from __future__ import annotations

import re

from .estate import DOMAIN_SID, NETBIOS
from .handlers import CmdletError
from .store import Estate

#: Well-known SIDs and the (English) names Windows gives them.
WELL_KNOWN: dict[str, str] = {
    "S-1-1-0": "Everyone",
    "S-1-3-0": "CREATOR OWNER",
    "S-1-5-11": "NT AUTHORITY\\Authenticated Users",
    "S-1-5-18": "NT AUTHORITY\\SYSTEM",
    "S-1-5-32-544": "BUILTIN\\Administrators",
    "S-1-5-32-545": "BUILTIN\\Users",
}
EVERYONE = "S-1-1-0"
_SID_RE = re.compile(r"S-1-[0-9-]+", re.I)  # fullmatch: "S-1-5-11\n" is no SID
NOT_MAPPED = "Some or all identity references could not be translated."


def _domain_principals(est: Estate) -> dict[str, str]:
    """SID -> qualified name for the domain's users, groups and computers."""
    out = {f"{DOMAIN_SID}-500": f"{NETBIOS}\\Administrator"}
    for group in est.all("group"):
        out[str(group["sid"])] = f"{NETBIOS}\\{group['name']}"
    for computer in est.all("computer"):
        out[str(computer["sid"])] = f"{NETBIOS}\\{computer['sam']}"
    return out


def name_of(est: Estate, sid: str) -> str | None:
    """SecurityIdentifier.Translate(NTAccount): None for an orphaned SID."""
    if sid in WELL_KNOWN:
        return WELL_KNOWN[sid]
    return _domain_principals(est).get(sid)


def sid_of(est: Estate, account: str) -> str:
    """NTAccount.Translate(SecurityIdentifier), or the IdentityNotMappedException a host raises."""
    text = account.strip()
    if _SID_RE.fullmatch(text):
        return text.upper()
    wanted = text.lower()
    for sid, name in {**WELL_KNOWN, **_domain_principals(est)}.items():
        short = name.split("\\", 1)[-1]
        if wanted in (name.lower(), short.lower()):
            return sid
    raise CmdletError(
        f'Exception calling "Translate" with "1" argument(s): "{NOT_MAPPED}"',
        category="NotSpecified",
        fqid="IdentityNotMappedException",
        target=account,
        exception="System.Management.Automation.MethodInvocationException",
    )


def resolve(est: Estate, account: str) -> dict[str, object]:
    """What the templates' account resolution reports: the SID and name, or the inner message."""
    try:
        sid = sid_of(est, account)
    except CmdletError:
        return {"account": account, "sid": "", "name": "", "error": NOT_MAPPED}
    return {"account": account, "sid": sid, "name": name_of(est, sid) or "", "error": None}
