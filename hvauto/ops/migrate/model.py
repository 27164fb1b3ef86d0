"""What a move is: modes, Hyper-V's job states as the moves use them, and the results the CLI shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hvauto import hyperv
from hvauto.errors import (
    Problem,
)
from hvauto.ops import vms as vm_ops
from hvauto.results import Change

SHARED_NOTHING = "shared-nothing"


LIVE = "live"


#: A clustered VM's live move: Move-ClusterVirtualMachineRole; its storage stays on the CSV.
CLUSTER_LIVE = "cluster-live"


STORAGE = "storage"


# CIM_ConcreteJob.JobState (11 Service is still under way; 32768 "completed with warnings" is a success)
ACTIVE_STATES = hyperv.ACTIVE_JOB_STATES


SUCCESS_STATES = hyperv.SUCCESS_JOB_STATES


COMPLETED, TERMINATED, KILLED, EXCEPTION = (hyperv.JobState.COMPLETED, hyperv.JobState.TERMINATED,
                                            hyperv.JobState.KILLED, hyperv.JobState.EXCEPTION)


JOB_STATE_NAMES = hyperv.JOB_STATE_NAMES


MOVABLE_STATES = ("Running", "Off", "Saved", "Paused")


#: The source's own compatibility check (Msvm_VirtualSystemMigrationService), as problems name it.
HOST_CHECK = "CheckVirtualSystemIsMigratable"


#: The oldest Windows Server that runs each VM configuration version (Get-VMHostSupportedVersion).
MIN_OS_FOR_VERSION = {"4.0": "2012", "5.0": "2012r2", "6.2": "2016", "7.0": "2016", "7.1": "2016", "8.0": "2016",
                      "8.1": "2019", "8.2": "2019", "8.3": "2019", "9.0": "2019", "9.1": "2022", "9.2": "2022",
                      "9.3": "2022", "10.0": "2022", "11.0": "2025", "12.0": "2025"}


#: The configuration versions each release runs (Microsoft's table, [WSD-Ver]; 2012 from [BOOK-MWS16]). The check
#: itself uses what the destination reports (Get-VMHostSupportedVersion); this table only words the fix.
VERSIONS_BY_OS: dict[str, tuple[str, ...]] = {
    "2012": ("4.0",),
    "2012r2": ("5.0",),
    "2016": ("5.0", "6.2", "7.0", "7.1", "8.0"),
    "2019": ("5.0", "6.2", "7.0", "7.1", "8.0", "8.1", "8.2", "8.3", "9.0"),
    "2022": ("8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0"),
    "2025": ("8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0", "11.0", "12.0"),
}


#: Supported cross-version moves beyond the destination's own list: 2012 R2 takes a 2012 VM (4.0) and upgrades it
#: to 5.0 [KB2956020] [BOOK-MWS16].
ACCEPTED_ON_ARRIVAL: dict[str, tuple[str, ...]] = {"2012r2": ("4.0",)}


def version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)


def accepts_version(dest_os: str, supported: list[str], version: str) -> bool:
    """The destination runs the VM's configuration version or takes it in a supported cross-version move."""
    return version in supported or version in ACCEPTED_ON_ARRIVAL.get(dest_os, ())


#: The states in which a VM carries processor state across the move: only these are bound to the CPU vendor
#: ([WSD-PCM] [WSD-DPCM]: a VM that is shut down moves across vendors).
CPU_BOUND_STATES = ("Running", "Saved", "Paused")


@dataclass(frozen=True)
class MoveProgress:
    """One observation of a running move (what the progress bar and the JSON lines show)."""

    vm: str
    source: str
    dest: str
    percent: int
    state: str
    elapsed_seconds: float
    bytes_total: int


ProgressFn = Callable[[MoveProgress], None]


@dataclass
class MigrationResult:
    vm: str
    vm_id: str
    mode: str
    #: None when the VM was found already on ``dest`` (nothing moved, no source to name).
    source: str | None
    dest: str
    storage_path: str | None
    #: Whether the VM moved, or in what-if whether it would (the same ``changes`` either way).
    changed: bool
    already_done: bool = False
    what_if: bool = False
    resumed: bool = False
    changes: list[Change] = field(default_factory=list)
    #: How: the steps of the move, for people.
    plan: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    state: str = ""
    job_id: str = ""
    elapsed_seconds: float = 0.0
    bytes_moved: int = 0
    verified: list[str] = field(default_factory=list)
    cleaned_planned_vm: bool = False

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]


@dataclass
class StartedMove:
    """What the CLI needs to offer cancel/watch when the user interrupts a running move."""

    vm: str
    vm_id: str
    source: str
    dest: str


@dataclass
class Located:
    host: str
    vm: vm_ops.VM


@dataclass
class CancelResult:
    vm: str
    source: str
    changed: bool
    cancelled_jobs: list[str] = field(default_factory=list)
    #: Jobs whose RequestStateChange was refused (e.g. 4097 invalid state transition): still running.
    refused_jobs: list[str] = field(default_factory=list)
    planned_removed_from: list[str] = field(default_factory=list)
    #: Planned VMs DestroySystem refused to remove ("HOST: DestroySystem returned N (meaning)"): still there.
    planned_left: list[str] = field(default_factory=list)
    what_if: bool = False
