"""SMB 3.0 shares for VM storage: Full Control for the Hyper-V hosts on share and folder.

Each action inspects the share in one round trip (``smb_share_get``: settings, share ACL,
folder ACL by SID, open files, and the SIDs of the accounts hvauto wants), computes the
plan here in Python (the SMB cmdlets do not honour ``-WhatIf`` reliably), and applies it
in one more round trip (``smb_share_apply``), which reads the share back so the result is
verified against the plan. Principals are compared by SID: account names are localised
("Everyone" is "Jeder" on a German server) and the SIDs come from the server itself.

What counts as *extra*: a share ACL entry for any principal hvauto was not asked for, and an
explicit (not inherited) folder ACE for one, except SYSTEM, BUILTIN\\Administrators and
CREATOR OWNER, which a folder keeps. Extras are reported; ``prune`` removes them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import (
    NotFoundError,
    PreflightError,
    Problem,
    ValidationError,
    VerifyError,
)
from hvauto.inventory import HostConfig, Inventory
from hvauto.ops import delegation
from hvauto.ops.targets import check_domain_host, split_list
from hvauto.results import Change
from hvauto.session import Session

EVERYONE = "S-1-1-0"
#: Folder principals that are never extras: the OS and the server's administrators need them.
FOLDER_KEEP = frozenset({"S-1-5-18", "S-1-5-32-544", "S-1-3-0"})
SHARE_NAME_MAX = 80  # NNLEN
PATH_MAX = 247  # a directory's path must leave room for an 8.3 file name under MAX_PATH
_BAD_SHARE_CHARS = '\\/:*?"<>|'
_BAD_PATH_CHARS = '<>:"/|?*'
_SID_RE = re.compile(r"^S-1-[0-9]+(-[0-9]+)+$", re.I)
_RESERVED_SHARES = {"IPC$", "ADMIN$", "PRINT$"}


# -- validation (before any remote call) --------------------------------------------------------------

def share_name_problems(name: str) -> list[str]:
    if not name:
        return ["the share name is empty"]
    problems = []
    bad = sorted({c for c in name if c in _BAD_SHARE_CHARS or ord(c) < 32})
    if bad:
        shown = " ".join(repr(c) if ord(c) < 32 else c for c in bad)
        problems.append(f"share name {name!r} contains {shown}: a share name cannot contain "
                        f'\\ / : * ? " < > | or control characters')
    if len(name) > SHARE_NAME_MAX:
        problems.append(f"share name {name!r} is {len(name)} characters long; Windows allows at most {SHARE_NAME_MAX}")
    if name != name.strip():
        problems.append(f"share name {name!r} starts or ends with a space")
    if name.upper() in _RESERVED_SHARES or re.fullmatch(r"[A-Za-z]\$", name):
        problems.append(f"{name!r} is an administrative share that Windows manages itself")
    return problems


def local_path_problems(path: str) -> list[str]:
    if not path:
        return ["the folder path is empty"]
    if path.startswith(("\\\\", "//")):
        return [f"{path!r} is a UNC path; give the folder's local path on the file server (like D:\\Shares\\VMs)"]
    if not re.match(r"^[A-Za-z]:\\", path):
        return [f"{path!r} is not an absolute local path on the file server (expected like D:\\Shares\\VMs)"]
    problems = []
    rest = path[3:]
    bad = sorted({c for c in rest if c in _BAD_PATH_CHARS or ord(c) < 32})
    if bad:
        problems.append(f"path {path!r} contains {' '.join(bad)}, which Windows does not allow in a folder name")
    parts = [p for p in rest.split("\\") if p]
    if any(p in (".", "..") for p in parts):
        problems.append(f"path {path!r} contains . or .. ; give the folder's full path")
    if any(p != p.rstrip(" .") for p in parts):
        problems.append(f"path {path!r} has a folder name ending in a space or a dot, which Windows strips")
    if not parts:
        problems.append(f"{path!r} is the root of a volume; share a folder on it (like {path[:3]}Shares\\VMs)")
    if len(path) > PATH_MAX:
        problems.append(f"path {path!r} is longer than {PATH_MAX} characters")
    return problems


def expand_hosts(inv: Inventory, names: Sequence[str], problems: list[str]) -> list[HostConfig]:
    """Hyper-V hosts named directly or through an inventory group, each checked."""
    out: list[HostConfig] = []
    if not names:
        problems.append("no hosts given (--hosts H1,H2)")
    for name in names:
        members = inv.groups.get(name, [name])
        for member in members:
            cfg = check_domain_host(inv, member, problems, role="hyperv")
            if cfg is not None and cfg.name not in (c.name for c in out):
                out.append(cfg)
    return out


def qualify(inv: Inventory, account: str) -> str:
    """``Hyper-V Admins`` -> ``LAB\\Hyper-V Admins``; qualified names and SIDs stay as given."""
    account = account.strip()
    if "\\" in account or _SID_RE.match(account):
        return account
    return f"{inv.netbios}\\{account}"


def account_problems(account: str) -> list[str]:
    if not account.strip():
        return ["an account name is empty"]
    if any(ord(c) < 32 for c in account) or account.count("\\") > 1:
        return [f"{account!r} is not an account name (expected DOMAIN\\name, name or a SID)"]
    return []


# -- what the server says -----------------------------------------------------------------------------

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


def read_share(session: Session, server: str, name: str, *, path: str = "",
               accounts: Sequence[str] = ()) -> ShareState:
    data = session.run(server, "smb_share_get", {"Name": name, "Path": path, "Account": list(accounts)}).data
    return ShareState.from_result(session.host(server).name, name, data)


# -- the plan -----------------------------------------------------------------------------------------

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


# -- results ------------------------------------------------------------------------------------------

@dataclass
class ShareResult:
    server: str
    name: str
    path: str
    what_if: bool
    #: The share's changes, made (verified) or, in what-if, planned: the same list either way.
    changes: list[Change]
    extras: list[str]
    principals: list[Grantee]
    delegation: list[Any] = field(default_factory=list)
    message: str = ""

    @property
    def changed(self) -> bool:
        """Whether anything changed (in what-if: would), the share or a host's delegation."""
        return bool(self.changes) or any(d.changed for d in self.delegation)


def wanted_accounts(inv: Inventory, hosts: Sequence[HostConfig], group: str | None, admins: Sequence[str]) -> list[str]:
    """The accounts ``create`` reads the share for (its read step's Account parameter)."""
    return [w.account for w in _wanted(inv, hosts, group, admins)]


def show_accounts(inv: Inventory) -> dict[str, str]:
    """Every domain-joined Hyper-V host's computer account, by host: what ``show`` reads the share for."""
    hv_hosts = [inv.host(h) for h in inv.with_role("hyperv") if inv.host(h).domain]
    return {cfg.name: f"{inv.netbios}\\{cfg.name}$" for cfg in hv_hosts}


def _wanted(inv: Inventory, hosts: Sequence[HostConfig], group: str | None, admins: Sequence[str]) -> list[Wanted]:
    out: list[Wanted] = []
    for cfg in hosts:
        out.append(Wanted(f"{inv.netbios}\\{cfg.name}$", f"Hyper-V host {cfg.name}", cfg.name))
        if cfg.cluster:
            out.append(Wanted(f"{inv.netbios}\\{cfg.cluster}$", f"cluster of {cfg.name}", cfg.name))
    if group:
        out.append(Wanted(qualify(inv, group), "hosts' group"))
    out += [Wanted(qualify(inv, a), "admins") for a in admins]
    seen: set[str] = set()
    unique = []
    for w in out:
        if w.account.lower() not in seen:
            seen.add(w.account.lower())
            unique.append(w)
    return unique


def _grantees(state: ShareState, wanted: Sequence[Wanted]) -> list[Grantee]:
    problems = [Problem("account", f"{acct}: {why}", host=state.server,
                        fix="check the name (DOMAIN\\name), or that the computer is joined to the domain")
                for acct, why in state.unresolved.items()]
    if problems:
        raise PreflightError(problems, what="resolving accounts")
    out: dict[str, Grantee] = {}
    for w in wanted:
        sid = state.resolved[w.account.lower()]
        if sid == EVERYONE:
            raise PreflightError([Problem("account", f"{w.account} is Everyone (S-1-1-0): hvauto never grants it",
                                          host=state.server, fix="name the hosts and admins instead")])
        out.setdefault(sid, Grantee(w.account, sid, w.reason))
    return list(out.values())


def _path_acl_supported(session: Session, server: str) -> bool:
    return versions.at_least(session.os_version(server), "2012r2")


def _same_path(a: str, b: str) -> bool:
    return a.rstrip("\\").lower() == b.rstrip("\\").lower()


def _apply(session: Session, server: str, name: str, path: str, plan: SharePlan, wanted: Sequence[Wanted],
           grantees: Sequence[Grantee], *, continuously_available: bool = False,
           encrypt_data: bool = False, revoked: Sequence[str] = ()) -> ShareState:
    """Run the plan in one round trip and check the state the server reads back."""
    accounts = [w.account for w in wanted]
    params = apply_params(name, path, plan, accounts, continuously_available=continuously_available,
                          encrypt_data=encrypt_data)
    data = session.run(server, "smb_share_apply", params).data
    state = ShareState.from_result(session.host(server).name, name, data["state"])
    missing = [f"share: {g.account}" for g in grantees if not state.share_full(g.sid)]
    missing += [f"folder: {g.account}" for g in grantees if not state.folder_full(g.sid)]
    left = [f"share: {a.account or a.sid}" for a in state.share_acl if a.sid in revoked and a.type == "Allow"]
    left += [f"folder: {a.account or a.sid}" for a in state.folder_acl if a.sid in revoked and not a.inherited]
    if not state.exists or missing or left:
        detail = "; ".join([*(f"{m} lacks Full" for m in missing), *(f"{x} still there" for x in left)])
        raise VerifyError(f"{server}: share {name}: the change did not take: {detail or 'the share is gone'}",
                          hint=f"run `hvauto smb share show {name} --server {server}` to see its state")
    return state


def _ensure(session: Session, *, name: str, server: str, path: str, wanted: list[Wanted], create: bool,
            prune: bool, continuously_available: bool, encrypt_data: bool, what_if: bool,
            report_extras: bool) -> tuple[ShareResult, ShareState]:
    state = read_share(session, server, name, path=path, accounts=[w.account for w in wanted])
    if state.exists and path and not _same_path(state.path, path):
        raise PreflightError([Problem("share-path", f"share {state.name} already shares {state.path}, not {path}",
                                      host=server, fix="pick another share name, or give the share's own path")],
                             what=f"share {name}")
    grantees = _grantees(state, wanted)
    plan = plan_share(state, grantees, create=create, prune=prune, continuously_available=continuously_available,
                      encrypt_data=encrypt_data, path_acl_supported=_path_acl_supported(session, server),
                      report_extras=report_extras)
    real_path = state.path or path
    result = ShareResult(server=server, name=state.name, path=real_path, what_if=what_if,
                         changes=plan.changes(state.name, real_path), extras=plan.extras(), principals=grantees)
    if plan.empty:
        result.message = f"share {state.name} on {server} is already as asked: nothing to change"
        return result, state
    if what_if:
        result.message = f"what if: {len(result.changes)} change(s) to share {state.name} on {server}; nothing changed"
        return result, state
    state = _apply(session, server, state.name, real_path, plan, wanted, grantees,
                   continuously_available=continuously_available, encrypt_data=encrypt_data,
                   revoked=[a.sid for a in plan.share_revoke] + [a.sid for a in plan.folder_revoke])
    result.message = f"share {state.name} on {server}: {len(result.changes)} change(s) made"
    return result, state


def _delegate(session: Session, hosts: Sequence[HostConfig], server: str, what_if: bool) -> list[Any]:
    """Let each host use cifs/SERVER (short and FQDN) on the hosts' behalf: the double hop."""
    pairs = {cfg.name: [server] for cfg in hosts}
    return delegation.grant_pairs(session, pairs, services=["cifs"], what_if=what_if)


def _validate_common(inv: Inventory, name: str, server: str, problems: list[str]) -> HostConfig | None:
    problems += share_name_problems(name)
    return check_domain_host(inv, server, problems, what="file server")


def _check_ad_host(inv: Inventory, problems: list[str]) -> None:
    if not inv.with_role("ad"):
        problems.append("the inventory has no host with the 'ad' role to write delegation to cifs/SERVER in "
                        "(add one, or pass --no-delegation)")


# -- the actions --------------------------------------------------------------------------------------

def create(session: Session, *, name: str, server: str, path: str, hosts: Sequence[str], group: str | None = None,
           admins: Sequence[str] = (), continuously_available: bool = False, encrypt: bool = False,
           prune: bool = False, no_delegation: bool = False, what_if: bool = False) -> ShareResult:
    """Create or reconcile a share for VM storage: Full on share and folder for hosts, clusters, group, admins."""
    inv = session.inventory
    problems: list[str] = []
    fs = _validate_common(inv, name, server, problems)
    problems += local_path_problems(path)
    host_cfgs = expand_hosts(inv, split_list(hosts), problems)
    admin_list = split_list(admins)
    for account in ([group] if group is not None else []) + admin_list:
        problems += account_problems(account)
    if not no_delegation:
        _check_ad_host(inv, problems)
    if problems or fs is None:
        raise ValidationError(problems)
    wanted = _wanted(inv, host_cfgs, group, admin_list)
    result, _ = _ensure(session, name=name, server=fs.name, path=path, wanted=wanted, create=True, prune=prune,
                        continuously_available=continuously_available, encrypt_data=encrypt, what_if=what_if,
                        report_extras=True)
    if not no_delegation:
        result.delegation = _delegate(session, host_cfgs, fs.name, what_if)
    return result


def grant(session: Session, *, name: str, server: str, hosts: Sequence[str], no_delegation: bool = False,
          what_if: bool = False) -> ShareResult:
    """Add hosts to an existing share (share and folder), leaving every other entry alone."""
    inv = session.inventory
    problems: list[str] = []
    fs = _validate_common(inv, name, server, problems)
    host_cfgs = expand_hosts(inv, split_list(hosts), problems)
    if not no_delegation:
        _check_ad_host(inv, problems)
    if problems or fs is None:
        raise ValidationError(problems)
    wanted = _wanted(inv, host_cfgs, None, [])
    result, _ = _ensure(session, name=name, server=fs.name, path="", wanted=wanted, create=False, prune=False,
                        continuously_available=False, encrypt_data=False, what_if=what_if, report_extras=False)
    if not no_delegation:
        result.delegation = _delegate(session, host_cfgs, fs.name, what_if)
    return result


def revoke(session: Session, *, name: str, server: str, hosts: Sequence[str], what_if: bool = False) -> ShareResult:
    """Take hosts' computer accounts off the share ACL and the folder's explicit ACEs.

    Delegation to ``cifs/SERVER`` stays: other shares on the same server may need it
    (``hvauto delegation revoke HOST --to SERVER --services cifs`` removes it).
    """
    inv = session.inventory
    problems: list[str] = []
    fs = _validate_common(inv, name, server, problems)
    host_cfgs = expand_hosts(inv, split_list(hosts), problems)
    if problems or fs is None:
        raise ValidationError(problems)
    wanted = [Wanted(f"{inv.netbios}\\{cfg.name}$", f"Hyper-V host {cfg.name}", cfg.name) for cfg in host_cfgs]
    state = read_share(session, fs.name, name, accounts=[w.account for w in wanted])
    if not state.exists:
        raise NotFoundError(f"no share named {name!r} on {fs.name}")
    sids = set(state.resolved.values())
    plan = SharePlan(share_revoke=[a for a in state.share_acl if a.sid in sids and a.type == "Allow"],
                     folder_revoke=[a for a in state.folder_acl if a.sid in sids and not a.inherited])
    if plan.share_revoke and len(plan.share_revoke) == len(state.share_acl):
        raise PreflightError([Problem("share-acl", f"revoking {', '.join(w.account for w in wanted)} would leave "
                                      f"share {state.name} with no access entries", host=fs.name,
                                      fix=f"grant someone else first (hvauto smb share grant {state.name} ...), "
                                          f"or remove the share")], what=f"share {state.name}")
    result = ShareResult(server=fs.name, name=state.name, path=state.path, what_if=what_if,
                         changes=plan.changes(state.name, state.path), extras=[], principals=[])
    if plan.empty:
        result.message = f"share {state.name} on {fs.name}: none of these hosts has access; nothing to change"
        return result
    if what_if:
        result.message = f"what if: {len(result.changes)} change(s) to share {state.name} on {fs.name}; nothing changed"
        return result
    _apply(session, fs.name, state.name, state.path, plan, wanted, [], revoked=sorted(sids))
    result.message = f"share {state.name} on {fs.name}: {len(result.changes)} change(s) made"
    return result


@dataclass
class HostAccess:
    host: str
    account: str
    sid: str
    share_full: bool
    folder_full: bool
    delegation: bool | None
    can_use: bool


@dataclass
class ShareView:
    server: str
    name: str
    path: str
    settings: dict[str, Any]
    share_acl: list[ShareAce]
    folder_acl: list[FolderAce]
    open_files: list[OpenFile]
    hosts: list[HostAccess]
    problems: list[str]


def show(session: Session, *, name: str, server: str) -> ShareView:
    """Everything about a share: settings, both ACLs by account and SID, which Hyper-V hosts can use it."""
    inv = session.inventory
    inv.host(server)  # a read command: an unknown server is "not found" (exit 4)
    problems: list[str] = []
    fs = _validate_common(inv, name, server, problems)
    if problems or fs is None:
        raise ValidationError(problems)
    accounts = show_accounts(inv)
    state = read_share(session, fs.name, name, accounts=list(accounts.values()))
    if not state.exists:
        raise NotFoundError(f"no share named {name!r} on {fs.name}",
                            hint=f"create it: hvauto smb share create {name} --server {fs.name} --path D:\\... --hosts ...")
    delegation = _cifs_delegation(session, list(accounts), fs)
    hosts = []
    for host, account in accounts.items():
        sid = state.resolved.get(account.lower(), "")
        share_ok, folder_ok = bool(sid) and state.share_full(sid), bool(sid) and state.folder_full(sid)
        deleg = delegation.get(host)
        hosts.append(HostAccess(host, account, sid, share_ok, folder_ok, deleg,
                                share_ok and folder_ok and deleg is not False))
    return ShareView(server=fs.name, name=state.name, path=state.path, settings=state.settings or {},
                     share_acl=state.share_acl, folder_acl=state.folder_acl, open_files=state.open_files,
                     hosts=hosts, problems=_problems(state, hosts))


def _cifs_delegation(session: Session, hosts: list[str], fs: HostConfig) -> dict[str, bool]:
    """Whether each host may delegate to cifs/FS (short and FQDN); empty when there is no AD host."""
    from hvauto.ops import ad

    dc = ad.ad_host(session)
    if dc is None or not hosts:
        return {}
    found = ad.get_computers(session, hosts, ad_host=dc)
    out = {}
    for h in hosts:
        c = found.get(h.lower())
        out[h] = bool(c and c.found and c.delegates_to(f"cifs/{fs.name}") and c.delegates_to(f"cifs/{fs.fqdn}"))
    return out


def _problems(state: ShareState, hosts: Sequence[HostAccess]) -> list[str]:
    out = []
    if not state.share_acl:
        out.append("the share ACL is empty: nobody can use the share")
    if any(a.sid == EVERYONE for a in state.share_acl):
        out.append("Everyone has access to the share")
    if any(a.sid == EVERYONE and a.type == "Allow" for a in state.folder_acl):
        out.append("Everyone has access to the folder")
    out += [f"share: {a.account or a.sid} is denied access" for a in state.share_acl if a.type == "Deny"]
    out += [f"share: {a.sid} has no account (deleted?)" for a in state.share_acl if a.account == a.sid]
    if not state.folder_exists:
        out.append(f"the folder {state.path} does not exist")
    for h in hosts:
        if h.share_full and not h.folder_full:
            out.append(f"{h.host}: Full on the share but not Full Control on the folder")
        if h.folder_full and not h.share_full:
            out.append(f"{h.host}: Full Control on the folder but not Full on the share")
        if (h.share_full or h.folder_full) and h.delegation is False:
            out.append(f"{h.host}: may not delegate to cifs/{state.server}: managing its VMs on this share "
                       f"remotely fails with access denied (hvauto delegation grant {h.host} --to {state.server} "
                       f"--services cifs)")
    return out


@dataclass
class VmOnShare:
    host: str
    vm: str
    path: str


@dataclass
class RemoveResult:
    server: str
    name: str
    #: None when there is no such share.
    path: str | None
    what_if: bool
    in_use: list[str]
    message: str
    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _vm_files_on(session: Session, fs: HostConfig, name: str) -> tuple[list[VmOnShare], list[str]]:
    """VM configuration and disk paths under \\\\FS\\NAME\\ on every Hyper-V host in the inventory."""
    from hvauto.ops import vms

    roots = [f"\\\\{server}\\{name}".lower() for server in {fs.name, fs.fqdn, fs.address}]
    group = vms.list_many(session, session.inventory.with_role("hyperv"))
    found = []
    for host, vm_list in group.values().items():
        for vm in vm_list:
            for p in [vm.path, *(d.path for d in vm.disks)]:
                low = p.lower()
                if any(low == r or low.startswith(r + "\\") for r in roots):
                    found.append(VmOnShare(host, vm.name, p))
    unknown = [f"{h}: {e.message}" for h, e in group.failed().items()]
    return found, unknown


def remove(session: Session, *, name: str, server: str, force: bool = False, what_if: bool = False) -> RemoveResult:
    """Remove the share (never the folder or its data); refuse while VM files are on it, unless ``force``.

    "In use" is judged two ways, because either alone misses cases: the VMs of every Hyper-V
    host in the inventory (``vm_list``) whose configuration or disks live under
    ``\\\\FS\\NAME\\`` (short name, FQDN or address), which catches VMs that are off; and the
    files open on the server under the share's folder (MSFT_SmbOpenFile, what Get-SmbOpenFile
    reads), which catches hosts hvauto does not know. A Hyper-V host that cannot be asked
    counts as "unknown" and blocks too: hvauto cannot say its VMs are elsewhere.
    """
    inv = session.inventory
    problems: list[str] = []
    fs = _validate_common(inv, name, server, problems)
    if problems or fs is None:
        raise ValidationError(problems)
    state = read_share(session, fs.name, name)
    if not state.exists:
        return RemoveResult(fs.name, name, None, what_if, [], f"no share named {name} on {fs.name}: nothing to do")
    on_share, unknown = _vm_files_on(session, fs, state.name)
    in_use = [f"{v.host}: VM {v.vm} uses {v.path}" for v in on_share]
    in_use += [f"{f.client or '?'} ({f.user or '?'}) has {f.path} open" for f in state.open_files]
    in_use += [f"could not check {u}" for u in unknown]
    if in_use and not force:
        raise PreflightError([Problem("in-use", text, host=fs.name,
                                      fix="move the VMs' storage off the share first (or --force)")
                              for text in in_use], what=f"removing share {state.name}")
    result = RemoveResult(fs.name, state.name, state.path, what_if, in_use, "")
    change = Change("remove", f"share {state.name}", f"on {fs.name}; the folder {state.path} and its data stay")
    if what_if:
        result.changes = [change]
        result.message = f"what if: remove share {state.name} on {fs.name} (folder {state.path} and its data stay)"
        return result
    data = session.run(fs.name, "smb_share_remove", {"Name": state.name}).data
    result.changes = [change] if data.get("removed") else []
    result.message = (f"removed share {state.name} on {fs.name}; the folder {state.path} and its data stay"
                      if result.changed else f"no share named {state.name} on {fs.name}: nothing to do")
    return result
