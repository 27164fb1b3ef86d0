"""Empty a stand-alone Hyper-V host: place every VM by free memory and space, move them within the limits.

Stand-alone hosts have no drain. hvauto reads the source's VMs and each candidate
destination's capacity (one round trip per host, concurrently) and AD delegation, places
each VM (largest memory first) on the eligible host with the most free memory that still
has room, then runs :func:`hvauto.ops.migrate.migrate` for each VM - shared-nothing, or live
when its storage is on a share - never more at once than ``--max-parallel`` or either host's
``MaximumVirtualMachineMigrations``/``MaximumStorageMigrations``. One VM's failure does not
stop the others; the result has an outcome per VM.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.errors import HostOutcome, HostsFailedError, HvautoError, PreflightError, Problem, ValidationError
from hvauto.ops import ad as ad_ops
from hvauto.ops import migrate as mig
from hvauto.ops import vms as vm_ops
from hvauto.ops.migrate import steps as mig_steps
from hvauto.results import Change, count
from hvauto.session import Session
from hvauto.steps import Step, ph


@dataclass
class VMOutcome:
    vm: str
    #: None for a VM no destination was found for.
    dest: str | None
    mode: str
    status: str  # planned (what-if), moved, failed, skipped
    detail: str = ""
    elapsed_seconds: float = 0.0
    bytes_moved: int = 0
    #: Why a VM was skipped (a PreflightError: nothing was tried) or failed.
    error: HvautoError | None = None
    source: str = ""

    @property
    def changes(self) -> list[Change]:
        if self.status not in ("planned", "moved") or self.detail == "already there":
            return []
        return [Change("move", f"VM {self.vm}", f"{self.source} -> {self.dest} ({self.mode})")]


@dataclass
class EvacuateResult:
    """Per VM outcomes. Its exit code (:func:`hvauto.errors.exit_code`): 0 every VM moved (or nothing to
    move); in what-if, 10 when a VM cannot be placed; else each VM that stayed counts as failed (9 when
    others moved, else their own code: 10 for VMs no destination fits)."""

    host: str
    targets: list[str]
    what_if: bool
    vms: list[VMOutcome] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)
    max_parallel: int | None = None

    @property
    def changes(self) -> list[Change]:
        return [c for v in self.vms for c in v.changes]

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def blocking(self) -> list[Problem]:
        if not self.what_if:
            return []
        return [p for v in self.vms if isinstance(v.error, PreflightError) for p in v.error.problems]

    @property
    def total(self) -> int:
        return len(self.vms)

    def failures(self) -> dict[str, HvautoError]:
        if self.what_if:
            return {}
        return {v.vm: v.error for v in self.vms if v.error is not None}

    def raise_if_failed(self) -> None:
        failed = self.failures()
        if failed:
            exc = HostsFailedError({v.vm: HostOutcome(v.vm, v.error is None, v.error) for v in self.vms})
            exc.message = (f"{self.host}: {len(failed)} of {count(len(self.vms), 'VM')} not moved: "
                           + "; ".join(f"{v.vm} ({v.status}: {v.detail})" for v in self.vms if v.error is not None))
            raise exc
        if self.blocking:
            raise PreflightError(self.blocking, what=f"evacuate {self.host}")


def _skipped(vm: str, mode: str, why: str, host: str) -> VMOutcome:
    return VMOutcome(vm, None, mode, "skipped", why, source=host, error=PreflightError(
        [Problem("placement", f"{vm}: {why}", host=host)], what=f"placing {vm}"))


@dataclass
class Capacity:
    host: str
    memory_free: int
    space_free: int | None
    vm_path: str
    switches: set[str]
    versions: list[str]
    problems: list[str]
    limit: int


class Slots:
    """Per-host migration slots plus a global cap; a move holds its source's and destination's slot."""

    def __init__(self, limits: dict[str, int], max_parallel: int | None) -> None:
        self.limits = {h.lower(): max(1, n) for h, n in limits.items()}
        self.max_parallel = max_parallel
        self.busy: dict[str, int] = {}
        self.total = 0
        self.cond = threading.Condition()

    def _free(self, hosts: list[str]) -> bool:
        if self.max_parallel is not None and self.total >= self.max_parallel:
            return False
        return all(self.busy.get(h.lower(), 0) < self.limits.get(h.lower(), 2) for h in hosts)

    def acquire(self, hosts: list[str], stop: threading.Event | None = None) -> None:
        with self.cond:
            while not self._free(hosts):
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
                self.cond.wait(timeout=0.2)
            for h in hosts:
                self.busy[h.lower()] = self.busy.get(h.lower(), 0) + 1
            self.total += 1

    def release(self, hosts: list[str]) -> None:
        with self.cond:
            for h in hosts:
                self.busy[h.lower()] -= 1
            self.total -= 1
            self.cond.notify_all()


def _capacity(host: str, data: dict[str, Any], source: str, comp: ad_ops.ADComputer | None, source_os: str,
              fqdn: str) -> Capacity:
    m = data["migration"]
    problems = []
    if not m.get("enabled"):
        problems.append("live migration disabled")
    if str(m.get("auth_type")) == "CredSSP":
        problems.append("CredSSP authentication")
    if comp is not None:
        missing = [s for s in ad_ops.migration_spns(host, fqdn) if not comp.delegates_to(s)]
        if missing:
            problems.append(f"no delegation from {source} (hvauto delegation grant {source} --to {host})")
        elif versions.index(source_os) >= versions.index("2016") and not comp.trusted_to_auth_for_delegation:
            problems.append(f"{source}'s delegation is Kerberos only")
    path = data.get("path") or {}
    return Capacity(
        host=host,
        memory_free=int(data.get("memory_free_bytes") or 0),
        space_free=int(path["free_bytes"]) if path.get("free_bytes") is not None else None,
        vm_path=str(data.get("vm_path") or ""),
        switches={s.lower() for s in data.get("switches") or []},
        versions=list(data.get("supported_versions") or []),
        problems=problems,
        limit=min(int(m.get("max_vm_migrations") or 2), int(m.get("max_storage_migrations") or 2)),
    )


def place(vms: list[vm_ops.VM], caps: list[Capacity]) -> list[tuple[vm_ops.VM, Capacity | None, str]]:
    """Each VM (largest memory first) on the eligible host with the most free memory that has room for it."""
    out: list[tuple[vm_ops.VM, Capacity | None, str]] = []
    for vm in sorted(vms, key=lambda v: (-v.memory_startup, v.name.lower())):
        # A running VM holds what it has assigned now (Dynamic Memory may be above its startup memory).
        needs_memory = (vm.memory_assigned or vm.memory_startup) if vm.state in ("Running", "Paused") else 0
        shared = bool(vm.disks) and all(d.path.startswith("\\\\") for d in vm.disks)
        needs_space = 0 if shared else vm.disk_bytes
        reasons: list[str] = []
        fit: list[Capacity] = []
        for c in caps:
            why = list(c.problems)
            missing = [s for s in vm.switches if s and s.lower() not in c.switches]
            if missing:
                why.append(f"no switch {', '.join(missing)}")
            if vm.version not in c.versions:
                why.append(f"configuration version {vm.version} unsupported")
            if c.memory_free < needs_memory:
                why.append("not enough free memory")
            if c.space_free is not None and c.space_free < needs_space:
                why.append("not enough free space")
            if why:
                reasons.append(f"{c.host}: {'; '.join(why)}")
            else:
                fit.append(c)
        if not fit:
            out.append((vm, None, "no destination fits: " + " | ".join(reasons)))
            continue
        best = max(fit, key=lambda c: (c.memory_free, c.space_free or 0))
        best.memory_free -= needs_memory
        if best.space_free is not None:
            best.space_free -= needs_space
        out.append((vm, best, ""))
    return out


#: ``migrate_dest_preflight`` for a host's capacity and limits only (no VM, no path).
CAPACITY = mig_steps.dest_preflight_params("", "", None)


def _validate(session: Session, host: str, to: list[str] | None, max_parallel: int | None) -> tuple[str, list[str]]:
    problems: list[str] = []
    hyperv = session.inventory.with_role("hyperv")
    try:
        host = session.host(host).name
    except HvautoError as exc:
        raise ValidationError([exc.message]) from None
    if host not in hyperv:
        problems.append(f"{host} is not a Hyper-V host")
    targets: list[str] = []
    for t in to if to is not None else [h for h in hyperv if h.lower() != host.lower()]:
        try:
            name = session.host(t).name
        except HvautoError as exc:
            problems.append(f"--to: {exc.message}")
            continue
        if name not in hyperv:
            problems.append(f"--to: {name} is not a Hyper-V host")
        elif name.lower() == host.lower():
            problems.append(f"--to: {name} is the host being evacuated")
        elif name not in targets:
            targets.append(name)
    if not targets and not problems:
        problems.append("no destination hosts: give --to H1,H2")
    if max_parallel is not None and max_parallel < 1:
        problems.append("--max-parallel must be at least 1")
    if problems:
        raise ValidationError(problems)
    return host, targets


def evacuate_steps(session: Session, *, host: str, to: list[str] | None = None,
                   max_parallel: int | None = None) -> list[Step]:
    """``evacuate --render``: the reads that place the VMs, then each destination's move steps for a placed VM."""
    host, targets = _validate(session, host, to, max_parallel)
    steps = [Step(host, "vm_list", vm_ops.list_params([]), "read the VMs to move")]
    steps += [Step(t, "migrate_dest_preflight", CAPACITY, "read the destination's free memory, space and "
                   "migration limits") for t in targets]
    ad_host = ad_ops.ad_host(session)
    if ad_host is not None:
        steps.append(Step(ad_host, "ad_computer_get", ad_ops.computer_params([host]),
                          f"read {host}'s delegation in Active Directory"))
    steps.append(Step(host, "migrate_dest_preflight", CAPACITY, "read the source's migration limits"))
    for t in targets:
        vm = ph(f"VM placed on {t}")
        for s in mig_steps.move_steps(session, vm=vm, dest=t, source=host):
            steps.append(Step(s.host, s.template, s.params, s.purpose, repeat=s.repeat,
                              when=f"for each VM placed on {t} (a live move when all its disks are on shares)"
                              + (f", {s.when}" if s.when else "")))
    return steps


def evacuate(
    session: Session,
    *,
    host: str,
    to: list[str] | None = None,
    max_parallel: int | None = None,
    what_if: bool = False,
    on_progress: mig.ProgressFn | None = None,
    poll_interval: float = 1.0,
    on_outcome: Callable[[VMOutcome], None] | None = None,
) -> EvacuateResult:
    """``hvauto evacuate HOST``: every VM off HOST; one VM's failure does not stop the others."""
    host, targets = _validate(session, host, to, max_parallel)

    ad_host = ad_ops.ad_host(session)
    reads: dict[str, Callable[[], Any]] = {host: lambda: vm_ops.list_on(session, host)}

    def capacity_of(target: str) -> Callable[[], Any]:
        return lambda: session.run(target, "migrate_dest_preflight", CAPACITY).data

    for t in targets:
        reads[t] = capacity_of(t)
    if ad_host is not None:
        reads[ad_host] = lambda: ad_ops.get_computers(session, [host], ad_host=ad_host)
    group = session.fan_out(list(reads), lambda h: reads[session.host(h).name]())
    group.raise_if_failed()
    values = group.values()
    vms: list[vm_ops.VM] = values[host]
    comp = values[session.host(ad_host).name].get(host.lower()) if ad_host is not None else None
    source_os = session.os_version(host)
    src_facts = session.run(host, "migrate_dest_preflight", CAPACITY).data
    src_limit = min(int(src_facts["migration"]["max_vm_migrations"]), int(src_facts["migration"]["max_storage_migrations"]))
    caps = [_capacity(t, values[t], host, comp, source_os, session.host(t).fqdn) for t in targets]
    result = EvacuateResult(host=host, targets=targets, what_if=what_if, max_parallel=max_parallel,
                            limits={host: src_limit, **{c.host: c.limit for c in caps}})
    placements = place([v for v in vms if not v.clustered], caps)
    for v in vms:
        if v.clustered:
            result.vms.append(_skipped(v.name, mig.LIVE, "clustered role: drain the node with Suspend-ClusterNode "
                                       "-Drain", host))
    lock = threading.Lock()
    stop = threading.Event()
    slots = Slots(result.limits, max_parallel)

    def run_one(vm: vm_ops.VM, cap: Capacity) -> VMOutcome:
        live = bool(vm.disks) and all(d.path.startswith("\\\\") for d in vm.disks)
        mode = mig.LIVE if live else mig.SHARED_NOTHING
        hosts = [host, cap.host]
        slots.acquire(hosts, stop)
        started = time.monotonic()
        try:
            res = mig.migrate(session, vm=vm.name, dest=cap.host, source=host, live=live, on_progress=on_progress,
                              poll_interval=poll_interval, should_stop=stop.is_set)
            out = VMOutcome(vm.name, cap.host, mode, "moved", "already there" if res.already_done else
                            f"verified on {cap.host}", res.elapsed_seconds, res.bytes_moved, source=host)
        except HvautoError as exc:
            out = VMOutcome(vm.name, cap.host, mode, "failed", str(exc).splitlines()[0] + (
                f" ({exc.hint})" if exc.hint else ""), time.monotonic() - started, error=exc, source=host)
        except KeyboardInterrupt:
            stop.set()  # before the slot is released: no waiting move may take it and start
            raise
        finally:
            slots.release(hosts)
        if on_outcome is not None:
            with lock:
                on_outcome(out)
        return out

    todo: list[tuple[vm_ops.VM, Capacity]] = []
    for vm, cap, why in placements:
        if cap is None:
            result.vms.append(_skipped(vm.name, mig.SHARED_NOTHING, why, host))
        elif what_if:
            live = bool(vm.disks) and all(d.path.startswith("\\\\") for d in vm.disks)
            result.vms.append(VMOutcome(vm.name, cap.host, mig.LIVE if live else mig.SHARED_NOTHING, "planned",
                                        f"{vm.memory_startup / 1024**3:.1f} GiB memory, "
                                        f"{vm.disk_bytes / 1024**3:.1f} GiB disk", source=host))
        else:
            todo.append((vm, cap))
    if todo:
        workers = min(len(todo), sum(result.limits.values()), max_parallel or len(todo))
        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hvauto-evacuate")
        try:
            futures = [pool.submit(run_one, vm, cap) for vm, cap in todo]
            result.vms.extend(f.result() for f in futures)
        except KeyboardInterrupt:
            # Ctrl-C: start no more moves and stop watching; the moves already running go on on the hosts.
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    order = {v.name: i for i, v in enumerate(vms)}
    result.vms.sort(key=lambda o: order.get(o.vm, 0))
    return result
