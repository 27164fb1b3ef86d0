"""The share actions: create, grant, revoke, show and remove, each inspect, plan, apply, verify."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import (
    NotFoundError,
    OutcomeUnknown,
    PreflightError,
    Problem,
    TransportError,
    ValidationError,
    VerifyError,
)
from hvauto.inventory import HostConfig, Inventory
from hvauto.ops import delegation
from hvauto.ops.smb.acl import (
    FolderAce,
    Grantee,
    OpenFile,
    ShareAce,
    SharePlan,
    ShareState,
    Wanted,
    _grantees,
    _path_acl_supported,
    _same_path,
    apply_params,
    plan_share,
    read_share,
    share_get_params,
)
from hvauto.ops.smb.validate import EVERYONE, account_problems, expand_hosts, local_path_problems, qualify, share_name_problems
from hvauto.ops.targets import check_domain_host, split_list
from hvauto.render import Placeholder
from hvauto.results import Change, count
from hvauto.session import Session
from hvauto.steps import Step, ph


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


def _left_to_do(state: ShareState, grantees: Sequence[Grantee], revoked: Sequence[str]) -> tuple[list[str], list[str]]:
    """What the share still lacks (Full for a grantee) and still has (a revoked principal)."""
    missing = [f"share: {g.account}" for g in grantees if not state.share_full(g.sid)]
    missing += [f"folder: {g.account}" for g in grantees if not state.folder_full(g.sid)]
    left = [f"share: {a.account or a.sid}" for a in state.share_acl if a.sid in revoked and a.type == "Allow"]
    left += [f"folder: {a.account or a.sid}" for a in state.folder_acl if a.sid in revoked and not a.inherited]
    return missing, left


def _took(state: ShareState, grantees: Sequence[Grantee], revoked: Sequence[str]) -> bool:
    missing, left = _left_to_do(state, grantees, revoked)
    return state.exists and not missing and not left


def _apply(session: Session, server: str, name: str, path: str, plan: SharePlan, wanted: Sequence[Wanted],
           grantees: Sequence[Grantee], *, continuously_available: bool = False,
           encrypt_data: bool = False, revoked: Sequence[str] = ()) -> ShareState:
    """Run the plan in one round trip and check the state the server reads back."""
    accounts = [w.account for w in wanted]
    params = apply_params(name, path, plan, accounts, continuously_available=continuously_available,
                          encrypt_data=encrypt_data)
    try:
        data = session.run(server, "smb_share_apply", params).data
        state = ShareState.from_result(session.host(server).name, name, data["state"])
    except TransportError as exc:
        if not exc.sent:
            raise
        # The answer was lost after the script went out: read the share back, never send the plan again.
        try:
            state = read_share(session, server, name, path=path, accounts=accounts)
        except TransportError as again:
            raise OutcomeUnknown(f"{server}: share {name}: the answer to the change was lost ({exc.message}) and the "
                                 f"share cannot be read back ({again.message})",
                                 commands=[f"hvauto smb share show {name} --server {server}"]) from exc
        if not _took(state, grantees, revoked):
            raise OutcomeUnknown(f"{server}: share {name}: the answer to the change was lost ({exc.message}); the "
                                 "share does not show it (yet); nothing was sent again",
                                 commands=[f"hvauto smb share show {name} --server {server}"],
                                 hint="run the same command again once `smb share show` says how the share is: it "
                                 "plans from what it reads") from exc
    missing, left = _left_to_do(state, grantees, revoked)
    if not state.exists or missing or left:
        detail = "; ".join([*(f"{m} lacks Full" for m in missing), *(f"{x} still there" for x in left)])
        raise VerifyError(f"{server}: share {name}: the change did not take: {detail or 'the share is gone'}",
                          hint=f"run `hvauto smb share show {name} --server {server}` to see its state")
    return state


def _ensure(session: Session, *, name: str, server: str, path: str, wanted: list[Wanted], create: bool,
            prune: bool, continuously_available: bool, encrypt_data: bool, what_if: bool,
            report_extras: bool, allow_broad: bool = False) -> tuple[ShareResult, ShareState]:
    state = read_share(session, server, name, path=path, accounts=[w.account for w in wanted])
    if state.exists and path and not _same_path(state.path, path):
        raise PreflightError([Problem("share-path", f"share {state.name} already shares {state.path}, not {path}",
                                      host=server, fix="pick another share name, or give the share's own path")],
                             what=f"share {name}")
    grantees = _grantees(state, wanted, allow_broad=allow_broad)
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
        result.message = f"what if: {count(len(result.changes), 'change')} to share {state.name} on {server}; nothing changed"
        return result, state
    state = _apply(session, server, state.name, real_path, plan, wanted, grantees,
                   continuously_available=continuously_available, encrypt_data=encrypt_data,
                   revoked=[a.sid for a in plan.share_revoke] + [a.sid for a in plan.folder_revoke])
    result.message = f"share {state.name} on {server}: {count(len(result.changes), 'change')} made"
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


def _sid(account: str) -> Placeholder:
    return ph(f"SID of {account}")


def _apply_step(session: Session, server: str, name: str, path: str, wanted: Sequence[Wanted], *,
                create: bool, continuously_available: bool = False, encrypt: bool = False) -> Step:
    """The apply step as for a server where the share (``create``) or the hosts' access is still missing."""
    grantees = [Grantee(w.account, _sid(w.account), w.reason) for w in wanted]
    known = session.known_version(server)
    plan = SharePlan(create_folder=create, create_share=create, share_grant=grantees, folder_grant=grantees,
                     use_path_acl=create and known is not None and versions.at_least(known, "2012r2"))
    return Step(server, "smb_share_apply", apply_params(name, path or ph(f"path of share {name}"), plan,
                                                       [w.account for w in wanted],
                                                       continuously_available=continuously_available,
                                                       encrypt_data=encrypt),
                "create the folder and share and grant Full on both (by SID), then read the share back" if create
                else "grant Full on share and folder (by SID), then read the share back",
                when="when the share, its folder or an ACL differs from the ask; rendered as for "
                + ("a server with no such share" if create else "a share none of these hosts may use yet")
                + ", the real run sends only what differs")


def _delegate_steps(session: Session, hosts: Sequence[HostConfig], server: str) -> list[Step]:
    return delegation.pairs_steps(session, {cfg.name: [server] for cfg in hosts}, ["cifs"])


def create_steps(session: Session, *, name: str, server: str, path: str, hosts: Sequence[str],
                 group: str | None = None, admins: Sequence[str] = (), continuously_available: bool = False,
                 encrypt: bool = False, prune: bool = False, no_delegation: bool = False) -> list[Step]:
    """``smb share create --render``: validated as the real run; the read, the apply, the cifs delegation."""
    inv = session.inventory
    fs, host_cfgs, wanted = _create_input(inv, name=name, server=server, path=path, hosts=hosts, group=group,
                                          admins=admins, no_delegation=no_delegation)
    steps = [Step(fs.name, "smb_share_get", share_get_params(name, path, [w.account for w in wanted]),
                  "read the share, its folder, both ACLs and the accounts' SIDs")]
    steps.append(_apply_step(session, fs.name, name, path, wanted, create=True,
                             continuously_available=continuously_available, encrypt=encrypt))
    if not no_delegation:
        steps += _delegate_steps(session, host_cfgs, fs.name)
    return steps


def grant_steps(session: Session, *, name: str, server: str, hosts: Sequence[str],
                no_delegation: bool = False) -> list[Step]:
    fs, host_cfgs = _grant_input(session.inventory, name=name, server=server, hosts=hosts,
                                 no_delegation=no_delegation)
    wanted = _wanted(session.inventory, host_cfgs, None, [])
    steps = [Step(fs.name, "smb_share_get", share_get_params(name, "", [w.account for w in wanted]),
                  "read the share, its folder, both ACLs and the accounts' SIDs"),
             _apply_step(session, fs.name, name, "", wanted, create=False)]
    if not no_delegation:
        steps += _delegate_steps(session, host_cfgs, fs.name)
    return steps


def revoke_steps(session: Session, *, name: str, server: str, hosts: Sequence[str]) -> list[Step]:
    fs, wanted = _revoke_input(session.inventory, name=name, server=server, hosts=hosts)
    accounts = [w.account for w in wanted]
    sids = [_sid(a) for a in accounts]
    plan = SharePlan(share_revoke=[ShareAce(a, s, "Allow", "Full") for a, s in zip(accounts, sids, strict=True)],
                     folder_revoke=[FolderAce(a, s, "FullControl", "Allow", False, "", "")
                                    for a, s in zip(accounts, sids, strict=True)])
    return [Step(fs.name, "smb_share_get", share_get_params(name, "", accounts),
                 "read the share, both ACLs and the accounts' SIDs"),
            Step(fs.name, "smb_share_apply", apply_params(name, ph(f"path of share {name}"), plan, accounts),
                 "remove the hosts' share access and explicit folder entries, then read the share back",
                 when="for the entries the hosts have; no step when they have none")]


def show_steps(session: Session, *, name: str, server: str) -> list[Step]:
    inv = session.inventory
    fs = _show_input(inv, name=name, server=server)
    accounts = show_accounts(inv)
    steps = [Step(fs.name, "smb_share_get", share_get_params(name, "", list(accounts.values())),
                  "read the share, its folder, both ACLs and every Hyper-V host's SID")]
    from hvauto.ops import ad

    dc = ad.ad_host(session)
    if dc is not None and accounts:
        steps.append(Step(dc, "ad_computer_get", ad.computer_params(list(accounts)),
                          f"read the hosts' delegation to cifs/{fs.name}"))
    return steps


def remove_steps(session: Session, *, name: str, server: str) -> list[Step]:
    from hvauto.ops import vms

    fs = _show_input(session.inventory, name=name, server=server, read=False)
    return [Step(fs.name, "smb_share_get", share_get_params(name, "", []), "read the share and its open files"),
            *[Step(s.host, s.template, s.params, "read the host's VMs: is a VM's file on the share?",
                   when="when the share exists")
              for s in vms.list_steps(session, session.inventory.with_role("hyperv"))],
            Step(fs.name, "smb_share_remove", {"Name": ph(f"name of share {name} as the server spells it")},
                 "remove the share (never the folder or its data)",
                 when="when the share exists and no VM file is on it, or --force")]


def _create_input(inv: Inventory, *, name: str, server: str, path: str, hosts: Sequence[str], group: str | None,
                  admins: Sequence[str], no_delegation: bool) -> tuple[HostConfig, list[HostConfig], list[Wanted]]:
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
    return fs, host_cfgs, _wanted(inv, host_cfgs, group, admin_list)


def _grant_input(inv: Inventory, *, name: str, server: str, hosts: Sequence[str],
                 no_delegation: bool) -> tuple[HostConfig, list[HostConfig]]:
    problems: list[str] = []
    fs = _validate_common(inv, name, server, problems)
    host_cfgs = expand_hosts(inv, split_list(hosts), problems)
    if not no_delegation:
        _check_ad_host(inv, problems)
    if problems or fs is None:
        raise ValidationError(problems)
    return fs, host_cfgs


def _revoke_input(inv: Inventory, *, name: str, server: str, hosts: Sequence[str]) -> tuple[HostConfig, list[Wanted]]:
    problems: list[str] = []
    fs = _validate_common(inv, name, server, problems)
    host_cfgs = expand_hosts(inv, split_list(hosts), problems)
    if problems or fs is None:
        raise ValidationError(problems)
    return fs, [Wanted(f"{inv.netbios}\\{cfg.name}$", f"Hyper-V host {cfg.name}", cfg.name) for cfg in host_cfgs]


def _show_input(inv: Inventory, *, name: str, server: str, read: bool = True) -> HostConfig:
    if read:
        inv.host(server)  # a read command: an unknown server is "not found" (exit 4)
    problems: list[str] = []
    fs = _validate_common(inv, name, server, problems)
    if problems or fs is None:
        raise ValidationError(problems)
    return fs


def create(session: Session, *, name: str, server: str, path: str, hosts: Sequence[str], group: str | None = None,
           admins: Sequence[str] = (), continuously_available: bool = False, encrypt: bool = False,
           prune: bool = False, no_delegation: bool = False, what_if: bool = False,
           allow_broad: bool = False) -> ShareResult:
    """Create or reconcile a share for VM storage: Full on share and folder for hosts, clusters, group, admins.

    A broad principal among the admins (Authenticated Users, BUILTIN\\Users, Domain Users ..., by SID) is
    refused unless ``allow_broad``; Everyone always is.
    """
    fs, host_cfgs, wanted = _create_input(session.inventory, name=name, server=server, path=path, hosts=hosts,
                                          group=group, admins=admins, no_delegation=no_delegation)
    result, _ = _ensure(session, name=name, server=fs.name, path=path, wanted=wanted, create=True, prune=prune,
                        continuously_available=continuously_available, encrypt_data=encrypt, what_if=what_if,
                        report_extras=True, allow_broad=allow_broad)
    if not no_delegation:
        result.delegation = _delegate(session, host_cfgs, fs.name, what_if)
    return result


def grant(session: Session, *, name: str, server: str, hosts: Sequence[str], no_delegation: bool = False,
          what_if: bool = False) -> ShareResult:
    """Add hosts to an existing share (share and folder), leaving every other entry alone."""
    fs, host_cfgs = _grant_input(session.inventory, name=name, server=server, hosts=hosts,
                                 no_delegation=no_delegation)
    wanted = _wanted(session.inventory, host_cfgs, None, [])
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
    fs, wanted = _revoke_input(session.inventory, name=name, server=server, hosts=hosts)
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
        result.message = f"what if: {count(len(result.changes), 'change')} to share {state.name} on {fs.name}; nothing changed"
        return result
    _apply(session, fs.name, state.name, state.path, plan, wanted, [], revoked=sorted(sids))
    result.message = f"share {state.name} on {fs.name}: {count(len(result.changes), 'change')} made"
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
    fs = _show_input(inv, name=name, server=server)
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
    fs = _show_input(session.inventory, name=name, server=server, read=False)
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
