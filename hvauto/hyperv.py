"""Hyper-V's enumerations, named once: the ops, the templates and the lab all use these.

Values are Microsoft's (``root\\virtualization\\v2``); each comment names the class page
they come from (see ``docs/fidelity.md`` and the shared ``hyperv-wmi.md`` reference).
Templates receive them through the Jinja context as ``hyperv`` (they shape the script,
like an OS-version branch; they are never user values).
"""

from __future__ import annotations

from enum import IntEnum


class JobState(IntEnum):
    """``CIM_ConcreteJob.JobState`` (Msvm_MigrationJob, Msvm_ConcreteJob)."""

    NEW = 2
    STARTING = 3
    RUNNING = 4
    SUSPENDED = 5
    SHUTTING_DOWN = 6
    COMPLETED = 7
    TERMINATED = 8
    KILLED = 9
    EXCEPTION = 10
    SERVICE = 11
    #: Vendor range; Microsoft's migration sample and os-win treat it as "completed with warnings".
    COMPLETED_WITH_WARNINGS = 32768


#: A job in one of these states has not ended (11 Service is a diagnosis state, not an end).
ACTIVE_JOB_STATES: tuple[int, ...] = (JobState.NEW, JobState.STARTING, JobState.RUNNING, JobState.SUSPENDED,
                                      JobState.SHUTTING_DOWN, JobState.SERVICE)
#: Ended successfully.
SUCCESS_JOB_STATES: tuple[int, ...] = (JobState.COMPLETED, JobState.COMPLETED_WITH_WARNINGS)
#: Ended without success.
FAILED_JOB_STATES: tuple[int, ...] = (JobState.TERMINATED, JobState.KILLED, JobState.EXCEPTION)

JOB_STATE_NAMES: dict[int, str] = {
    JobState.NEW: "New", JobState.STARTING: "Starting", JobState.RUNNING: "Running",
    JobState.SUSPENDED: "Suspended", JobState.SHUTTING_DOWN: "ShuttingDown", JobState.COMPLETED: "Completed",
    JobState.TERMINATED: "Terminated", JobState.KILLED: "Killed", JobState.EXCEPTION: "Exception",
    JobState.SERVICE: "Service", JobState.COMPLETED_WITH_WARNINGS: "CompletedWithWarnings",
}


def job_state_name(state: int) -> str:
    return JOB_STATE_NAMES.get(int(state), str(state))


class JobType(IntEnum):
    """``Msvm_MigrationJob.JobType``."""

    UNKNOWN = 0
    CREATING_REMOTE_VM = 300
    CHECKING_VM = 301
    CHECKING_VM_AND_STORAGE = 302
    CHECKING_STORAGE = 303
    CHECKING_STORAGE_MIGRATION = 304
    MOVING_VM = 305
    MOVING_VM_AND_STORAGE = 306
    MOVING_STORAGE = 307


#: Jobs that are checks (Compare-VM, CheckVirtualSystemIsMigratable, planned-VM creation): never a move.
CHECK_JOB_TYPES: tuple[int, ...] = (JobType.CREATING_REMOTE_VM, JobType.CHECKING_VM, JobType.CHECKING_VM_AND_STORAGE,
                                    JobType.CHECKING_STORAGE, JobType.CHECKING_STORAGE_MIGRATION)
#: Jobs that move something.
MOVE_JOB_TYPES: tuple[int, ...] = (JobType.MOVING_VM, JobType.MOVING_VM_AND_STORAGE, JobType.MOVING_STORAGE)


class MigrationType(IntEnum):
    """``Msvm_VirtualSystemMigrationSettingData.MigrationType``."""

    UNKNOWN = 0
    VIRTUAL_SYSTEM = 32768
    STORAGE = 32769
    STAGED = 32770
    VIRTUAL_SYSTEM_AND_STORAGE = 32771
    STORAGE_DEEP_CHECK = 32772


#: The job type each migration type produces.
JOB_TYPE_FOR_MIGRATION: dict[int, int] = {
    MigrationType.VIRTUAL_SYSTEM: JobType.MOVING_VM,
    MigrationType.VIRTUAL_SYSTEM_AND_STORAGE: JobType.MOVING_VM_AND_STORAGE,
    MigrationType.STORAGE: JobType.MOVING_STORAGE,
}


class TransportType(IntEnum):
    """``Msvm_VirtualSystemMigrationSettingData.TransportType``."""

    TCP = 5
    SMB = 32768


class RequestedState(IntEnum):
    """``CIM_ConcreteJob.RequestStateChange`` RequestedState."""

    START = 2
    SUSPEND = 3
    TERMINATE = 4
    KILL = 5
    SERVICE = 6


#: Return codes of ``RequestStateChange`` (CIM_ConcreteJob).
REQUEST_STATE_CHANGE_RESULTS: dict[int, str] = {
    0: "done", 1: "not supported", 2: "unknown error", 3: "cannot complete within the timeout", 4: "failed",
    5: "invalid parameter", 6: "in use", 4096: "transition started", 4097: "invalid state transition",
    4098: "timeout not supported", 4099: "busy",
}

#: Return codes of the migration service's methods (MigrateVirtualSystemToHost and the checks).
MIGRATION_METHOD_RESULTS: dict[int, str] = {
    0: "completed", 4096: "job started", 32768: "failed", 32769: "access denied", 32770: "not supported",
    32771: "status unknown", 32772: "timeout", 32773: "invalid parameter", 32774: "system in use",
    32775: "invalid state for this operation", 32776: "incorrect data type", 32777: "system not available",
    32778: "out of memory",
}
#: Return values that mean the method did (or started doing) what was asked.
METHOD_OK: tuple[int, ...] = (0, 4096)
#: The method started a job (its reference is in the ``Job`` out-parameter).
METHOD_JOB_STARTED = 4096
#: ``MigrateVirtualSystemToHost``'s "Access Denied".
METHOD_ACCESS_DENIED = 32769
#: ``RequestStateChange`` (job) return values that mean the job is ending: done, or transition started.
REQUEST_STATE_CHANGE_OK: tuple[int, ...] = (0, 4096)

#: ``Msvm_StorageAllocationSettingData.ResourceSubType`` of a virtual hard disk (os-win filters on it).
VHD_RESOURCE_SUBTYPE = "Microsoft:Hyper-V:Virtual Hard Disk"


class VMState(IntEnum):
    """``Msvm_ComputerSystem.EnabledState`` as Get-VM names it (the states hvauto reasons about)."""

    RUNNING = 2
    OFF = 3
    PAUSED = 32768
    SAVED = 32769


#: Get-VM's State names a move can start from.
MOVABLE_VM_STATES: tuple[str, ...] = ("Running", "Off", "Saved", "Paused")
#: States in which the VM's processor state moves (CPU vendor and processor compatibility matter).
LIVE_STATE_VM_STATES: tuple[str, ...] = ("Running", "Saved", "Paused")


def ps_array(values: tuple[int, ...] | list[int]) -> str:
    """A PowerShell array literal of integers (used by templates to spell an enumeration's set)."""
    return "@(" + ", ".join(str(int(v)) for v in values) + ")"


def ps_hashtable(values: dict[int, str]) -> str:
    """A PowerShell hashtable literal, integer keys to single-quoted texts (an enumeration's meanings)."""
    return "@{ " + "; ".join(f"{int(k)} = '" + v.replace("'", "''") + "'" for k, v in values.items()) + " }"


def method_error_fqid(method: str, code: int) -> str:
    """The FullyQualifiedErrorId a template gives a refused WMI method call (the code is in it)."""
    return f"{method},ReturnValue={int(code)}"
