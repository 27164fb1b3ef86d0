"""What the server says about a share (settings, share ACL, folder ACL by SID, open files) and the plan
that brings it to what is wanted. Principals are compared by SID, never by localised name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import (
    NotFoundError,
    PreflightError,
    Problem,
)
from hvauto.ops.smb.validate import EVERYONE
from hvauto.results import Change
from hvauto.session import Session

#: Folder principals that are never extras: the OS and the server's administrators need them.
FOLDER_KEEP = frozenset({"S-1-5-18", "S-1-5-32-544", "S-1-3-0"})


@dataclass(frozen=True)
class Wanted:
    """A principal hvauto grants Full on share and folder, and why."""

    account: str
    reason: str
    host: str | None = None


@dataclass(frozen=True)
class Grantee:
    account: str
    sid: str
    reason: str = ""


@dataclass(frozen=True)
class ShareAce:
    account: str
    sid: str
    type: str
    right: str

    @property
    def full(self) -> bool:
        return self.type == "Allow" and self.right == "Full"


@dataclass(frozen=True)
class FolderAce:
    account: str
    sid: str
    rights: str
    type: str
    inherited: bool
    inheritance: str
    propagation: str

    @property
    def full_inherited(self) -> bool:
        """Allow Full Control on the folder itself and inherited by its folders and files."""
        flags = {f.strip() for f in self.inheritance.split(",")}
        return (self.type == "Allow" and "FullControl" in self.rights
                and {"ContainerInherit", "ObjectInherit"} <= flags and "InheritOnly" not in self.propagation)


#: Generic access bits (an ACE on a folder may carry them, inherit-only, instead of FileSystemRights names).
_GENERIC = [(0x10000000, "GenericAll (FullControl)"), (0x20000000, "GenericExecute"), (0x40000000, "GenericWrite"),
            (0x80000000, "GenericRead")]


def rights_text(rights: str) -> str:
    """An ACE's rights for a person: FileSystemRights names as Windows gives them, generic bits by name."""
    text = rights.strip()
    if not text.lstrip("-").isdigit():
        return text
    value = int(text) & 0xFFFFFFFF
    names = [name for bit, name in _GENERIC if value & bit]
    rest = value & ~sum(bit for bit, _ in _GENERIC)
    if rest:
        names.append(f"0x{rest:08X}")
    return ", ".join(names) or "none"


@dataclass(frozen=True)
class OpenFile:
    path: str
    client: str
    user: str


@dataclass
class ShareState:
    server: str
    name: str
    exists: bool
    path: str
    settings: dict[str, Any] | None
    share_acl: list[ShareAce]
    folder_exists: bool
    folder_acl: list[FolderAce]
    open_files: list[OpenFile]
    resolved: dict[str, str]
    unresolved: dict[str, str]

    @classmethod
    def from_result(cls, server: str, name: str, d: dict[str, Any]) -> ShareState:
        share = d.get("share")
        folder = d.get("folder") or {}
        resolved, unresolved = {}, {}
        for r in d.get("resolved") or []:
            if r.get("sid"):
                resolved[str(r["account"]).lower()] = str(r["sid"]).upper()
            else:
                unresolved[str(r["account"])] = str(r.get("error") or "could not be translated")
        return cls(
            server=server,
            name=str(share["name"]) if share else name,
            exists=share is not None,
            path=str(share["path"] if share else folder.get("path") or ""),
            settings=dict(share) if share else None,
            share_acl=[ShareAce(str(a["account"]), str(a.get("sid") or "").upper(), str(a["type"]), str(a["right"]))
                       for a in d.get("share_access") or []],
            folder_exists=bool(folder.get("exists")),
            folder_acl=[FolderAce(str(a.get("account") or ""), str(a["sid"]).upper(), str(a["rights"]), str(a["type"]),
                                  bool(a["inherited"]), str(a.get("inheritance") or ""), str(a.get("propagation") or ""))
                        for a in folder.get("acl") or []],
            open_files=[OpenFile(str(f["path"]), str(f.get("client") or ""), str(f.get("user") or ""))
                        for f in d.get("open_files") or []],
            resolved=resolved,
            unresolved=unresolved,
        )

    def share_full(self, sid: str) -> bool:
        return any(a.sid == sid and a.full for a in self.share_acl)

    def folder_full(self, sid: str) -> bool:
        return any(a.sid == sid and a.full_inherited for a in self.folder_acl)


def share_get_params(name: str, path: str, accounts: Sequence[str]) -> dict[str, Any]:
    return {"Name": name, "Path": path, "Account": list(accounts)}


def read_share(session: Session, server: str, name: str, *, path: str = "",
               accounts: Sequence[str] = ()) -> ShareState:
    data = session.run(server, "smb_share_get", share_get_params(name, path, accounts)).data
    return ShareState.from_result(session.host(server).name, name, data)


@dataclass
class SharePlan:
    create_folder: bool = False
    create_share: bool = False
    set_continuously_available: bool = False
    set_encrypt_data: bool = False
    share_grant: list[Grantee] = field(default_factory=list)
    share_revoke: list[ShareAce] = field(default_factory=list)
    folder_grant: list[Grantee] = field(default_factory=list)
    folder_revoke: list[FolderAce] = field(default_factory=list)
    use_path_acl: bool = False
    #: Reported, left alone (unless pruning, when they are in the revoke lists too).
    share_extra: list[ShareAce] = field(default_factory=list)
    folder_extra: list[FolderAce] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create_folder or self.create_share or self.set_continuously_available
                    or self.set_encrypt_data or self.share_grant or self.share_revoke or self.folder_grant
                    or self.folder_revoke)

    def changes(self, name: str, path: str) -> list[Change]:
        """What this plan changes: what-if lists exactly these, and a real run reports them once verified."""
        share, folder = f"share {name}", f"folder {path}"
        out = []
        if self.create_folder:
            out.append(Change("create", folder))
        if self.create_share:
            out.append(Change("create", share, f"on {path}, Full for {', '.join(g.account for g in self.share_grant)}"))
        else:
            out += [Change("grant", share, f"Full to {g.account} ({g.sid})") for g in self.share_grant]
        out += [Change("revoke", share, f"{a.account or a.sid} ({a.sid}, {a.type} {a.right})") for a in self.share_revoke]
        if self.set_continuously_available:
            out.append(Change("set", share, "continuous availability on"))
        if self.set_encrypt_data:
            out.append(Change("set", share, "SMB encryption on"))
        out += [Change("remove", folder, f"{a.account or a.sid} ({a.sid}, {a.type} {a.rights})")
                for a in self.folder_revoke]
        if self.use_path_acl:
            # One Set-SmbPathAcl: the folder gets the share ACL as inherited Full Control ACEs.
            out.append(Change("set", folder, f"ACL copied from the share (Set-SmbPathAcl): Full Control for "
                                             f"{', '.join(g.account for g in self.folder_grant)}, inherited by "
                                             "folders and files"))
        else:
            out += [Change("grant", folder, f"Full Control to {g.account} ({g.sid}), inherited by folders and files")
                    for g in self.folder_grant]
        return out

    def extras(self) -> list[str]:
        """Principals not asked for that stay after this plan."""
        revoked = {a.sid for a in self.share_revoke}
        out = [f"share: {a.account or a.sid} ({a.sid}) has {a.type} {a.right}"
               for a in self.share_extra if not (a.sid in revoked and a.type == "Allow")]
        gone = {a.sid for a in self.folder_revoke}
        out += [f"folder: {a.account or a.sid} ({a.sid}) has explicit {a.type} {a.rights}"
                for a in self.folder_extra if a.sid not in gone]
        return out


def plan_share(state: ShareState, wanted: Sequence[Grantee], *, create: bool, prune: bool,
               continuously_available: bool = False, encrypt_data: bool = False,
               path_acl_supported: bool = False, report_extras: bool = True) -> SharePlan:
    """Compare the server's state with the wanted principals, by SID, and list what to do."""
    want = {g.sid: g for g in wanted}
    plan = SharePlan()
    if not state.exists:
        if not create:
            raise NotFoundError(f"no share named {state.name!r} on {state.server}")
        plan.create_share = True
        plan.create_folder = not state.folder_exists
        plan.share_grant = list(want.values())
    else:
        plan.share_grant = [g for g in want.values() if not state.share_full(g.sid)]
        if report_extras:
            plan.share_extra = [a for a in state.share_acl if a.sid not in want]
        plan.set_continuously_available = continuously_available and not (state.settings or {}).get(
            "continuously_available")
        plan.set_encrypt_data = encrypt_data and not (state.settings or {}).get("encrypt_data")
    plan.folder_grant = [g for g in want.values() if not state.folder_full(g.sid)]
    if report_extras:
        plan.folder_extra = [a for a in state.folder_acl
                             if not a.inherited and a.sid not in want and a.sid not in FOLDER_KEEP]
    if prune:
        # Revoke-SmbShareAccess removes allow entries only; a deny entry stays reported (Unblock-SmbShareAccess).
        plan.share_revoke = [a for a in plan.share_extra if a.type == "Allow"]
        plan.folder_revoke = list(plan.folder_extra)
    # Set-SmbPathAcl copies the whole share ACL to the folder: use it only when, after this plan,
    # the share ACL is exactly the wanted principals with Full and no explicit folder extra remains.
    revoked = {a.sid for a in plan.share_revoke}
    after = [a for a in state.share_acl if not (a.sid in revoked and a.type == "Allow")] if state.exists else []
    granted = {g.sid for g in plan.share_grant}
    exact = (all(a.type == "Allow" and (a.full or a.sid in granted) for a in after)
             and {a.sid for a in after} | granted == set(want))
    left_extra = bool(plan.folder_extra) and not prune
    plan.use_path_acl = bool(path_acl_supported and plan.folder_grant and exact and not left_extra)
    return plan


def apply_params(name: str, path: str, plan: SharePlan, accounts: Sequence[str], *,
                 continuously_available: bool = False, encrypt_data: bool = False) -> dict[str, Any]:
    return {
        "Name": name,
        "Path": path,
        "CreateFolder": plan.create_folder,
        "CreateShare": plan.create_share,
        "ContinuouslyAvailable": continuously_available,
        "EncryptData": encrypt_data,
        "SetContinuouslyAvailable": plan.set_continuously_available,
        "SetEncryptData": plan.set_encrypt_data,
        "ShareGrantSid": [g.sid for g in plan.share_grant],
        "ShareRevokeSid": [a.sid for a in plan.share_revoke],
        "NtfsGrantSid": [g.sid for g in plan.folder_grant],
        "NtfsRevokeSid": [a.sid for a in plan.folder_revoke],
        "UsePathAcl": plan.use_path_acl,
        "Account": list(accounts),
    }


#: Well-known principals that stand for (nearly) everyone: Full Control on a VM share for one of them
#: hands every VM's disks to every user. By SID, so a localised name ("Authentifizierte Benutzer") or a
#: SID given as the account is caught too. Domain-relative ones are matched by their RID.
BROAD_SIDS = {
    "S-1-5-11": "Authenticated Users",
    "S-1-5-32-545": "BUILTIN\\Users",
    "S-1-5-32-546": "BUILTIN\\Guests",
    "S-1-5-7": "ANONYMOUS LOGON",
    "S-1-5-2": "NETWORK",
    "S-1-5-4": "INTERACTIVE",
    "S-1-5-1": "DIALUP",
    "S-1-5-13": "TERMINAL SERVER USER",
    "S-1-5-14": "REMOTE INTERACTIVE LOGON",
}
BROAD_DOMAIN_RIDS = {"513": "Domain Users", "514": "Domain Guests", "515": "Domain Computers"}


def broad(sid: str) -> str | None:
    """What a broad principal's SID stands for, or None for one that names particular accounts."""
    if sid in BROAD_SIDS:
        return BROAD_SIDS[sid]
    if sid.startswith("S-1-5-21-") and sid.count("-") == 7:
        return BROAD_DOMAIN_RIDS.get(sid.rsplit("-", 1)[1])
    return None


def _grantees(state: ShareState, wanted: Sequence[Wanted], *, allow_broad: bool = False) -> list[Grantee]:
    problems = [Problem("account", f"{acct}: {why}", host=state.server,
                        fix="check the name (DOMAIN\\name), or that the computer is joined to the domain")
                for acct, why in state.unresolved.items()]
    if problems:
        raise PreflightError(problems, what="resolving accounts")
    out: dict[str, Grantee] = {}
    broad_problems: list[Problem] = []
    for w in wanted:
        sid = state.resolved[w.account.lower()]
        if sid == EVERYONE:
            raise PreflightError([Problem("account", f"{w.account} is Everyone (S-1-1-0): hvauto never grants it",
                                          host=state.server, fix="name the hosts and admins instead")])
        if broad(sid) and not allow_broad:
            broad_problems.append(Problem(
                "account", f"{w.account} is {broad(sid)} ({sid}): Full Control on a VM share and its folder for it "
                "gives every VM's disks to nearly every user", host=state.server,
                fix="name the admin group instead, or pass --allow-broad if that is really meant"))
            continue
        out.setdefault(sid, Grantee(w.account, sid, w.reason))
    if broad_problems:
        raise PreflightError(broad_problems, what="checking the accounts to grant")
    return list(out.values())


def _path_acl_supported(session: Session, server: str) -> bool:
    return versions.at_least(session.os_version(server), "2012r2")


def _same_path(a: str, b: str) -> bool:
    return a.rstrip("\\").lower() == b.rstrip("\\").lower()
