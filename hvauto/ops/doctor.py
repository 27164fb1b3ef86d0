"""``hvauto doctor``: the estate's readiness in one view, read-only.

Per host, in the order a person would debug it, stopping at the first failure with its fix:
name resolution, TCP to the WinRM port, TLS (the back-end's probe, before any script), then
one ``doctor_host`` read (authentication, Windows and PowerShell, the Hyper-V module, WinRM
quotas, the clock against the domain controller's, Credential Guard with CredSSP). Then a
migration matrix over every ordered pair of reachable Hyper-V hosts, judged by the migrate
preflight's own rules (:func:`hvauto.ops.migrate.preflight.evaluate`) for each VM on the
source and for the host pair itself; and for each file-server share that holds VM files,
which hosts can use it (share and NTFS access by SID, ``cifs`` delegation) and which VMs live on it.

Round trips: one ``doctor_host`` per host (two for a host whose OS version the inventory does
not give: ``host_facts`` first), one ``ad_computer_get`` on the AD host, one ``smb_share_get``
per share in use; all of them concurrent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import AuthError, HvautoError, Problem, TransportError
from hvauto.ops import ad as ad_ops
from hvauto.ops.migrate.model import SHARED_NOTHING
from hvauto.ops.migrate.preflight import evaluate
from hvauto.remote.probe import Stage
from hvauto.session import Session
from hvauto.steps import Step

#: Kerberos's default "maximum tolerance for computer clock synchronization": 5 minutes.
MAX_SKEW_SECONDS = 300
#: The oldest PowerShell per Windows version that hvauto's templates target.
MIN_PS = {"2012": "3.0", "2012r2": "4.0", "2016": "5.1", "2019": "5.1", "2022": "5.1", "2025": "5.1"}
#: Below these WinRM quotas a fan-out or a runbook with parallel steps runs out of shells or operations.
MIN_SHELLS, MIN_OPERATIONS = 5, 100


@dataclass
class HostCheck:
    host: str
    roles: list[str]
    #: Reached and read: the matrix can use it.
    reachable: bool = False
    stages: list[Stage] = field(default_factory=list)
    os_version: str | None = None
    ps_version: str | None = None
    auth: str = ""
    clock_skew_seconds: float | None = None
    problems: list[Problem] = field(default_factory=list)
    facts: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return self.reachable and not any(p.blocking for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "roles": self.roles, "reachable": self.reachable, "ready": self.ready,
                "os_version": self.os_version, "ps_version": self.ps_version, "auth": self.auth,
                "clock_skew_seconds": self.clock_skew_seconds,
                "stages": [vars(s) for s in self.stages], "problems": [p.to_dict() for p in self.problems]}


@dataclass
class PairCheck:
    source: str
    dest: str
    #: ready, blocked, or unknown (a host could not be read).
    verdict: str
    problems: list[Problem] = field(default_factory=list)
    vms: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.verdict == "ready"


@dataclass
class ShareHost:
    host: str
    share_full: bool
    folder_full: bool
    delegation: bool | None
    can_use: bool


@dataclass
class ShareCheck:
    server: str
    name: str
    path: str | None
    vms: list[str]
    hosts: list[ShareHost] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class DoctorReport:
    hosts: dict[str, HostCheck]
    pairs: list[PairCheck]
    shares: list[ShareCheck]

    @property
    def ready(self) -> bool:
        return (all(h.ready for h in self.hosts.values()) and all(p.ready for p in self.pairs)
                and not any(p.blocking for s in self.shares for p in s.problems))

    @property
    def blocking(self) -> list[Problem]:
        every = [p for h in self.hosts.values() for p in h.problems] + [p for x in self.pairs for p in x.problems]
        every += [p for s in self.shares for p in s.problems]
        unreachable = [Problem("reach", f"{h.host}: {s.detail}", host=h.host, fix=s.fix)
                       for h in self.hosts.values() for s in h.stages if not s.ok]
        out: list[Problem] = []
        for p in [*unreachable, *every]:
            if p.blocking and p not in out:
                out.append(p)
        return out

    def to_dict(self) -> dict[str, Any]:
        from hvauto.results import to_jsonable

        return {"ready": self.ready, "hosts": [h.to_dict() for h in self.hosts.values()],
                "pairs": [{**to_jsonable(p), "ready": p.ready} for p in self.pairs],
                "shares": [to_jsonable(s) for s in self.shares]}


# -- per host --------------------------------------------------------------------------------------------

def _check_host(session: Session, host: str) -> HostCheck:
    cfg = session.host(host)
    from hvauto.remote import probe_host

    out = HostCheck(host=cfg.name, roles=list(cfg.roles), auth=cfg.auth)
    out.stages = probe_host(cfg)
    if not all(s.ok for s in out.stages):
        return out
    sent = time.time()
    try:
        # A host the inventory gives no version is asked first (PowerShell 3.0-safe host_facts): the
        # version-specific branches of doctor_host (configuration versions, Credential Guard) need it.
        data = session.run(cfg.name, "doctor_host", version=session.os_version(cfg.name)).data
    except AuthError as exc:
        out.stages.append(Stage("auth", False, f"{cfg.auth} authentication failed: {exc.message}",
                                exc.hint or _auth_fix(cfg.auth, cfg.name)))
        return out
    except TransportError as exc:
        out.stages.append(Stage("winrm", False, exc.message, exc.hint or "check the WinRM service on the host"))
        return out
    except HvautoError as exc:
        out.stages.append(Stage("script", False, exc.message, exc.hint or ""))
        return out
    received = time.time()
    out.stages.append(Stage("auth", True, f"{cfg.auth} authentication" + (
        ": NTLM sessions carry no Kerberos ticket, so constrained delegation cannot apply to moves started from "
        "them" if cfg.auth == "ntlm" else ""), warning=cfg.auth in ("ntlm", "credssp", "basic")))
    out.reachable = True
    out.facts = data
    out.os_version = versions.from_kernel_version(str(data["os_version"])) or session.known_version(cfg.name)
    out.ps_version = str(data["ps_version"])
    # The skew against this machine's clock, at the middle of the round trip (the DC's is subtracted later).
    out.clock_skew_seconds = int(data["utc_now_ms"]) / 1000 - (sent + received) / 2
    _host_problems(out, data)
    return out


def _auth_fix(auth: str, host: str) -> str:
    if auth == "kerberos":
        return f"check the account, a ticket (klist), the SPN HTTP/{host}, and the clock against the DC"
    return f"check the user name and password for {host} (HVAUTO_USERNAME / HVAUTO_PASSWORD)"


def _host_problems(out: HostCheck, data: dict[str, Any]) -> None:
    h = out.host

    def add(check: str, message: str, fix: str, *, blocking: bool = True) -> None:
        out.problems.append(Problem(check, message, host=h, fix=fix, blocking=blocking))

    version = out.os_version
    if version is None:
        add("os", f"{h} runs Windows {data['os_version']}, which hvauto does not support",
            "hvauto manages Windows Server 2012 to 2025")
    elif out.ps_version and _older(out.ps_version, MIN_PS[version]):
        add("powershell", f"{h} has Windows PowerShell {out.ps_version}; {versions.label(version)} templates need "
            f"{MIN_PS[version]}", f"install Windows Management Framework {MIN_PS[version]} on {h}")
    if "hyperv" in out.roles and data.get("hyperv") is None:
        add("hyperv", f"{h} has no Hyper-V PowerShell module (Get-VMHost is not there)",
            f"Install-WindowsFeature Hyper-V, Hyper-V-PowerShell on {h} (or drop the hyperv role)")
    quota = data.get("winrm") or {}
    shells, ops = quota.get("max_shells_per_user"), quota.get("max_concurrent_operations_per_user")
    if shells is not None and int(shells) < MIN_SHELLS:
        add("winrm.quota", f"{h} allows {shells} WinRM shell(s) per user: parallel runs will be refused",
            f"Set-Item WSMan:\\localhost\\Shell\\MaxShellsPerUser 30 on {h}", blocking=False)
    if ops is not None and int(ops) < MIN_OPERATIONS:
        add("winrm.quota", f"{h} allows {ops} concurrent WinRM operation(s) per user",
            f"Set-Item WSMan:\\localhost\\Service\\MaxConcurrentOperationsPerUser 1500 on {h}", blocking=False)
    hv = data.get("hyperv") or {}
    auth = str((hv.get("migration") or {}).get("auth_type") or "")
    if auth == "CredSSP" and data.get("credential_guard"):
        add("credential_guard", f"{h} runs Credential Guard and authenticates live migration with CredSSP: moves "
            "from it fail (CredSSP cannot use saved credentials under Credential Guard)",
            f"hvauto host migration {h} --auth kerberos, then hvauto delegation grant {h} --to ...")


def _older(have: str, need: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".")[:2] if p.isdigit())

    return parts(have) < parts(need)


def _clock(checks: dict[str, HostCheck], dc: str | None) -> None:
    ref = checks.get(dc) if dc else None
    if ref is None or ref.clock_skew_seconds is None:
        return
    for c in checks.values():
        if c.clock_skew_seconds is None:
            continue
        skew = c.clock_skew_seconds - ref.clock_skew_seconds
        c.clock_skew_seconds = round(skew, 1) if c is not ref else 0.0
        if c is not ref and abs(skew) > MAX_SKEW_SECONDS:
            c.problems.append(Problem(
                "clock", f"{c.host}'s clock is {abs(skew) / 60:.0f} minute(s) {'ahead of' if skew > 0 else 'behind'} "
                f"{dc}'s: Kerberos refuses tickets beyond 5 minutes", host=c.host,
                fix=f"w32tm /resync on {c.host} (and check its time source: w32tm /query /source)"))


# -- the matrix ------------------------------------------------------------------------------------------

PROBE_VM = "(any VM)"


#: A VM with nothing particular: the pair's host-level rules (migration, authentication, listeners, delegation).
def _probe_vm(facts: dict[str, Any]) -> dict[str, Any]:
    supported = list((facts.get("hyperv") or {}).get("supported_versions") or ["8.0"])
    return {"name": PROBE_VM, "id": "", "state": "Off", "version": supported[0], "path": "", "clustered": False,
            "memory_startup_bytes": 0, "memory_assigned_bytes": 0, "disks": [], "switches": []}


def _source_view(facts: dict[str, Any], vm: dict[str, Any]) -> dict[str, Any]:
    hv = facts["hyperv"]
    view = dict(vm)
    view["disks"] = [{"path": p, "file_size_bytes": 0} for p in vm.get("disks") or []]
    return {"vms": [view], "migration": hv["migration"], "cpu_vendor": facts.get("cpu_vendor") or "", "check": {},
            "jobs": []}


def _dest_view(facts: dict[str, Any]) -> dict[str, Any]:
    hv = facts["hyperv"]
    return {"migration": hv["migration"], "listener_addresses": hv.get("listener_addresses") or [],
            "switches": hv.get("switches") or [], "supported_versions": hv.get("supported_versions") or [],
            "cpu_vendor": facts.get("cpu_vendor") or "", "memory_free_bytes": int(facts.get("memory_free_bytes") or 0),
            "path": {}, "planned": [], "vm_path": hv.get("vm_path") or ""}


def pair_problems(session: Session, source: HostCheck, dest: HostCheck,
                  computers: dict[str, ad_ops.ADComputer] | None) -> list[Problem]:
    """Every problem of moving ``source``'s VMs to ``dest``: the pair itself, then each VM, by the preflight's rules."""
    assert source.facts is not None and dest.facts is not None
    dst = _dest_view(dest.facts)
    vms = list(source.facts["hyperv"].get("vms") or [])
    found: list[Problem] = []
    for vm in [_probe_vm(source.facts), *vms]:
        problems, _ = evaluate(vm_name=str(vm["name"]), mode=SHARED_NOTHING, source=source.host, dest=dest.host,
                               storage_path=None, src=_source_view(source.facts, vm), dst=dst, computers=computers,
                               source_os=source.os_version or versions.OLDEST, dest_fqdn=session.host(dest.host).fqdn)
        for p in problems:
            if p.check == "vm.state":
                continue  # a VM in transition now is not a readiness problem of the pair
            if vm["name"] == PROBE_VM and PROBE_VM in p.message + p.fix:
                continue  # the stand-in VM only asks the pair's own rules; what it says of itself is no finding
            if p not in found:
                found.append(p)
    return found


def _matrix(session: Session, checks: dict[str, HostCheck], computers: dict[str, ad_ops.ADComputer] | None,
            hyperv: list[str]) -> list[PairCheck]:
    pairs = []
    for s in hyperv:
        for d in hyperv:
            if s == d:
                continue
            src, dst = checks[s], checks[d]
            vms = [str(v["name"]) for v in ((src.facts or {}).get("hyperv") or {}).get("vms") or []]
            down = _unread({s: src, d: dst})
            if down:
                pairs.append(PairCheck(s, d, "unknown", [Problem(
                    "reach", f"{' and '.join(down)} could not be read as a Hyper-V host", host=down[0],
                    fix="see the host's own line above")], vms))
                continue
            problems = pair_problems(session, src, dst, computers)
            verdict = "blocked" if any(p.blocking for p in problems) else "ready"
            pairs.append(PairCheck(s, d, verdict, problems, vms))
    return pairs


def _unread(pair: dict[str, HostCheck | None]) -> list[str]:
    """The hosts of a source/destination pair that could not be read as Hyper-V hosts (none: judge the pair)."""
    return [name for name, check in pair.items()
            if check is None or not check.reachable or (check.facts or {}).get("hyperv") is None]


# -- shares ----------------------------------------------------------------------------------------------

def _shares_in_use(session: Session, checks: dict[str, HostCheck]) -> dict[tuple[str, str], list[str]]:
    """(file server, share) -> the VMs with a file on it, from the VMs' paths (``\\\\FS\\SHARE\\...``)."""
    inv = session.inventory
    servers = {}
    for name in inv.with_role("fileserver"):
        cfg = inv.host(name)
        for alias in {cfg.name, cfg.fqdn, cfg.address or cfg.name}:
            servers[alias.lower()] = cfg.name
    found: dict[tuple[str, str], list[str]] = {}
    for c in checks.values():
        for vm in ((c.facts or {}).get("hyperv") or {}).get("vms") or []:
            for p in [vm.get("path") or "", *(vm.get("disks") or [])]:
                parts = [x for x in str(p).split("\\") if x] if str(p).startswith("\\\\") else []
                if len(parts) >= 2 and parts[0].lower() in servers:
                    key = (servers[parts[0].lower()], parts[1])
                    label = f"{c.host}/{vm['name']}"
                    if label not in found.setdefault(key, []):
                        found[key].append(label)
    return found


def _check_shares(session: Session, checks: dict[str, HostCheck], computers: dict[str, ad_ops.ADComputer] | None,
                  hyperv: list[str]) -> list[ShareCheck]:
    from hvauto.ops.smb.acl import ShareState, share_get_params

    in_use = _shares_in_use(session, checks)
    inv = session.inventory
    accounts = {h: f"{inv.netbios}\\{h}$" for h in hyperv if inv.host(h).domain}
    def reader(server: str, name: str) -> Callable[[], Any]:
        return lambda: session.run(server, "smb_share_get", share_get_params(name, "", list(accounts.values()))).data

    reads = {key: reader(*key) for key in in_use}
    keys = list(reads)
    out = []
    values: dict[tuple[str, str], Any] = {}
    errors: dict[tuple[str, str], HvautoError] = {}
    by_server: dict[str, list[tuple[str, str]]] = {}
    for key in keys:
        by_server.setdefault(key[0], []).append(key)

    def read_server(server: str) -> dict[tuple[str, str], Any]:
        return {k: reads[k]() for k in by_server[server]}

    fan = session.fan_out(list(by_server), read_server)
    for server, outcome in fan.outcomes.items():
        if outcome.ok:
            values.update(outcome.value)
        else:
            for k in by_server.get(server, []):
                errors[k] = outcome.error  # type: ignore[assignment]
    for key in keys:
        server, name = key
        check = ShareCheck(server=server, name=name, path=None, vms=in_use[key])
        out.append(check)
        if key in errors:
            check.problems.append(Problem("share.read", f"could not read share {name} on {server}: "
                                          f"{errors[key].message}", host=server, fix="see the file server's line"))
            continue
        state = ShareState.from_result(server, name, values[key])
        if not state.exists:
            check.problems.append(Problem("share.missing", f"VMs use \\\\{server}\\{name}, which does not exist",
                                          host=server, fix=f"hvauto smb share create {name} --server {server} "
                                          f"--path D:\\... --hosts {','.join(hyperv)}"))
            continue
        check.path = state.path
        fs = inv.host(server)
        for host, account in accounts.items():
            sid = state.resolved.get(account.lower(), "")
            share_ok, folder_ok = bool(sid) and state.share_full(sid), bool(sid) and state.folder_full(sid)
            comp = (computers or {}).get(host.lower())
            deleg = (None if computers is None else bool(comp and comp.delegates_to(f"cifs/{fs.name}")
                                                          and comp.delegates_to(f"cifs/{fs.fqdn}")))
            can = share_ok and folder_ok and deleg is not False
            check.hosts.append(ShareHost(host, share_ok, folder_ok, deleg, can))
            if not can:
                lacks = [w for w, ok in (("Full on the share", share_ok), ("Full Control on the folder", folder_ok),
                                         (f"delegation to cifs/{fs.name}", deleg is not False)) if not ok]
                fix = (f"hvauto smb share grant {name} --server {server} --hosts {host}" if not (share_ok and folder_ok)
                       else f"hvauto delegation grant {host} --to {server} --services cifs")
                blocking = any(v.split("/")[0] == host for v in check.vms)
                check.problems.append(Problem("share.access", f"{host} cannot use \\\\{server}\\{name}: it lacks "
                                              f"{', '.join(lacks)}" + ("" if blocking else
                                              f"; the share's VMs cannot move to {host}"),
                                              host=host, fix=fix, blocking=blocking))
    return out


# -- the whole ------------------------------------------------------------------------------------------

def doctor(session: Session, hosts: list[str] | None = None) -> DoctorReport:
    """Read every host (concurrently), then judge each host, each ordered pair and each share in use."""
    inv = session.inventory
    targets = inv.resolve(hosts) if hosts else list(inv.hosts)
    dc = ad_ops.ad_host(session)
    reads = list(dict.fromkeys([*targets, *([dc] if dc else [])]))
    group = session.fan_out(reads, lambda h: _check_host(session, h))
    checks: dict[str, HostCheck] = {}
    for h, outcome in group.outcomes.items():
        checks[h] = outcome.value if outcome.ok else HostCheck(h, list(inv.host(h).roles), stages=[
            Stage("script", False, outcome.error.message if outcome.error else "failed")])
    _clock(checks, dc)
    hyperv = [h for h in targets if "hyperv" in inv.host(h).roles]
    computers = None
    if dc is not None and checks[dc].reachable:
        try:
            computers = ad_ops.get_computers(session, hyperv, ad_host=dc)
        except HvautoError as exc:
            checks[dc].problems.append(Problem("ad", f"could not read the computer accounts: {exc.message}", host=dc,
                                               fix="check the ActiveDirectory module on the AD host"))
    pairs = _matrix(session, checks, computers, hyperv)
    shares = _check_shares(session, checks, computers, hyperv)
    return DoctorReport(hosts={h: checks[h] for h in reads}, pairs=pairs, shares=shares)


def doctor_steps(session: Session, hosts: list[str] | None = None) -> list[Step]:
    """``doctor --render``: one read per host, the AD read; the share reads follow from the VMs' paths."""
    inv = session.inventory
    targets = inv.resolve(hosts) if hosts else list(inv.hosts)
    dc = ad_ops.ad_host(session)
    steps = [Step(h, "doctor_host", {}, f"read {h}'s readiness facts (after the name, port and TLS probe)")
             for h in dict.fromkeys([*targets, *([dc] if dc else [])])]
    hyperv = [h for h in targets if "hyperv" in inv.host(h).roles]
    if dc is not None and hyperv:
        steps.append(Step(dc, "ad_computer_get", ad_ops.computer_params(hyperv), "read the hosts' delegation"))
    return steps


__all__ = ["DoctorReport", "HostCheck", "PairCheck", "ShareCheck", "doctor", "doctor_steps", "pair_problems"]


# -- one VM ----------------------------------------------------------------------------------------------

def where(path: str) -> str:
    """Where a file lives: ``local D:`` or ``share \\\\FS\\SHARE``."""
    if path.startswith("\\\\"):
        parts = [p for p in path.split("\\") if p]
        return f"share \\\\{parts[0]}\\{parts[1]}" if len(parts) >= 2 else f"share {path}"
    return f"local {path[:2].upper()}" if len(path) >= 2 and path[1] == ":" else "unknown"


def vm_moves(session: Session, source: str, vm: dict[str, Any]) -> list[PairCheck]:
    """The doctor's verdict for one VM (a ``vm_show`` answer) from ``source`` to each other Hyper-V host."""
    inv = session.inventory
    hyperv = inv.with_role("hyperv")
    dc = ad_ops.ad_host(session)
    reads = list(dict.fromkeys([*hyperv, *([dc] if dc else [])]))
    group = session.fan_out(reads, lambda h: _check_host(session, h))
    checks = {h: o.value for h, o in group.outcomes.items() if o.ok}
    src = checks.get(session.host(source).name)
    computers = None
    if dc is not None and dc in checks and checks[dc].reachable:
        try:
            computers = ad_ops.get_computers(session, [source], ad_host=dc)
        except HvautoError:
            computers = None
    one = {"name": vm["name"], "id": vm["id"], "state": vm["state"], "version": vm["version"], "path": vm["path"],
           "clustered": vm["clustered"], "memory_startup_bytes": vm["memory"]["startup_bytes"],
           "memory_assigned_bytes": vm["memory"]["assigned_bytes"], "disks": [d["path"] for d in vm["disks"]],
           "switches": [a["switch"] for a in vm["adapters"] if a["switch"]]}
    out = []
    for d in hyperv:
        if d.lower() == source.lower():
            continue
        dst = checks.get(d)
        if _unread({source: src, d: dst}):
            out.append(PairCheck(source, d, "unknown", [Problem("reach", f"{d} or {source} could not be read",
                                                                host=d, fix=f"hvauto doctor {source} {d}")],
                                 [vm["name"]]))
            continue
        assert src is not None and dst is not None and src.facts is not None and dst.facts is not None
        problems, _ = evaluate(vm_name=vm["name"], mode=SHARED_NOTHING, source=src.host, dest=d, storage_path=None,
                               src=_source_view(src.facts, one), dst=_dest_view(dst.facts), computers=computers,
                               source_os=src.os_version or versions.OLDEST, dest_fqdn=session.host(d).fqdn)
        out.append(PairCheck(source, d, "blocked" if any(p.blocking for p in problems) else "ready", problems,
                             [vm["name"]]))
    return out
