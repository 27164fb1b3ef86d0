"""The parameters of each migration step, built once, and the steps each migrate mode declares.

The real run (:mod:`.move`, :mod:`.preflight`, :mod:`.watch`) and ``--render`` both build every
step's parameters with the functions below, so the script that ``--render`` prints is the
script the run sends, with ``<placeholders>`` where a value is only known from an earlier read.
"""

from __future__ import annotations

import ntpath
from typing import Any

from hvauto.ops import ad as ad_ops
from hvauto.ops.migrate.locate import validate
from hvauto.ops.migrate.model import LIVE, SHARED_NOTHING
from hvauto.render import Placeholder
from hvauto.session import Session
from hvauto.steps import Step, ph


def locate_params(vm: str) -> dict[str, Any]:
    return {"Name": [vm]}


def source_preflight_params(vm: str, dest_fqdn: str, storage_path: str | None, mode: str) -> dict[str, Any]:
    return {"Name": vm, "DestinationHost": dest_fqdn, "DestinationStoragePath": storage_path or "",
            "IncludeStorage": mode == SHARED_NOTHING}


def dest_preflight_params(vm: str, vm_id: str, storage_path: str | None) -> dict[str, Any]:
    return {"Name": vm, "VmId": vm_id, "Path": storage_path or ""}


def start_params(vm_id: str, dest_fqdn: str, listeners: list[Any], storage_path: str | None,
                 mode: str) -> dict[str, Any]:
    return {"VmId": vm_id, "DestinationHost": dest_fqdn,
            "ListenerAddress": [a if isinstance(a, str) else str(a) for a in listeners],
            "DestinationStoragePath": storage_path if mode == SHARED_NOTHING and storage_path else "",
            "IncludeStorage": mode == SHARED_NOTHING}


def cluster_start_params(vm_id: str, node: str) -> dict[str, Any]:
    return {"VmId": vm_id, "Node": node}


def vm_params(vm_id: str) -> dict[str, Any]:
    """``migrate_status``, ``migrate_cancel``, ``migrate_cleanup``: the VM by its id."""
    return {"VmId": vm_id}


def storage_start_params(vm_id: str, path: str) -> dict[str, Any]:
    return {"VmId": vm_id, "DestinationStoragePath": path}


def default_storage_path(vm_path: str, vm: str) -> str:
    """Where a shared-nothing move puts the VM when no ``--storage-path`` is given: DEST's VM folder\\VM."""
    joined = ntpath.join(vm_path, vm)
    return Placeholder.text(joined) if isinstance(vm_path, Placeholder) else joined


POLL = "every --poll-interval seconds until the job ends"
VM_ID = "VMId"


def _needs_source(source: str | None, what: str) -> str:
    from hvauto.errors import UsageError

    if not source:
        raise UsageError(f"--render needs {what}: it cannot know, without asking the hosts, which one has the VM")
    return source


def _locate(session: Session, vm: str, hosts: list[str]) -> list[Step]:
    return [Step(h, "vm_list", locate_params(vm), f"find {vm} (its id, state and disks)") for h in hosts]


def move_steps(session: Session, *, vm: str, dest: str, source: str | None, storage_path: str | None = None,
               live: bool = False, dest_vm: str | None = None) -> list[Step]:
    """``migrate --shared-nothing|--live VM DEST --from SRC``: every step, in the order the run takes them.

    ``dest_vm``: the name shown for the VM when ``vm`` is itself a placeholder (evacuate).
    """
    mode = LIVE if live else SHARED_NOTHING
    validate(session, vm=vm, dest=dest, source=source, storage_path=storage_path)
    src = session.host(_needs_source(source, "--from SRC")).name
    dst = session.host(dest).name
    fqdn = session.host(dst).fqdn
    vm_id = ph(f"{VM_ID} of {dest_vm or vm}")
    steps = _locate(session, vm, [src, dst])
    path: str | None = storage_path
    if mode == SHARED_NOTHING and not storage_path:
        steps.append(Step(dst, "migrate_dest_preflight", dest_preflight_params(vm, vm_id, None),
                          "read the destination: its default VM folder gives the storage path, and its "
                          "listener addresses, memory, space and switches"))
        path = default_storage_path(ph(f"VM folder of {dst}"), vm)
    steps.append(Step(src, "migrate_source_preflight", source_preflight_params(vm, fqdn, path, mode),
                      "read the source: the VM, its running jobs, and the host's own compatibility check "
                      "(CheckVirtualSystemIsMigratable)"))
    if mode == LIVE or storage_path:
        steps.append(Step(dst, "migrate_dest_preflight", dest_preflight_params(vm, vm_id, path),
                          "read the destination: listener addresses, memory, space, switches, a VM or file "
                          "already there"))
    ad = ad_ops.ad_host(session)
    if ad is not None:
        steps.append(Step(ad, "ad_computer_get", ad_ops.computer_params([src]),
                          f"read {src}'s delegation in Active Directory"))
    listeners = [ph(f"listener addresses of {dst}")]
    start_when = "when the preflight found no blocking problem and no move of the VM is running"
    if mode == LIVE:
        steps.append(Step(src, "migrate_start", start_params(vm_id, fqdn, listeners, None, mode),
                          f"start the live move on {src} (MigrateVirtualSystemToHost, VirtualSystem)",
                          when=start_when + ", for a VM that is not clustered"))
        steps.append(Step(src, "migrate_cluster_start", cluster_start_params(vm_id, dst),
                          "start the clustered move through the cluster", when=start_when + ", for a clustered VM"))
    else:
        steps.append(Step(src, "migrate_start", start_params(vm_id, fqdn, listeners, path, mode),
                          f"start the move on {src} (MigrateVirtualSystemToHost, VirtualSystemAndStorage)",
                          when=start_when))
    steps += watch_and_verify(src, dst, vm_id)
    return steps


def watch_and_verify(src: str, dst: str, vm_id: str) -> list[Step]:
    return [
        Step(src, "migrate_status", vm_params(vm_id), "watch the move's Msvm_MigrationJob", repeat=POLL),
        Step(dst, "migrate_cleanup", vm_params(vm_id), "remove the planned VM the move left",
             when="when the job failed or was cancelled"),
        Step(dst, "migrate_status", vm_params(vm_id), "verify: the VM is on the destination, in its state"),
        Step(src, "migrate_status", vm_params(vm_id), "verify: the VM is gone from the source"),
    ]


def cancel_steps(session: Session, *, vm: str, source: str | None) -> list[Step]:
    """``migrate --cancel VM --from SRC``."""
    validate(session, vm=vm, dest=None, source=source, storage_path=None)
    src = session.host(_needs_source(source, "--from SRC")).name
    vm_id = ph(f"{VM_ID} of {vm}")
    steps = _locate(session, vm, [src])
    steps.append(Step(src, "migrate_cancel", vm_params(vm_id), "end the VM's running migration jobs "
                      "(Msvm_ConcreteJob.RequestStateChange)"))
    others = [h for h in session.inventory.with_role("hyperv") if h.lower() != src.lower()]
    steps += [Step(h, "migrate_cleanup", vm_params(vm_id), f"remove a planned VM the move left on {h}")
              for h in others]
    return steps


def watch_steps(session: Session, *, vm: str, source: str | None) -> list[Step]:
    """``migrate --watch VM --from SRC``."""
    validate(session, vm=vm, dest=None, source=source, storage_path=None)
    src = session.host(_needs_source(source, "--from SRC")).name
    vm_id = ph(f"{VM_ID} of {vm}")
    return [*_locate(session, vm, [src]),
            Step(src, "migrate_status", vm_params(vm_id), "find the VM's migration job and follow it", repeat=POLL)]


def storage_steps(session: Session, *, vm: str, path: str, host: str | None) -> list[Step]:
    """``storage move VM PATH --host H``."""
    from hvauto.ops.storage import check_path

    check_path(path)
    validate(session, vm=vm, dest=None, source=host, storage_path=path, source_flag="--host")
    src = session.host(_needs_source(host, "--host HOST")).name
    vm_id = ph(f"{VM_ID} of {vm}")
    return [*_locate(session, vm, [src]),
            Step(src, "migrate_status", vm_params(vm_id), "look for a move of the VM already running (it is "
                 "watched, never started twice)", when=f"when a file of the VM is not under {path}"),
            Step(src, "migrate_dest_preflight", dest_preflight_params(vm, vm_id, path),
                 f"check that {path}'s volume exists on {src} and has room",
                 when=f"when a file is not under {path} and no move of it is running"),
            Step(src, "storage_move_start", storage_start_params(vm_id, path),
                 "start the storage move (MigrateVirtualSystemToHost, Storage)",
                 when=f"when a file of the VM is not under {path} and no move of it is running"),
            Step(src, "migrate_status", vm_params(vm_id), "watch the move's job", repeat=POLL),
            Step(src, "migrate_status", vm_params(vm_id), f"verify: every disk is under {path}")]


__all__ = [
    "cancel_steps",
    "cluster_start_params",
    "default_storage_path",
    "dest_preflight_params",
    "locate_params",
    "move_steps",
    "source_preflight_params",
    "start_params",
    "storage_start_params",
    "storage_steps",
    "vm_params",
    "watch_steps",
]
