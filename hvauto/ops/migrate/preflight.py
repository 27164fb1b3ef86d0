"""Preflight: every Hyper-V prerequisite of a move, each host read over its own session.

One round trip per host, concurrently: the source (VM, disks, switches, migration settings, running
jobs and ``CheckVirtualSystemIsMigratable``), the destination (settings, listener addresses, switches,
versions, memory, space, leftovers) and AD (delegation). :func:`evaluate` is pure: the same facts give
the same problems, each with its fix.
"""

from __future__ import annotations

import ipaddress
import ntpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import (
    AmbiguousError,
    NotFoundError,
    Problem,
)
from hvauto.ops import ad as ad_ops
from hvauto.ops.migrate.model import (
    ACTIVE_STATES,
    CPU_BOUND_STATES,
    HOST_CHECK,
    LIVE,
    MIN_OS_FOR_VERSION,
    MOVABLE_STATES,
    SHARED_NOTHING,
    VERSIONS_BY_OS,
    accepts_version,
    version_key,
)
from hvauto.ops.migrate.steps import dest_preflight_params, source_preflight_params
from hvauto.ops.migrate.watch import moves
from hvauto.session import Session


@dataclass
class Preflight:
    source: dict[str, Any]
    dest: dict[str, Any]
    computers: dict[str, ad_ops.ADComputer] | None
    problems: list[Problem]
    vm: dict[str, Any] | None = None
    active_job: dict[str, Any] | None = None
    shares: dict[str, ShareFacts] = field(default_factory=dict)


@dataclass
class ShareFacts:
    """What the file server says of a share the move needs, for the destination's computer account."""

    server: str
    share: str
    #: The file server is a host of the inventory: hvauto read it over its own session.
    known: bool
    exists: bool = False
    share_full: bool = False
    folder_full: bool = False


def unc_root(path: str) -> tuple[str, str] | None:
    """``\\\\fs01\\VMs\\vm01`` -> (``fs01``, ``VMs``); None for a local path."""
    if not path.startswith("\\\\"):
        return None
    parts = [p for p in path[2:].split("\\") if p]
    return (parts[0].split(".")[0], parts[1]) if len(parts) >= 2 else None


def share_key(root: tuple[str, str]) -> str:
    return f"\\\\{root[0]}\\{root[1]}".lower()


def vm_files(vm: dict[str, Any]) -> list[dict[str, Any]]:
    """The VM's files as the source reported them (its disks alone from an older answer)."""
    files = vm.get("files")
    if files is None:
        files = [{"path": d["path"], "kind": "vhd", "size_bytes": d.get("file_size_bytes")} for d in vm.get("disks") or []]
    seen: set[tuple[str, str]] = set()
    out = []
    for f in files:
        key = (str(f["path"]).lower(), str(f["kind"]))
        if f.get("path") and key not in seen:
            seen.add(key)
            out.append(f)
    return out


#: The files a move with storage copies (and that need room at the destination).
COPIED = ("vhd", "parent", "checkpoint", "saved_state")


def _reachable(listeners: list[str], addresses: list[str]) -> list[str]:
    nets = []
    for a in addresses:
        try:
            nets.append(ipaddress.ip_interface(a).network)
        except ValueError:
            continue
    out = []
    for a in listeners:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            continue
        if any(ip.version == n.version and ip in n for n in nets):
            out.append(a)
    return out


def _version_fix(vm_name: str, version: str, source: str, source_os: str, dest: str, dest_os: str,
                 supported: list[str]) -> str:
    if supported and version_key(version) > max(version_key(v) for v in supported):
        need = MIN_OS_FOR_VERSION.get(version)
        return ("a configuration version cannot be lowered: move it to a host that runs "
                f"{versions.label(need) if need else 'a newer Windows Server'} or later")
    targets = [v for v in VERSIONS_BY_OS.get(source_os, ()) if v in supported and version_key(v) > version_key(version)]
    if targets:
        top = max(targets, key=version_key)
        return (f"Stop-VM {vm_name} on {source}, then Update-VMVersion {vm_name} (to {top}, which {dest} runs; an "
                "upgrade cannot be undone) and move it again")
    low = min(supported, key=version_key) if supported else "?"
    both = [os for os, vs in VERSIONS_BY_OS.items() if version in vs and low in vs]
    via = " or ".join(versions.label(o) for o in both) or "a release that runs both"
    return (f"move {vm_name} first to a host that runs both {version} and {low} ({via}), upgrade it there "
            f"(Update-VMVersion), then to {dest}")


def _host_fix(host: str, networks: list[str], *, enable: bool) -> str:
    subnet = networks[0] if networks else "<migration subnet>"
    return f"hvauto host migration {host} {'--enable ' if enable else ''}--auth kerberos --networks {subnet}"


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"


def evaluate(*, vm_name: str, mode: str, source: str, dest: str, storage_path: str | None,
             src: dict[str, Any], dst: dict[str, Any], computers: dict[str, ad_ops.ADComputer] | None,
             source_os: str, dest_fqdn: str, dest_os: str | None = None, shares: dict[str, ShareFacts] | None = None,
             session_auth: str = "kerberos") -> tuple[list[Problem], dict[str, Any] | None]:
    """Turn the reads into every problem at once, each with its cause and its fix (the rules: docs/fidelity.md)."""
    problems: list[Problem] = []
    shares = shares or {}

    def add(check: str, host: str, message: str, fix: str, *, blocking: bool = True, source_: str = "hvauto",
            message_id: int | None = None) -> None:
        problems.append(Problem(check=check, message=message, host=host, fix=fix, blocking=blocking, source=source_,
                                message_id=message_id))

    vms = src.get("vms") or []
    if not vms:
        raise NotFoundError(f"VM {vm_name!r} is not on {source}")
    if len(vms) > 1:
        raise AmbiguousError(f"{source} has {len(vms)} VMs named {vm_name!r}", hint="rename one (Rename-VM) first")
    vm = vms[0]
    smig, dmig = src["migration"], dst["migration"]
    networks = list(smig.get("networks") or []) or list(dmig.get("networks") or [])
    files = vm_files(vm)
    # A clustered VM's live move is the cluster's: the stand-alone migration settings, listeners and constrained
    # delegation do not apply to it.
    standalone = not (mode == LIVE and vm.get("clustered"))

    # -- source
    if vm["state"] not in MOVABLE_STATES:
        add("vm.state", source, f"{vm_name} is {vm['state']}: a VM in transition cannot be moved",
            f"wait until {vm_name} is Running or Off, then run the command again")
    if vm.get("clustered") and mode == SHARED_NOTHING:
        add("vm.clustered", source, f"{vm_name} is a clustered role: its storage is on a CSV",
            f"hvauto migrate --live {vm_name} {dest}")
    if vm.get("passthrough_disks"):
        add("vm.passthrough", source, f"{vm_name} has pass-through disk(s) {', '.join(vm['passthrough_disks'])}, "
            "which cannot be migrated", f"Remove-VMHardDiskDrive the pass-through disk on {source} (copy its data to a VHDX)")
    if standalone and not smig.get("enabled"):
        add("source.migration", source, f"live migration is disabled on {source}", _host_fix(source, networks, enable=True))
    if standalone and str(smig.get("auth_type")) == "CredSSP":
        add("source.auth", source, f"{source} authenticates migrations with CredSSP, which needs an interactive logon "
            "on the source (and fails under Credential Guard on 2025)", _host_fix(source, networks, enable=False))
    if mode == LIVE and standalone:
        local = [f for f in files if not str(f["path"]).startswith("\\\\")]
        if local:
            listed = ", ".join(f"{f['path']} ({f['kind'].replace('_', ' ')})" for f in local)
            add("vm.storage", source, f"{vm_name} uses files on {source}'s own storage "
                f"({listed}): a live move without storage "
                f"needs every file (configuration, disks and their parents, checkpoints, smart paging, ISO) on a "
                f"share {dest} can use", f"hvauto migrate --shared-nothing {vm_name} {dest}")
    if mode == SHARED_NOTHING:
        for f in files:
            if f["kind"] == "iso" and not str(f["path"]).startswith("\\\\"):
                add("vm.iso", source, f"{vm_name} has {f['path']} mounted from {source}'s own storage, which {dest} "
                    "cannot open (0xC03A0014)", f"Set-VMDvdDrive -VMName {vm_name} -Path $null on {source} (eject it), "
                    "or mount the ISO from a share")

    # -- destination
    if standalone and not dmig.get("enabled"):
        add("dest.migration", dest, f"live migration is disabled on {dest}: nothing listens for incoming moves",
            _host_fix(dest, networks, enable=True))
    if standalone and str(dmig.get("auth_type")) == "CredSSP":
        add("dest.auth", dest, f"{dest} authenticates migrations with CredSSP; use Kerberos with constrained "
            "delegation", _host_fix(dest, networks, enable=False))
    listeners = [str(a) for a in dst.get("listener_addresses") or []]
    if standalone and dmig.get("enabled") and not dmig.get("use_any_network") and not listeners:
        add("dest.listener", dest, f"{dest} has no address on its migration networks "
            f"({', '.join(dmig.get('networks') or []) or 'none listed'}): nothing listens for incoming moves",
            f"hvauto host migration {dest} --networks SUBNET (a subnet {dest} and {source} both have an address on)")
    elif standalone and listeners and src.get("addresses") and not _reachable(listeners, list(src["addresses"])):
        add("dest.listener.reach", dest, f"{dest} listens for moves only on {', '.join(listeners)}, and {source} has "
            f"no address on those networks ({', '.join(src['addresses'])}): the connection would be refused "
            "(0x8007274D)", f"give {source} an address on {dest}'s migration network "
            f"({', '.join(dmig.get('networks') or []) or 'its subnet'}), or hvauto host migration {dest} --networks "
            f"SUBNET (a subnet both have an address on)")
    if standalone and dmig.get("enabled") and dmig.get("use_any_network"):
        add("dest.networks", dest, f"{dest} accepts live migration on any network, the management network included "
            "(live-migration traffic is not encrypted)", _host_fix(dest, networks, enable=False), blocking=False)
    compare = src.get("check") or {}
    by_id = {int(i.get("message_id") or 0): i for i in compare.get("incompatibilities") or []}
    dest_switches = {s.lower() for s in dst.get("switches") or []}
    for sw in dict.fromkeys(vm.get("switches") or []):
        if sw and sw.lower() not in dest_switches:
            add("dest.switch", dest, f"{dest} has no virtual switch named {sw!r}, which {vm_name} is connected to "
                "(the host's check: Could not find Ethernet switch)",
                f"hvauto switch create {dest} {sw} ... (a switch of the same name, on the same network)",
                message_id=33012 if 33012 in by_id else None, source_=HOST_CHECK if 33012 in by_id else "hvauto")
    supported = [str(v) for v in dst.get("supported_versions") or []]
    dest_release = dest_os or versions.from_kernel_version(str(dst.get("os_version") or "")) or ""
    if not accepts_version(dest_release, supported, str(vm["version"])):
        add("dest.config_version", dest, f"{vm_name} has configuration version {vm['version']}; {dest} supports only "
            f"{', '.join(supported)}",
            _version_fix(vm_name, str(vm["version"]), source, source_os, dest, dest_release, supported))
    if (vm["state"] in CPU_BOUND_STATES and src.get("cpu_vendor") and dst.get("cpu_vendor")
            and src["cpu_vendor"] != dst["cpu_vendor"]):
        fix = (f"start {vm_name} and shut it down (or discard its saved state: Remove-VMSavedState), then move it "
               "while off" if vm["state"] == "Saved" else f"shut {vm_name} down (Stop-VM), then move it while off")
        add("dest.cpu", dest, f"{source} has {src['cpu_vendor']} processors and {dest} has {dst['cpu_vendor']}: a "
            f"{vm['state'].lower()} VM cannot cross CPU vendors (one that is off can)", fix)
    running = vm["state"] in ("Running", "Paused")
    dynamic = bool(vm.get("dynamic_memory"))
    need = int(vm.get("memory_assigned_bytes") or 0) if running and dynamic else int(vm["memory_startup_bytes"])
    need = need or int(vm["memory_startup_bytes"])
    if running and int(dst.get("memory_free_bytes") or 0) < need:
        what = "has assigned now (Dynamic Memory)" if dynamic else "needs"
        add("dest.memory", dest, f"{dest} has {_gib(int(dst['memory_free_bytes']))} of memory free; {vm_name} {what} "
            f"{_gib(need)}", f"free memory on {dest}, or stop {vm_name} and move it while off")
    copied = [f for f in files if f["kind"] in COPIED]
    disk_bytes = sum(int(f.get("size_bytes") or 0) for f in copied)
    path = dst.get("path") or {}
    if mode == SHARED_NOTHING and storage_path:
        if storage_path.startswith("\\\\"):
            pass  # the file server's free space: not visible from the destination (a second hop)
        elif not path.get("drive_exists"):
            add("dest.path", dest, f"{dest} has no drive for {storage_path}",
                f"choose a --storage-path on a volume {dest} has (its default is {dst.get('vm_path')})")
        elif path.get("free_bytes") is not None and int(path["free_bytes"]) < disk_bytes:
            kinds = sorted({f["kind"] for f in copied} - {"vhd"})
            add("dest.space", dest, f"{storage_path} has {_gib(int(path['free_bytes']))} free; {vm_name}'s disks"
                + (f" with their {', '.join(k.replace('_', ' ') + 's' for k in kinds)}" if kinds else "")
                + f" need {_gib(disk_bytes)}", f"free space on {dest} or choose another --storage-path")
        there = {str(p).lower() for p in path.get("files") or []}
        for f in copied:
            target = ntpath.join(storage_path, ntpath.basename(str(f["path"])))
            if f["kind"] != "saved_state" and target.lower() in there:
                add("dest.file_exists", dest, f"{target} already exists on {dest}: the move does not overwrite it",
                    f"remove or rename {target} on {dest}, or choose another --storage-path")
    same_id = [v for v in dst.get("vms") or [] if str(v.get("id") or "").lower() == str(vm["id"]).lower()]
    if same_id:
        other = same_id[0]
        add("dest.vm_id", dest, f"{dest} already has a VM with {vm_name}'s VMId {vm['id']} ({other['name']}, "
            f"{other['state']}, {other['path']})", f"remove that stale registration on {dest} (Remove-VM; its files "
            "stay), or give one of them a new ID (Export-VM, then Import-VM -Copy -GenerateNewId)")
    if dst.get("planned"):
        add("dest.planned_vm", dest, f"a failed or cancelled move left a planned VM of {vm_name} on {dest}",
            f"hvauto migrate --cancel {vm_name}")
    # -- shares the destination must use: the storage path (shared-nothing) or every file (live)
    needed: dict[str, str] = {}
    if mode == SHARED_NOTHING and storage_path and unc_root(storage_path):
        needed[share_key(unc_root(storage_path))] = storage_path  # type: ignore[arg-type]
    if mode == LIVE and standalone:
        for f in files:
            root = unc_root(str(f["path"]))
            if root:
                needed.setdefault(share_key(root), str(f["path"]))
    for key, example in needed.items():
        facts = shares.get(key)
        server, share = unc_root(example) or ("", "")
        account = f"{dest}$"
        if facts is None or not facts.known:
            add("dest.share", dest, f"{server} is not a host in the inventory: hvauto cannot read \\\\{server}\\{share} "
                f"to check that {dest}'s computer account may use it", f"add {server} to the inventory with roles = "
                "[\"fileserver\"], so that hvauto reads the share on it")
        elif not facts.exists:
            add("dest.share", dest, f"{server} has no share named {share!r} (for {example})",
                f"hvauto smb share create {share} --server {server} --path PATH --hosts {source},{dest}")
        elif not (facts.share_full and facts.folder_full):
            lacking = " and ".join(w for w, ok in (("the share", facts.share_full), ("the folder", facts.folder_full))
                                   if not ok)
            add("dest.share", dest, f"{dest}'s computer account ({account}) has no Full Control on {lacking} of "
                f"\\\\{server}\\{share}: {dest} could not open {example} (0x80070005)",
                f"hvauto smb share grant {share} --server {server} --hosts {dest}")
    for mid, item in by_id.items():
        if mid == 33012:
            continue
        add("host-check", dest, str(item.get("message")), f"see the message (reported by {HOST_CHECK} on the source)",
            source_=HOST_CHECK, message_id=mid or None)
    # -- Active Directory: constrained delegation on the source's computer account
    if not standalone:
        pass  # the cluster service moves its roles itself: no constrained delegation involved
    elif computers is None:
        add("delegation", source, "no AD host in the inventory: constrained delegation was not checked",
            "add the domain controller with roles = [\"ad\"] to the inventory", blocking=False)
    else:
        comp = computers.get(source.lower())
        fix = f"hvauto delegation grant {source} --to {dest}"
        if comp is None or not comp.found:
            add("delegation", source, f"{source} has no computer account in AD", f"join {source} to the domain")
        else:
            # hvauto gives MigrateVirtualSystemToHost the destination's FQDN: the ticket asked for is for the FQDN's
            # SPNs, so those are what must be delegated (the short-name ones are not needed).
            target = dest_fqdn or dest
            spns = [f"{ad_ops.MIGRATION_SERVICE}/{target}"] + ([f"cifs/{target}"] if mode == SHARED_NOTHING else [])
            missing = [s for s in spns if not comp.delegates_to(s)]
            if missing:
                add("delegation", source, f"{source} may not delegate to {dest} for: {', '.join(missing)} "
                    "(Kerberos constrained delegation on the source's computer account)", fix)
            if not comp.trusted_to_auth_for_delegation:
                # Every session hvauto opens reaches the source through WinRM, on every version: "Kerberos only"
                # has no usable ticket there [TC-KCD].
                add("delegation.protocol_transition", source, f"{source}'s delegation is \"Kerberos only\"; a move "
                    "started through a remote session needs \"use any authentication protocol\" "
                    "(TrustedToAuthForDelegation)", fix)
        if session_auth.lower() == "ntlm":
            add("session.auth", source, f"hvauto's session to {source} uses {session_auth}: it carries no Kerberos "
                "ticket, so the move relies on protocol transition on the source's delegation",
                f"use auth = \"kerberos\" for {source} in the inventory", blocking=False)
    # Last, so that it can tell whether the problems above explain it.
    if compare.get("error") and standalone:
        rec = compare["error"]
        explained = any(p.blocking for p in problems)
        add("host-check", source, f"{HOST_CHECK} could not check the move: {rec.get('message')}",
            f"fix the problems listed here; {HOST_CHECK} then runs" if explained else
            f"check that {dest} is reachable from {source} on the migration network",
            source_=HOST_CHECK)

    return problems, vm


def preflight(session: Session, *, vm: str, vm_id: str, source: str, dest: str, storage_path: str | None,
              mode: str, dest_facts: dict[str, Any] | None = None) -> Preflight:
    """The three reads, concurrently (one round trip per host), then every problem at once.

    ``dest_facts``: the destination's answer already read (for its default VM path); it is not asked again.
    """
    dest_cfg = session.host(dest)
    dest_given = dest_cfg.fqdn
    ad_host = ad_ops.ad_host(session)
    steps: dict[str, Callable[[], Any]] = {
        source: lambda: session.run(source, "migrate_source_preflight",
                                    source_preflight_params(vm, dest_given, storage_path, mode)).data,
    }
    if dest_facts is None:
        steps[dest] = lambda: session.run(dest, "migrate_dest_preflight",
                                          dest_preflight_params(vm, vm_id, storage_path)).data
    if ad_host is not None:
        steps[ad_host] = lambda: ad_ops.get_computers(session, [source], ad_host=ad_host)
    group = session.fan_out(list(steps), lambda h: steps[session.host(h).name]())
    group.raise_if_failed()
    values = group.values()
    src = values[session.host(source).name]
    dst = dest_facts if dest_facts is not None else values[dest_cfg.name]
    computers = values.get(session.host(ad_host).name) if ad_host is not None else None
    shares = read_shares(session, dest=dest_cfg.name, mode=mode, storage_path=storage_path, src=src)
    problems, found = evaluate(vm_name=vm, mode=mode, source=source, dest=dest, storage_path=storage_path, src=src,
                               dst=dst, computers=computers, source_os=session.os_version(source),
                               dest_fqdn=dest_given, dest_os=session.os_version(dest), shares=shares,
                               session_auth=session.host(source).auth)
    active = next((j for j in moves(list(src.get("jobs") or [])) if int(j["job_state"]) in ACTIVE_STATES), None)
    return Preflight(source=src, dest=dst, computers=computers, problems=problems, vm=found, active_job=active,
                     shares=shares)


def read_shares(session: Session, *, dest: str, mode: str, storage_path: str | None,
                src: dict[str, Any]) -> dict[str, ShareFacts]:
    """Each share the destination must use, read on its file server over hvauto's own session (never from the
    destination: that would be a second hop), for the destination's computer account."""
    from hvauto.ops.smb.acl import read_share

    roots: dict[str, tuple[str, str]] = {}
    if mode == SHARED_NOTHING and storage_path and unc_root(storage_path):
        root = unc_root(storage_path)
        assert root is not None
        roots[share_key(root)] = root
    vms = src.get("vms") or []
    if mode == LIVE and len(vms) == 1 and not vms[0].get("clustered"):
        for f in vm_files(vms[0]):
            root = unc_root(str(f["path"]))
            if root:
                roots.setdefault(share_key(root), root)
    if not roots:
        return {}
    known = {h.lower(): h for h in session.inventory.hosts}
    account = f"{session.inventory.netbios}\\{dest}$"
    out = {k: ShareFacts(server=r[0], share=r[1], known=r[0].lower() in known) for k, r in roots.items()}
    readable = [k for k, f in out.items() if f.known]

    def read(key: str) -> ShareFacts:
        facts = out[key]
        state = read_share(session, known[facts.server.lower()], facts.share, accounts=[account])
        sid = state.resolved.get(account.lower(), "")
        facts.exists = state.exists and state.folder_exists
        facts.share_full = bool(sid) and state.share_full(sid)
        facts.folder_full = bool(sid) and state.folder_full(sid)
        return facts

    # One round trip per share, the file servers concurrently (a server's shares one after another).
    by_server: dict[str, list[str]] = {}
    for key in readable:
        by_server.setdefault(known[out[key].server.lower()], []).append(key)
    group = session.fan_out(list(by_server), lambda h: [read(k) for k in by_server[session.host(h).name]])
    group.raise_if_failed()
    return out
