"""A spec across a group of hosts: plan every host, refuse the group on any blocking problem, apply, verify."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvauto import versions
from hvauto.errors import OutcomeUnknown, PreflightError, Problem, TransportError, VerifyError
from hvauto.ops import hosts_to_change
from hvauto.ops.fabric.hostplan import HostPlan, compute_plan
from hvauto.ops.fabric.iscsi import paths_per_target
from hvauto.ops.fabric.spec import FabricSpec, load_spec
from hvauto.results import Report
from hvauto.session import Session
from hvauto.steps import Step


@dataclass
class FabricReport(Report[HostPlan]):
    """Per-host plans (:class:`HostPlan`; a host that could not be read or applied carries its error)."""

    spec: str = ""
    action: str = "plan"
    applied: bool = False


def _switch_name_problems(states: dict[str, dict[str, Any]], spec: FabricSpec) -> list[Problem]:
    """VM-facing switch names must match across the group: else Compare-VM reports 33012 on a move."""
    out: list[Problem] = []
    if len(states) < 2:
        return out
    names_by_host = {h: {str(s["name"]).lower() for s in st.get("switches") or []} | {spec.switch.lower()}
                     for h, st in states.items()}
    for host, st in states.items():
        used = sorted({str(a["switch"]) for a in st.get("vm_adapters") or [] if a.get("switch")}, key=str.lower)
        for name in used:
            missing = [h for h in states if name.lower() not in names_by_host[h]]
            if missing:
                out.append(Problem(
                    check="switch-names", host=host, blocking=False, source="hvauto", message_id=33012,
                    message=f"VMs on {host} use switch {name!r}, which {' and '.join(missing)} "
                            f"{'lacks' if len(missing) == 1 else 'lack'}: a live migration there fails with the "
                            "host's check 33012 (\"Could not find Ethernet switch\")",
                    fix=f"give the VM switch the same name on every host of the group (rename on {', '.join(missing)})"))
    return out


def _targets(session: Session, host: str | list[str]) -> list[str]:
    return session.inventory.resolve([host] if isinstance(host, str) else list(host))


def plan(session: Session, *, host: str | list[str], spec: str | Path, force: bool = False,
         raise_failures: bool = True) -> FabricReport:
    """Validate the spec (no remote call), read every host once, and compute each host's plan.

    A host that cannot be read fails the call (HostsFailedError, every host's outcome inside) unless
    ``raise_failures`` is false: then its error is in ``report.errors`` and ``report.raise_if_failed()``
    raises later (the CLI prints the other hosts' plans first).
    """
    targets = _targets(session, host)
    fabric = load_spec(spec, hosts=targets)
    report = FabricReport(spec=fabric.path, action="plan", warnings=list(fabric.warnings), what_if=True)
    known = {n.lower() for n in session.inventory.hosts}
    for key in fabric.hosts:
        if key.lower() not in known:
            report.warnings.append(f"{fabric.path}: hosts.{key}: not a host in the inventory; its settings are unused")
    states: dict[str, dict[str, Any]] = {}

    def one(h: str) -> HostPlan:
        version = session.os_version(h)
        state = session.run(h, "fabric_get").data
        states[h] = state
        return compute_plan(fabric, h, version, state, force=force)

    report.add(session.fan_out(targets, one), HostPlan)
    for hp in report.hosts.values():
        report.problems.extend(hp.problems)
    report.problems.extend(_switch_name_problems(states, fabric))
    if raise_failures:
        report.raise_if_failed()
    return report


def find_out(host: str, spec: object) -> list[str]:
    return [f"hvauto fabric plan {host} --spec {spec}"]


def baseline_state(fabric: FabricSpec, host: str) -> dict[str, Any]:
    """A host as first built, for ``--render``: the spec's adapters present, up and free; no team, switch or vNIC."""
    names = [*fabric.adapters_for(host), *fabric.iscsi_for(host)]
    return {"adapters": [{"name": a, "description": "", "driver": "", "link_speed_bps": 0, "mac": "", "status": "Up",
                          "addresses": [], "gateway": None} for a in dict.fromkeys(names)],
            "teams": [], "switches": [], "vnics": [], "vm_adapters": []}


def plan_steps(session: Session, *, host: str | list[str], spec: str | Path) -> list[Step]:
    """``fabric plan --render``: the one read per host (the spec is validated first, as the real run does)."""
    targets = _targets(session, host)
    load_spec(spec, hosts=targets)
    return [Step(h, "fabric_get", {}, "read adapters, teams, switches, host vNICs and migration networks")
            for h in targets]


def apply_steps(session: Session, *, host: str | list[str], spec: str | Path, force: bool = False) -> list[Step]:
    """``fabric apply --render``: per host the read, the apply and the verifying read.

    The apply step is rendered with the plan for a host as first built (:func:`baseline_state`);
    the real run sends the plan computed from what ``fabric_get`` reads: only what differs.
    """
    targets = hosts_to_change(session.inventory, [host] if isinstance(host, str) else list(host))
    fabric = load_spec(spec, hosts=targets)
    steps = []
    for h in targets:
        version = session.known_version(h) or versions.OLDEST
        hp = compute_plan(fabric, h, version, baseline_state(fabric, h), force=force)
        steps += [
            Step(h, "fabric_get", {}, "read adapters, teams, switches, host vNICs and migration networks"),
            Step(h, "fabric_apply", hp.params, "apply the plan in a safe order (management vNIC up before any old "
                 "path goes)", when="when no host has a blocking problem and this host differs from the spec; "
                 "rendered as for a host with the spec's adapters and nothing else, the real run sends only what "
                 "differs"),
            Step(h, "fabric_get", {}, "verify: the host now matches the spec", when="after the apply"),
        ]
    return steps


def apply(session: Session, *, host: str | list[str], spec: str | Path, force: bool = False,
          what_if: bool = False, raise_failures: bool = True) -> FabricReport:
    """Plan, refuse on any blocking problem (nothing changed anywhere), apply per host, verify.

    A failed host fails the call unless ``raise_failures`` is false (see :func:`plan`).
    """
    hosts_to_change(session.inventory, [host] if isinstance(host, str) else list(host))
    report = plan(session, host=host, spec=spec, force=force)
    report.action = "apply"
    report.what_if = what_if
    report.raise_if_failed()
    blocking = [p for p in report.problems if p.blocking]
    if blocking:
        raise PreflightError(report.problems, what="fabric apply")
    if what_if or not report.changed:
        return report
    fabric = load_spec(spec, hosts=list(report.hosts))

    def one(h: str) -> HostPlan:
        hp = report.hosts[h]
        if not hp.changed:
            return hp
        try:
            result = session.run(h, "fabric_apply", hp.params)
        except TransportError as exc:
            if not exc.sent:
                raise
            # The answer was lost after the script went out: read the host back, never send the plan again.
            try:
                after = compute_plan(fabric, h, hp.version, session.run(h, "fabric_get").data, force=force)
            except TransportError as again:
                raise OutcomeUnknown(f"{h}: the answer to fabric_apply was lost ({exc.message}) and the host cannot "
                                     f"be read back ({again.message})", commands=find_out(h, spec)) from exc
            if after.changed:
                raise OutcomeUnknown(f"{h}: the answer to fabric_apply was lost ({exc.message}); the host does not "
                                     "match the spec (yet); nothing was sent again", commands=find_out(h, spec),
                                     hint="`fabric plan` shows what is left; `fabric apply` again plans from what "
                                     "it reads") from exc
            hp.steps = ["the answer was lost; the host read back matches the spec"]
            return hp
        hp.steps = list((result.data or {}).get("steps") or [])
        state = session.run(h, "fabric_get").data
        after = compute_plan(fabric, h, hp.version, state, force=force)
        if after.changed:
            left = "; ".join(f"{c.action} {c.target}" for c in after.changes)
            raise VerifyError(f"{h}: verify: the host still differs from the spec after apply: {left}")
        want = len(fabric.iscsi_paths(h))
        for target, paths in paths_per_target(fabric, state).items():
            if paths < want:
                raise VerifyError(f"{h}: verify: {target} has {paths} of {want} paths connected")
            hp.steps.append(f"verified: {target} over {paths} paths (MPIO)")
        return hp

    group = session.fan_out(list(report.hosts), one)
    for h, outcome in group.outcomes.items():
        if not outcome.ok:
            report.hosts[h].error = outcome.error
    report.applied = True
    if raise_failures:
        report.raise_if_failed()
    return report
