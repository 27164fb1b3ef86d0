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
    what_if: bool = False
