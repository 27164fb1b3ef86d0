"""SMB shares and their folders' NTFS ACLs, as Windows Server's SmbShare module and Get-Acl see them.

State per file server: kind ``share`` (key ``host/name``: path, flags, share ACL as SIDs),
kind ``folder`` (key ``host/path``: the folder's ACL as SIDs, explicit and inherited),
kind ``smb_open_file`` (files clients hold open on the server). Account names are never
stored: they are translated from SIDs when read, as Windows does (see ``principals``).

Windows' behaviour the lab keeps: New-SmbShare with every access list empty grants
Everyone Read; an existing name fails with "The name has already been shared." (Windows
error 2118); a missing folder with "The system cannot find the file specified."; an
account that does not translate with error 1332. ``Set-SmbPathAcl`` (2012 R2+) makes the
folder's explicit ACEs match the share ACL (Full -> FullControl, Change -> Modify,
Read -> ReadAndExecute, inherited by folders and files); inherited ACEs stay.
"""

from __future__ import annotations

from typing import Any

from hvauto import versions
from hvauto.lab import principals
from hvauto.lab.estate import drive_of
from hvauto.lab.store import Estate

from . import CmdletError, LabCall, handles

CI_OI = "ContainerInherit, ObjectInherit"
#: What a new folder on a data volume inherits from the volume's root, as Get-Acl lists it.
INHERITED_DEFAULT: list[dict[str, Any]] = [
    {"sid": "S-1-5-18", "rights": "FullControl", "type": "Allow", "inherited": True, "inheritance": CI_OI,
     "propagation": "None"},
    {"sid": "S-1-5-32-544", "rights": "FullControl", "type": "Allow", "inherited": True, "inheritance": CI_OI,
     "propagation": "None"},
    {"sid": "S-1-3-0", "rights": "268435456", "type": "Allow", "inherited": True, "inheritance": CI_OI,
     "propagation": "InheritOnly"},
    {"sid": "S-1-5-32-545", "rights": "ReadAndExecute, Synchronize", "type": "Allow", "inherited": True,
     "inheritance": CI_OI, "propagation": "None"},
]
PATH_ACL_RIGHTS = {"Full": "FullControl", "Change": "Modify, Synchronize", "Read": "ReadAndExecute, Synchronize"}
SMB_CLASS = "MSFT_SMBShare (ROOT/Microsoft/Windows/SMB/MSFT_SMBShare)"


def _smb_error(message: str, code: int, cmdlet: str, *, category: str = "NotSpecified") -> CmdletError:
    # The SmbShare module is CDXML over WMI: its errors are CimExceptions keyed by the Win32 error.
    return CmdletError(message, category=category, fqid=f"Windows System Error {code},{cmdlet}", target=SMB_CLASS,
                       exception="Microsoft.Management.Infrastructure.CimException")


def _share_key(host: str, name: str) -> str:
    return f"{host}/{name}"


def _folder_key(host: str, path: str) -> str:
    return f"{host}/{path.rstrip(chr(92))}"


def get_share(est: Estate, host: str, name: str) -> dict[str, Any] | None:
    return est.get("share", _share_key(host, name))


def get_folder(est: Estate, host: str, path: str) -> dict[str, Any] | None:
    return est.get("folder", _folder_key(host, path)) if path else None


def create_folder(est: Estate, host: str, path: str) -> dict[str, Any]:
    """[System.IO.Directory]::CreateDirectory: parents too; the volume must exist."""
    found = get_folder(est, host, path)
    if found is not None:
        return found
    letter = drive_of(path)
    if not letter or est.get("volume", f"{host}/{letter}") is None:
        raise CmdletError(
            f'Exception calling "CreateDirectory" with "1" argument(s): "Could not find a part of the path \'{path}\'."',
            category="NotSpecified", fqid="DirectoryNotFoundException", target=path,
            exception="System.Management.Automation.MethodInvocationException")
    folder: dict[str, Any] = {"key": _folder_key(host, path), "host": host, "path": path.rstrip("\\"),
              "acl": [dict(a) for a in INHERITED_DEFAULT]}
    est.put("folder", folder["key"], folder, host=host)
    return folder


def _sid_for_smb(est: Estate, account: str, cmdlet: str) -> str:
    try:
        return principals.sid_of(est, account)
    except CmdletError:
        raise _smb_error("No mapping between account names and security IDs was done.", 1332, cmdlet) from None


def new_smb_share(est: Estate, host: str, name: str, path: str, *, full: list[str] | None = None,
                  change: list[str] | None = None, read: list[str] | None = None,
                  no_access: list[str] | None = None, continuously_available: bool = False,
                  encrypt_data: bool = False) -> dict[str, Any]:
    """New-SmbShare, including its default: with every access list empty, Everyone gets Read."""
    if get_share(est, host, name) is not None:
        raise _smb_error("The name has already been shared.", 2118, "New-SmbShare", category="ResourceExists")
    if get_folder(est, host, path) is None:
        raise _smb_error("The system cannot find the file specified.", 2, "New-SmbShare", category="ObjectNotFound")
    access: list[dict[str, str]] = []
    for right, accounts in (("Full", full or []), ("Change", change or []), ("Read", read or [])):
        for account in accounts:
            sid = _sid_for_smb(est, account, "New-SmbShare")
            access = [a for a in access if a["sid"] != sid]
            access.append({"sid": sid, "type": "Allow", "right": right})
    for account in no_access or []:
        access.append({"sid": _sid_for_smb(est, account, "New-SmbShare"), "type": "Deny", "right": "Full"})
    if not access:
        access = [{"sid": principals.EVERYONE, "type": "Allow", "right": "Read"}]
    share: dict[str, Any] = {
        "key": _share_key(host, name), "host": host, "name": name, "path": path.rstrip("\\"), "description": "",
        "scope_name": "*", "continuously_available": continuously_available, "encrypt_data": encrypt_data,
        "access": access,
    }
    est.put("share", share["key"], share, host=host)
    return share


def _under(path: str, root: str) -> bool:
    p, r = path.lower(), root.lower().rstrip("\\")
    return p == r or p.startswith(r + "\\")


def share_state(est: Estate, host: str, name: str, path: str, accounts: list[str]) -> dict[str, Any]:
    """What Get-HvautoShareState (templates/_smb_share_state.ps1.j2) reports."""
    share = get_share(est, host, name)
    info = None
    access: list[dict[str, Any]] = []
    open_files: list[dict[str, Any]] = []
    if share is not None:
        path = share["path"]
        clients = {f["client"] for f in est.all("smb_open_file", host=host) if _under(f["path"], path)}
        info = {
            "name": share["name"], "path": share["path"], "description": share["description"],
            "scope_name": share["scope_name"], "continuously_available": share["continuously_available"],
            "encrypt_data": share["encrypt_data"],
            "availability_type": "ScaleOut" if share["continuously_available"] else "NonClustered",
            "current_users": len(clients),
        }
        for a in share["access"]:
            # Get-SmbShareAccess shows an orphaned SID as the SID itself.
            access.append({"account": principals.name_of(est, a["sid"]) or a["sid"], "sid": a["sid"],
                           "type": a["type"], "right": a["right"]})
        open_files = [{"path": f["path"], "client": f["client"], "user": f["user"]}
                      for f in est.all("smb_open_file", host=host) if _under(f["path"], path)]
    folder = get_folder(est, host, path)
    aces = []
    if folder is not None:
        aces = [{"account": principals.name_of(est, a["sid"]) or "", **a} for a in folder["acl"]]
    return {
        "share": info,
        "share_access": access,
        "folder": {"path": path, "exists": folder is not None, "acl": aces},
        "open_files": open_files,
        "resolved": [principals.resolve(est, a) for a in accounts],
    }


@handles("smb_share_get")
def smb_share_get(call: LabCall) -> dict[str, Any]:
    p = call.params
    return share_state(call.estate, call.name, p["Name"], p.get("Path") or "", list(p.get("Account") or []))


def _set_path_acl(est: Estate, host: str, share: dict[str, Any]) -> None:
    folder = get_folder(est, host, share["path"])
    if folder is None:
        raise _smb_error("The system cannot find the file specified.", 2, "Set-SmbPathAcl", category="ObjectNotFound")
    sids = {a["sid"] for a in share["access"]}
    acl = [a for a in folder["acl"] if a["inherited"] or a["sid"] not in sids]
    explicit = [{"sid": a["sid"], "rights": PATH_ACL_RIGHTS.get(a["right"], "ReadAndExecute, Synchronize"),
                 "type": a["type"], "inherited": False, "inheritance": CI_OI, "propagation": "None"}
                for a in share["access"]]
    folder["acl"] = [*explicit, *acl]
    est.put("folder", folder["key"], folder, host=host)


@handles("smb_share_apply")
def smb_share_apply(call: LabCall) -> dict[str, Any]:
    p, est, host = call.params, call.estate, call.name
    name, path = p["Name"], p["Path"]
    changes: list[str] = []
    if p.get("CreateFolder") and get_folder(est, host, path) is None:
        create_folder(est, host, path)
        changes.append(f"created folder {path}")
    grant_names = []
    for sid in p.get("ShareGrantSid") or []:
        account = principals.name_of(est, sid)
        if account is None:
            raise CmdletError(f'Exception calling "Translate" with "1" argument(s): "{principals.NOT_MAPPED}"',
                              fqid="IdentityNotMappedException",
                              exception="System.Management.Automation.MethodInvocationException")
        grant_names.append(account)
    share = get_share(est, host, name)
    if p.get("CreateShare"):
        if not grant_names:
            raise CmdletError("refusing to create a share without explicit Full Access", category="OperationStopped",
                              fqid="refusing to create a share without explicit Full Access",
                              exception="System.Management.Automation.RuntimeException")
        share = new_smb_share(est, host, name, path, full=grant_names,
                              continuously_available=bool(p.get("ContinuouslyAvailable")),
                              encrypt_data=bool(p.get("EncryptData")))
        changes.append(f"created share {name}")
    else:
        if share is None:
            raise CmdletError(f"The share {name} no longer exists.", category="OperationStopped",
                              fqid=f"The share {name} no longer exists.",
                              exception="System.Management.Automation.RuntimeException")
        for account in grant_names:
            sid = _sid_for_smb(est, account, "Grant-SmbShareAccess")
            # Grant-SmbShareAccess replaces the account's allow entry with the new right.
            share["access"] = [a for a in share["access"] if not (a["sid"] == sid and a["type"] == "Allow")]
            share["access"].append({"sid": sid, "type": "Allow", "right": "Full"})
            changes.append(f"share: granted Full to {account}")
        for sid in p.get("ShareRevokeSid") or []:
            account = principals.name_of(est, sid) or sid
            sid = _sid_for_smb(est, account, "Revoke-SmbShareAccess")
            # Revoke removes the account's allow entries; deny entries are Unblock-SmbShareAccess's job.
            share["access"] = [a for a in share["access"] if not (a["sid"] == sid and a["type"] == "Allow")]
            changes.append(f"share: revoked {account}")
        if p.get("SetContinuouslyAvailable"):
            share["continuously_available"] = True
            changes.append("share: continuously available")
        if p.get("SetEncryptData"):
            share["encrypt_data"] = True
            changes.append("share: encryption on")
        est.put("share", share["key"], share, host=host)
    use_path_acl = bool(p.get("UsePathAcl"))
    if use_path_acl and not versions.at_least(call.version, "2012r2"):
        raise CmdletError("Set-SmbPathAcl needs Windows Server 2012 R2 or later", category="OperationStopped",
                          exception="System.Management.Automation.RuntimeException")
    ntfs_grant = [] if use_path_acl else list(p.get("NtfsGrantSid") or [])
    ntfs_revoke = list(p.get("NtfsRevokeSid") or [])
    if ntfs_grant or ntfs_revoke:
        folder = get_folder(est, host, path)
        if folder is None:
            raise CmdletError(f"Cannot find path '{path}' because it does not exist.", category="ObjectNotFound",
                              fqid="PathNotFound,Microsoft.PowerShell.Commands.GetAclCommand", target=path,
                              exception="System.Management.Automation.ItemNotFoundException")
        acl = list(folder["acl"])
        for sid in ntfs_revoke:
            acl = [a for a in acl if a["inherited"] or a["sid"] != sid]
            changes.append(f"folder: removed {sid}")
        for sid in ntfs_grant:
            acl = [a for a in acl if a["inherited"] or a["sid"] != sid or a["type"] != "Allow"]
            acl.insert(0, {"sid": sid, "rights": "FullControl", "type": "Allow", "inherited": False,
                           "inheritance": CI_OI, "propagation": "None"})
            changes.append(f"folder: Full Control for {sid}")
        folder["acl"] = acl
        est.put("folder", folder["key"], folder, host=host)
    if use_path_acl:
        assert share is not None
        _set_path_acl(est, host, share)
        changes.append("folder: ACL copied from the share (Set-SmbPathAcl)")
    return {"changes": changes, "state": share_state(est, host, name, path, list(p.get("Account") or []))}


@handles("smb_share_remove")
def smb_share_remove(call: LabCall) -> dict[str, Any]:
    share = get_share(call.estate, call.name, call.params["Name"])
    if share is None:
        return {"removed": False, "path": None}
    call.estate.delete("share", share["key"])
    return {"removed": True, "path": share["path"]}


@handles("smb_share_list")
def smb_share_list(call: LabCall) -> dict[str, Any]:
    """Get-SmbShare -Special $false: the shares a person created (the lab holds no special ones)."""
    shares = sorted(call.estate.all("share", host=call.name), key=lambda s: str(s["name"]).lower())
    return {"shares": [{"name": s["name"], "path": s["path"], "continuously_available": bool(s["continuously_available"]),
                        "encrypt_data": bool(s["encrypt_data"])} for s in shares]}
