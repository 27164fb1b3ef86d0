"""Move a VM to another host: locate, preflight, start, watch, verify.

* **Locate** the VM on every Hyper-V host at once (or on ``--from`` and the destination).
* **Preflight** in one round trip per host, concurrently: the source (VM, disks, switches,
  migration settings, running jobs and the migration service's own check,
  ``CheckVirtualSystemIsMigratable``), the destination (settings, listener addresses, switches,
  versions, memory, space, leftovers) and AD (delegation). Every problem is reported at once
  with its fix; any blocking one stops the move before anything changes.
* **Start** the move with ``MigrateVirtualSystemToHost`` on the source, passing the listener
  addresses read from the destination over its own session; **watch** the job it returned with
  short polls of ``Msvm_MigrationJob`` (move jobs only, never a check). A lost answer is never
  answered by a second start: the operation re-inspects and resumes watching.
* **Verify** the VM on the destination, in its prior state, with its disks under the
  destination path, and gone from the source.
"""

from hvauto.ops.migrate.locate import is_windows_path, locate, locate_one, validate
from hvauto.ops.migrate.model import (
    ACTIVE_STATES,
    CLUSTER_LIVE,
    COMPLETED,
    EXCEPTION,
    HOST_CHECK,
    JOB_STATE_NAMES,
    KILLED,
    LIVE,
    MIN_OS_FOR_VERSION,
    MOVABLE_STATES,
    SHARED_NOTHING,
    STORAGE,
    SUCCESS_STATES,
    TERMINATED,
    CancelResult,
    Located,
    MigrationResult,
    MoveProgress,
    ProgressFn,
    StartedMove,
)
from hvauto.ops.migrate.move import _under, cancel, cleanup_planned, migrate, verify
from hvauto.ops.migrate.preflight import Preflight, evaluate, preflight
from hvauto.ops.migrate.watch import moves, patiently, pick_job, watch, watch_running

__all__ = [
    'SHARED_NOTHING',
    'LIVE',
    'CLUSTER_LIVE',
    'STORAGE',
    'ACTIVE_STATES',
    'SUCCESS_STATES',
    'COMPLETED',
    'TERMINATED',
    'KILLED',
    'EXCEPTION',
    'JOB_STATE_NAMES',
    'MOVABLE_STATES',
    'HOST_CHECK',
    'MIN_OS_FOR_VERSION',
    'MoveProgress',
    'ProgressFn',
    'MigrationResult',
    'StartedMove',
    'Located',
    'CancelResult',
    'is_windows_path',
    'validate',
    'locate',
    'locate_one',
    'Preflight',
    'evaluate',
    'preflight',
    'moves',
    'pick_job',
    'watch',
    'patiently',
    'watch_running',
    'cleanup_planned',
    '_under',
    'migrate',
    'verify',
    'cancel',
]
