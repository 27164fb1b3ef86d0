"""Host settings: live migration (enabled, authentication, networks, performance option, concurrency).

Idempotent: read the host's settings (``host_facts``), send only what differs
(``host_migration_set``), and report the settings the host returns. CredSSP draws a warning
everywhere and is refused on Windows Server 2025, where Credential Guard (on by default on
domain members) breaks CredSSP-based live migration.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from hvauto import versions
from hvauto.errors import PreflightError, Problem, ValidationError, VerifyError
from hvauto.ops import hosts_to_change
from hvauto.ops.hosts import MigrationSettings, facts
from hvauto.results import Change, HostResult, Report
from hvauto.session import Session
from hvauto.steps import Step, ph

AUTH = {"kerberos": "Kerberos", "credssp": "CredSSP"}
PERFORMANCE = {"tcpip": "TCPIP", "compression": "Compression", "smb": "SMB"}
CREDSSP_WARNING = ("CredSSP needs an interactive logon on the source host for every move and fails where Credential "
                   "Guard is on; prefer Kerberos with constrained delegation")


@dataclass
class HostMigration(HostResult):
    """One host's result, with its OS version and the settings it reports (after the change, if any)."""

    version: str = ""
    settings: MigrationSettings | None = None


#: Per-host :class:`HostMigration` results.
MigrationReport = Report[HostMigration]


def _settings(data: dict[str, Any]) -> MigrationSettings:
    return MigrationSettings(
        enabled=bool(data["enabled"]), auth_type=str(data["auth_type"]), use_any_network=bool(data["use_any_network"]),
        networks=list(data.get("networks") or []), max_vm_migrations=int(data["max_vm_migrations"]),
        max_storage_migrations=int(data["max_storage_migrations"]), performance_option=data.get("performance_option"))


def _check_options(enable: bool | None, auth: str | None, networks: list[str] | None, use_any_network: bool,
                   performance: str | None, max_vm: int | None, max_storage: int | None) -> list[str]:
    problems: list[str] = []
    if (enable is None and auth is None and networks is None and not use_any_network and performance is None
            and max_vm is None and max_storage is None):
        problems.append("no setting given: name at least one of --enable/--disable, --auth, --networks, "
                        "--use-any-network, --performance, --max-vm, --max-storage (`hvauto host show HOST` "
                        "shows the current ones)")
    if auth is not None and auth.lower() not in AUTH:
        problems.append(f"--auth: {auth!r} is not one of {', '.join(AUTH)}")
    if performance is not None and performance.lower() not in PERFORMANCE:
        problems.append(f"--performance: {performance!r} is not one of {', '.join(PERFORMANCE)}")
    for i, n in enumerate(networks or []):
        try:
            ipaddress.ip_network(n, strict=False)
        except ValueError:
            problems.append(f"--networks: item {i + 1} {n!r} is not a subnet (10.0.50.0/24)")
        else:
            if "/" not in n:
                problems.append(f"--networks: item {i + 1} {n!r} needs a prefix length (10.0.50.0/24)")
    if networks is not None and use_any_network:
        problems.append("--networks and --use-any-network contradict each other: named networks only apply when "
                        "UseAnyNetworkForMigration is false")
    if networks is not None and not networks:
        problems.append("--networks: give at least one subnet")
    for opt, value in (("--max-vm", max_vm), ("--max-storage", max_storage)):
        if value is not None and not 1 <= value <= 64:
            problems.append(f"{opt}: {value} is out of range (1-64)")
    return problems


def _prepare(session: Session, host: str | list[str], enable: bool | None, auth: str | None,
             networks: list[str] | None, use_any_network: bool, performance: str | None, max_vm: int | None,
             max_storage: int | None) -> tuple[list[str], str | None, str | None, list[str] | None]:
    """Every input problem, and the refusals the inventory's OS versions already decide: before any remote call."""
    bad = _check_options(enable, auth, networks, use_any_network, performance, max_vm, max_storage)
    if bad:
        raise ValidationError(bad, what="migration settings")
    targets = hosts_to_change(session.inventory, [host] if isinstance(host, str) else list(host))
    want_auth = AUTH[auth.lower()] if auth else None
    want_perf = PERFORMANCE[performance.lower()] if performance else None
    want_nets = [str(ipaddress.ip_network(n, strict=False)) for n in networks] if networks is not None else None
    early: list[Problem] = []
    for h in targets:
        known = session.known_version(h)
        if known is not None:
            early += _version_problems(h, known, want_auth, want_perf)
    if early:
        raise PreflightError(early, what="host migration")
    return targets, want_auth, want_perf, want_nets


def migration_steps(session: Session, *, host: str | list[str], enable: bool | None = None, auth: str | None = None,
                    networks: list[str] | None = None, use_any_network: bool = False, performance: str | None = None,
                    max_vm: int | None = None, max_storage: int | None = None) -> list[Step]:
    """``host migration --render``: per host, the read and the change with every setting given.

    The real run sends only the settings that differ from what ``host_facts`` reads (none: no change step).
    """
    targets, want_auth, want_perf, want_nets = _prepare(session, host, enable, auth, networks, use_any_network,
                                                        performance, max_vm, max_storage)
    params: dict[str, Any] = {}
    if enable is not None:
        params["Enable" if enable else "Disable"] = True
    if want_auth:
        params["AuthType"] = want_auth
    if want_nets is not None:
        params["AddNetwork"] = want_nets
        params["RemoveNetwork"] = [ph("migration networks not in --networks")]
        params["UseAnyNetwork"] = False
    if use_any_network:
        params["UseAnyNetwork"] = True
    if want_perf:
        params["PerformanceOption"] = want_perf
    if max_vm is not None:
        params["MaxVmMigrations"] = max_vm
    if max_storage is not None:
        params["MaxStorageMigrations"] = max_storage
    steps = []
    for h in targets:
        steps.append(Step(h, "host_facts", {}, "read the host's OS and live-migration settings"))
        if params:
            steps.append(Step(h, "host_migration_set", params, "set the live-migration settings (Set-VMHost, "
                              "Add/Remove-VMMigrationNetwork), then read them back",
                              when="for the settings that differ from what host_facts read; no step when none do"))
    return steps


def migration(
    session: Session,
    *,
    host: str | list[str],
    enable: bool | None = None,
    auth: str | None = None,
    networks: list[str] | None = None,
    use_any_network: bool = False,
    performance: str | None = None,
    max_vm: int | None = None,
    max_storage: int | None = None,
    what_if: bool = False,
    raise_failures: bool = True,
) -> MigrationReport:
    """Bring each host's live-migration settings to the values given (only those); a re-run changes nothing.

    A failed host fails the call (HostsFailedError) unless ``raise_failures`` is false: then its error
    is in its ``report.hosts`` entry and ``report.raise_if_failed()`` raises once the caller has shown the rest.
    """
    targets, want_auth, want_perf, want_nets = _prepare(session, host, enable, auth, networks, use_any_network,
                                                        performance, max_vm, max_storage)
    report = MigrationReport(what_if=what_if)

    def one(h: str) -> HostMigration:
        f = facts(session, h)
        version = f.os_version or versions.OLDEST
        problems = _version_problems(h, version, want_auth, want_perf)
        if f.migration is None:
            problems.append(Problem(check="hyperv", host=h, message=f"{h} has no Hyper-V role"))
        if problems:
            raise PreflightError(problems, what=f"{h}: host migration")
        cur = f.migration
        assert cur is not None
        params: dict[str, Any] = {}
        changes: list[Change] = []
        if enable is True and not cur.enabled:
            params["Enable"] = True
            changes.append(Change("enable", "live migration"))
        if enable is False and cur.enabled:
            params["Disable"] = True
            changes.append(Change("disable", "live migration"))
        if want_auth and cur.auth_type.lower() != want_auth.lower():
            params["AuthType"] = want_auth
            changes.append(Change("set", "authentication", f"{cur.auth_type} -> {want_auth}"))
        if want_nets is not None:
            have = [str(ipaddress.ip_network(n, strict=False)) for n in cur.networks]
            add = [n for n in want_nets if n not in have]
            remove = [n for n in have if n not in want_nets]
            if add:
                params["AddNetwork"] = add
                changes += [Change("add", "migration network", n) for n in add]
            if remove:
                params["RemoveNetwork"] = remove
                changes += [Change("remove", "migration network", n) for n in remove]
            if cur.use_any_network:
                params["UseAnyNetwork"] = False
                changes.append(Change("set", "use any network", "true -> false (only the migration networks)"))
        if use_any_network and not cur.use_any_network:
            params["UseAnyNetwork"] = True
            changes.append(Change("set", "use any network", "false -> true"))
        if want_perf and (cur.performance_option or "").lower() != want_perf.lower():
            params["PerformanceOption"] = want_perf
            changes.append(Change("set", "performance option", f"{cur.performance_option} -> {want_perf}"))
        if max_vm is not None and cur.max_vm_migrations != max_vm:
            params["MaxVmMigrations"] = max_vm
            changes.append(Change("set", "simultaneous live migrations", f"{cur.max_vm_migrations} -> {max_vm}"))
        if max_storage is not None and cur.max_storage_migrations != max_storage:
            params["MaxStorageMigrations"] = max_storage
            changes.append(Change("set", "simultaneous storage migrations",
                                  f"{cur.max_storage_migrations} -> {max_storage}"))
        warnings = []
        if (want_auth or cur.auth_type) == "CredSSP":
            warnings.append(f"{h}: {CREDSSP_WARNING}")
        if (enable or cur.enabled) and not (want_nets or cur.networks) and (use_any_network or cur.use_any_network):
            warnings.append(f"{h}: live migration may use any network, including management; name migration "
                            "networks with --networks")
        if not params or what_if:
            return HostMigration(h, changes=changes, warnings=warnings, version=version, settings=cur)
        after = _settings(session.run(h, "host_migration_set", params).data)
        left = _differences(after, enable, want_auth, want_nets, use_any_network, want_perf, max_vm, max_storage)
        if left:
            raise VerifyError(f"{h}: verify: the host reports different settings after the change: {'; '.join(left)}")
        return HostMigration(h, changes=changes, warnings=warnings, version=version, settings=after)

    report.add(session.fan_out(targets, one), HostMigration)
    if raise_failures:
        report.raise_if_failed()
    return report


def _differences(s: MigrationSettings, enable: bool | None, auth: str | None, nets: list[str] | None,
                 use_any: bool, perf: str | None, max_vm: int | None, max_storage: int | None) -> list[str]:
    out = []
    if enable is not None and s.enabled != enable:
        out.append(f"enabled is {s.enabled}")
    if auth and s.auth_type.lower() != auth.lower():
        out.append(f"authentication is {s.auth_type}")
    if nets is not None and (s.use_any_network or sorted(s.networks) != sorted(nets)):
        out.append(f"networks are {', '.join(s.networks) or 'none'} (any network: {s.use_any_network})")
    if use_any and not s.use_any_network:
        out.append("any network is off")
    if perf and (s.performance_option or "").lower() != perf.lower():
        out.append(f"performance option is {s.performance_option}")
    if max_vm is not None and s.max_vm_migrations != max_vm:
        out.append(f"max VM migrations is {s.max_vm_migrations}")
    if max_storage is not None and s.max_storage_migrations != max_storage:
        out.append(f"max storage migrations is {s.max_storage_migrations}")
    return out


def _version_problems(host: str, version: str, auth: str | None, performance: str | None) -> list[Problem]:
    out: list[Problem] = []
    if auth == "CredSSP" and versions.at_least(version, "2025"):
        out.append(Problem(
            check="auth", host=host,
            message=f"CredSSP live migration is refused on {versions.label(version)}: Credential Guard, on by default "
                    "on domain-joined 2025 servers, breaks it",
            fix="use --auth kerberos and constrained delegation (hvauto delegation)"))
    if performance and not versions.at_least(version, "2012r2"):
        out.append(Problem(
            check="performance", host=host,
            message=f"--performance needs Windows Server 2012 R2 or later; {host} runs {versions.label(version)}",
            fix="drop --performance for this host"))
    return out


__all__ = ["HostMigration", "MigrationReport", "migration"]
