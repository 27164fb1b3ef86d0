"""Kerberos constrained delegation for live migration and SMB storage (the double hop).

A move started remotely reaches the source host with the operator's ticket; the source must
then authenticate *as the operator* to the destination's migration service and to the file
server's ``cifs`` service. AD allows that per source computer account, per SPN, in
``msDS-AllowedToDelegateTo``, and from 2016 on also needs "use any authentication protocol"
(TrustedToAuthForDelegation): with "Kerberos only" a remotely started move fails. Each
direction is separate, and each SPN counts under the short name and the FQDN.

State is read with the one AD reader (:mod:`hvauto.ops.ad`) and written with
``ad_delegation_set``, which only adds what is missing and only removes what is there:
the list is never replaced, so entries hvauto was not told about stay.

CredSSP is not a workaround: it needs an interactive logon on the source, and on Windows
Server 2025 Credential Guard (on by default on domain members) breaks it outright. ``grant``
warns where a source migrates with CredSSP (the delegation would go unused); setting CredSSP is
``hvauto host migration``'s business, and it refuses on 2025.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import ConfigError, PreflightError, Problem, ValidationError, VerifyError
from hvauto.inventory import HostConfig, Inventory
from hvauto.ops import ad
from hvauto.ops.targets import check_domain_host, split_list
from hvauto.results import Change, count
from hvauto.session import Session
from hvauto.steps import Step, ph

SERVICES: dict[str, str] = {"migration": ad.MIGRATION_SERVICE, "cifs": "cifs"}
DEFAULT_SERVICES = ("migration", "cifs")
#: Protocol transition ("use any authentication protocol") is what remotely started moves need from 2016 on.
PROTOCOL_TRANSITION_FROM = "2016"
REPLICATION_NOTE = (
    "AD changes take effect after replication to the domain controllers the hosts use and a fresh Kerberos "
    "ticket: wait for replication (or run `repadmin /syncall`), then purge the source host's tickets "
    "(`klist -li 0x3e7 purge` on it) or restart it"
)
CREDSSP_2025 = (
    "CredSSP cannot be used for live migration on Windows Server 2025: Credential Guard, on by default on "
    "domain-joined servers, blocks the credential delegation CredSSP relies on. Use Kerberos with constrained "
    "delegation (hvauto delegation grant SRC --to DEST)"
)


def spns_for(dest: HostConfig, services: Iterable[str]) -> list[str]:
    """``service/short`` and ``service/FQDN`` for each service."""
    out: list[str] = []
    for service in services:
        for name in (dest.name, dest.fqdn):
            spn = f"{SERVICES[service]}/{name}"
            if spn.lower() not in (s.lower() for s in out):
                out.append(spn)
    return out


@dataclass
class SourceChange:
    """One source computer account: what it gains (or loses), and its state afterwards."""

    source: str
    to: list[str]
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    protocol_transition: bool = False
    allowed_to_delegate_to: list[str] = field(default_factory=list)
    trusted_to_auth_for_delegation: bool = False
    message: str = ""
    #: From add/remove/protocol_transition: made (verified), or in what-if planned; the same list.
    changes: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        account = f"computer {self.source}"
        self.changes = ([Change("add", account, f"may delegate to {spn}") for spn in self.add]
                        + [Change("remove", account, f"may delegate to {spn}") for spn in self.remove]
                        + ([Change("set", account, "use any authentication protocol (protocol transition)")]
                           if self.protocol_transition else []))

    @property
    def changed(self) -> bool:
        return bool(self.changes)


@dataclass
class DelegationResult:
    what_if: bool
    sources: list[SourceChange]
    warnings: list[str]
    message: str

    @property
    def changes(self) -> list[Change]:
        return [c for s in self.sources for c in s.changes]

    @property
    def changed(self) -> bool:
        """Whether any account changed (in what-if: would)."""
        return bool(self.changes)


# -- validation ---------------------------------------------------------------------------------------

def _services(values: Sequence[str] | None, problems: list[str]) -> list[str]:
    chosen = [s.lower() for s in split_list(values)] or list(DEFAULT_SERVICES)
    unknown = [s for s in chosen if s not in SERVICES]
    if unknown:
        problems.append(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
    return [s for s in chosen if s in SERVICES]


def _pairs(inv: Inventory, source: str | None, to: Sequence[str], mesh: str | None,
           problems: list[str]) -> dict[str, list[HostConfig]]:
    pairs: dict[str, list[HostConfig]] = {}
    if mesh is not None:
        if source is not None or to:
            problems.append("--mesh GROUP takes no SRC or --to: it covers every ordered pair of the group")
        if mesh not in inv.groups:
            problems.append(f"unknown group {mesh!r} (groups: {', '.join(inv.groups) or 'none'})")
            return {}
        members = [c for c in (check_domain_host(inv, m, problems) for m in inv.groups[mesh]) if c is not None]
        if len(members) < 2:
            problems.append(f"group {mesh!r} needs at least two hosts in a domain for a mesh")
        for src in members:
            pairs[src.name] = [d for d in members if d.name != src.name]
        return pairs
    if source is None:
        problems.append("give a source host (SRC --to DEST) or --mesh GROUP")
        return {}
    src_cfg = check_domain_host(inv, source, problems, what="source host")
    dests = split_list(to)
    if not dests:
        problems.append("no destination given (--to DEST[,DEST...])")
    dest_cfgs = []
    for d in dests:
        cfg = check_domain_host(inv, d, problems, what="destination host")
        if cfg is None:
            continue
        if src_cfg is not None and cfg.name == src_cfg.name:
            problems.append(f"{cfg.name} cannot delegate to itself")
            continue
        dest_cfgs.append(cfg)
    if src_cfg is not None:
        pairs[src_cfg.name] = dest_cfgs
    return pairs


def _validated(session: Session, source: str | None, to: Sequence[str], services: Sequence[str] | None,
               mesh: str | None) -> tuple[list[str], dict[str, list[HostConfig]]]:
    """The services and the source -> destinations pairs, every input problem at once (before any remote call)."""
    problems: list[str] = []
    chosen = _services(services, problems)
    pairs = _pairs(session.inventory, source, to, mesh, problems)
    if problems:
        raise ValidationError(problems)
    return chosen, pairs


def ad_host_or_fail(session: Session) -> str:
    host = ad.ad_host(session)
    if host is None:
        raise ConfigError("the inventory has no host with the 'ad' role: delegation is written in Active Directory",
                          path=str(session.inventory.path), key="hosts.*.roles",
                          hint='add roles = ["ad"] to a domain controller (or a host with the AD PowerShell module)')
    return host


# -- the work -----------------------------------------------------------------------------------------

def _wants_transition(session: Session, source: str) -> bool:
    return versions.at_least(session.os_version(source), PROTOCOL_TRANSITION_FROM)


def _read(session: Session, dc: str, sources: Sequence[str]) -> dict[str, ad.ADComputer]:
    found = ad.get_computers(session, list(sources), ad_host=dc)
    missing = [s for s in sources if not (found.get(s.lower()) and found[s.lower()].found)]
    if missing:
        raise PreflightError([Problem("ad-computer", f"no computer account for {s} in Active Directory", host=dc,
                                      fix=f"join {s} to the domain, or check its name in the inventory")
                              for s in missing], what="delegation")
    return found


def set_params(source: str, add: Sequence[str], remove: Sequence[str], transition: Any) -> dict[str, Any]:
    """``ad_delegation_set``: the SPNs to add to and remove from msDS-AllowedToDelegateTo, and protocol transition."""
    return {"Name": source, "Add": list(add), "Remove": list(remove), "TrustedToAuth": transition}


def _write(session: Session, dc: str, change: SourceChange) -> None:
    data = session.run(dc, "ad_delegation_set", set_params(change.source, change.add, change.remove,
                                                           change.protocol_transition)).data
    change.allowed_to_delegate_to = [str(s) for s in data.get("allowed_to_delegate_to") or []]
    change.trusted_to_auth_for_delegation = bool(data.get("trusted_to_auth_for_delegation"))
    now = {s.lower() for s in change.allowed_to_delegate_to}
    wrong = [s for s in change.add if s.lower() not in now] + [s for s in change.remove if s.lower() in now]
    if wrong or (change.protocol_transition and not change.trusted_to_auth_for_delegation):
        raise VerifyError(f"{change.source}: the delegation change did not take ({', '.join(wrong) or 'protocol transition'})",
                          hint=f"check the account with `hvauto delegation show {change.source}`")


def grant_pairs(session: Session, pairs: dict[str, list[HostConfig]] | dict[str, list[str]],
                services: Sequence[str] = DEFAULT_SERVICES, *, what_if: bool = False) -> list[SourceChange]:
    """For each source, add the SPNs of its destinations that are missing (one read, one write per source)."""
    inv = session.inventory
    resolved = {src: [d if isinstance(d, HostConfig) else inv.host(d) for d in dests] for src, dests in pairs.items()}
    dc = ad_host_or_fail(session)
    current = _read(session, dc, list(resolved))
    out = []
    for src, dests in resolved.items():
        computer = current[src.lower()]
        wanted = [spn for d in dests for spn in spns_for(d, services)]
        change = SourceChange(source=src, to=[d.name for d in dests],
                              add=[s for s in wanted if not computer.delegates_to(s)],
                              protocol_transition=(_wants_transition(session, src)
                                                   and not computer.trusted_to_auth_for_delegation),
                              allowed_to_delegate_to=list(computer.allowed_to_delegate_to),
                              trusted_to_auth_for_delegation=computer.trusted_to_auth_for_delegation)
        if not change.add and not change.protocol_transition:
            change.message = f"{src} may already delegate to {', '.join(change.to)}: nothing to change"
        elif what_if:
            change.message = f"what if: {src} would gain {count(len(change.add), 'SPN')}" + (
                " and protocol transition" if change.protocol_transition else "")
        else:
            _write(session, dc, change)
            change.message = f"{src}: added {count(len(change.add), 'SPN')}" + (
                ", protocol transition on" if change.protocol_transition else "")
        out.append(change)
    return out


def pairs_steps(session: Session, pairs: dict[str, list[HostConfig]] | dict[str, list[str]],
                services: Sequence[str] = DEFAULT_SERVICES, *, remove: bool = False) -> list[Step]:
    """The AD steps of a grant (or, ``remove``, a revoke): one read of every source, one write per source."""
    inv = session.inventory
    dc = ad_host_or_fail(session)
    steps = [Step(dc, "ad_computer_get", ad.computer_params(list(pairs)),
                  "read the sources' computer accounts (msDS-AllowedToDelegateTo, protocol transition)")]
    for src, dests in pairs.items():
        spns = [spn for d in dests for spn in spns_for(d if isinstance(d, HostConfig) else inv.host(d), services)]
        if remove:
            steps.append(Step(dc, "ad_delegation_set", set_params(src, [], spns, False),
                              f"remove the SPNs from {src}'s msDS-AllowedToDelegateTo",
                              when=f"for the SPNs {src} has; no step when it has none"))
            continue
        known = session.known_version(src)
        if known is None:
            steps.append(Step(src, "host_facts", {}, f"learn {src}'s Windows version (protocol transition from "
                              f"{versions.label(PROTOCOL_TRANSITION_FROM)})"))
        transition: Any = (versions.at_least(known, PROTOCOL_TRANSITION_FROM) if known is not None
                           else ph(f"whether {src} runs {versions.label(PROTOCOL_TRANSITION_FROM)} or later"))
        steps.append(Step(dc, "ad_delegation_set", set_params(src, spns, [], transition),
                          f"add the SPNs to {src}'s msDS-AllowedToDelegateTo (added to, never replaced)",
                          when=f"for the SPNs {src} lacks (and protocol transition if off); no step when none"))
    return steps


def grant_steps(session: Session, *, source: str | None = None, to: Sequence[str] = (),
                services: Sequence[str] | None = None, mesh: str | None = None) -> list[Step]:
    """``delegation grant --render``: validated as the real run, then its reads and writes."""
    chosen, pairs = _validated(session, source, to, services, mesh)
    ad_host_or_fail(session)
    steps = []
    if "migration" in chosen:
        steps += [Step(s, "host_facts", {}, f"read {s}'s migration authentication (CredSSP ignores delegation)")
                  for s in pairs if "hyperv" in session.host(s).roles]
    return steps + pairs_steps(session, pairs, chosen)


def revoke_steps(session: Session, *, source: str, to: Sequence[str],
                 services: Sequence[str] | None = None) -> list[Step]:
    chosen, pairs = _validated(session, source, to, services, None)
    return pairs_steps(session, pairs, chosen, remove=True)


def show_steps(session: Session, *, host: str) -> list[Step]:
    inv = session.inventory
    inv.host(host)
    problems: list[str] = []
    cfg = check_domain_host(inv, host, problems)
    if problems or cfg is None:
        raise ValidationError(problems)
    return [Step(ad_host_or_fail(session), "ad_computer_get", ad.computer_params([cfg.name]),
                 f"read {cfg.name}'s computer account")]


def _credssp_warnings(session: Session, sources: Sequence[str]) -> list[str]:
    """Constrained delegation is only used with Kerberos migration auth: say so where a host uses CredSSP."""
    from hvauto.ops import hosts

    hyperv = [s for s in sources if "hyperv" in session.host(s).roles]
    group = hosts.facts_many(session, hyperv)
    out = []
    for host, facts in group.values().items():
        if facts.migration is not None and facts.migration.auth_type.lower() == "credssp":
            text = (f"{host} authenticates live migration with CredSSP, which ignores this delegation: set Kerberos "
                    f"(Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos)")
            if facts.os_version and versions.at_least(facts.os_version, "2025"):
                text += f"; {CREDSSP_2025}"
            out.append(text)
    out += [f"{h}: could not read its migration settings ({e.message})" for h, e in group.failed().items()]
    return out


def grant(session: Session, *, source: str | None = None, to: Sequence[str] = (), services: Sequence[str] | None = None,
          mesh: str | None = None, what_if: bool = False) -> DelegationResult:
    """Let SRC delegate to each DEST (or every ordered pair of a group) for the services named."""
    chosen, pairs = _validated(session, source, to, services, mesh)
    ad_host_or_fail(session)
    # First: its host_facts reads also give the sources' versions, which grant_pairs needs (no second read).
    warnings = _credssp_warnings(session, list(pairs)) if "migration" in chosen else []
    changes = grant_pairs(session, pairs, chosen, what_if=what_if)
    changed = any(c.changed for c in changes)
    if changed and not what_if:
        warnings.append(REPLICATION_NOTE)
    if what_if:
        message = (f"what if: {count(sum(len(c.changes) for c in changes), 'change')}; nothing changed" if changed
                   else "already so: nothing to change")
    else:
        message = "delegation granted" if changed else "already so: nothing to change"
    return DelegationResult(what_if=what_if, sources=changes, warnings=warnings, message=message)


def revoke(session: Session, *, source: str, to: Sequence[str], services: Sequence[str] | None = None,
           what_if: bool = False) -> DelegationResult:
    """Remove SRC's SPNs for each DEST (short and FQDN); every other entry, and the protocol flag, stay."""
    chosen, pairs = _validated(session, source, to, services, None)
    dc = ad_host_or_fail(session)
    current = _read(session, dc, list(pairs))
    changes = []
    for src, dests in pairs.items():
        computer = current[src.lower()]
        unwanted = {s.lower() for d in dests for s in spns_for(d, chosen)}
        change = SourceChange(source=src, to=[d.name for d in dests],
                              remove=[s for s in computer.allowed_to_delegate_to if s.lower() in unwanted],
                              allowed_to_delegate_to=list(computer.allowed_to_delegate_to),
                              trusted_to_auth_for_delegation=computer.trusted_to_auth_for_delegation)
        if not change.remove:
            change.message = f"{src} may not delegate to {', '.join(change.to)} for {', '.join(chosen)}: nothing to change"
        elif what_if:
            change.message = f"what if: {src} would lose {count(len(change.remove), 'SPN')}"
        else:
            _write(session, dc, change)
            change.message = f"{src}: removed {count(len(change.remove), 'SPN')}"
        changes.append(change)
    changed = any(c.changed for c in changes)
    warnings = [REPLICATION_NOTE] if changed and not what_if else []
    message = (f"what if: {count(sum(len(c.changes) for c in changes), 'change')}; nothing changed" if what_if and changed
               else "delegation revoked" if changed else "already so: nothing to change")
    return DelegationResult(what_if=what_if, sources=changes, warnings=warnings, message=message)


@dataclass
class Target:
    host: str
    migration: bool
    cifs: bool
    partial: list[str]


@dataclass
class DelegationView:
    host: str
    sam: str
    dns: str
    sid: str
    os_version: str | None
    allowed_to_delegate_to: list[str]
    trusted_to_auth_for_delegation: bool
    targets: list[Target]
    problems: list[str]


def show(session: Session, *, host: str) -> DelegationView:
    """A computer account's delegation, and what it means for each other host in the inventory."""
    inv = session.inventory
    inv.host(host)  # a read command: an unknown host is "not found" (exit 4)
    problems: list[str] = []
    cfg = check_domain_host(inv, host, problems)
    if problems or cfg is None:
        raise ValidationError(problems)
    dc = ad_host_or_fail(session)
    computer = _read(session, dc, [cfg.name])[cfg.name.lower()]
    os_version = session.known_version(cfg.name)
    targets = []
    notes = []
    for other in inv.hosts.values():
        if other.name == cfg.name or not other.domain:
            continue
        per = {}
        partial = []
        for service in SERVICES:
            spns = spns_for(other, [service])
            have = [s for s in spns if computer.delegates_to(s)]
            per[service] = len(have) == len(spns)
            if have and len(have) < len(spns):
                partial += [s for s in spns if s not in have]
        if any(per.values()) or partial:
            targets.append(Target(other.name, per["migration"], per["cifs"], partial))
        for spn in partial:
            notes.append(f"missing {spn} (the other name of {other.name} is there): Kerberos asks for whichever "
                         f"name the client used")
    if computer.allowed_to_delegate_to and not computer.trusted_to_auth_for_delegation and (
            os_version is None or versions.at_least(os_version, PROTOCOL_TRANSITION_FROM)):
        notes.append("'Kerberos only' (no protocol transition): remotely started moves fail from 2016 on; "
                     f"hvauto delegation grant {cfg.name} --to ... turns 'use any authentication protocol' on")
    return DelegationView(host=cfg.name, sam=computer.sam, dns=computer.dns, sid=computer.sid, os_version=os_version,
                          allowed_to_delegate_to=list(computer.allowed_to_delegate_to),
                          trusted_to_auth_for_delegation=computer.trusted_to_auth_for_delegation,
                          targets=targets, problems=notes)
