"""One run of a runbook at a time: an advisory lock per runbook file (``flock``).

The kernel drops the lock when its process dies, ``kill -9`` included, so a crash never
leaves a stale lock behind. The holder writes its pid and start time into the file so the
run that is turned away can say who holds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hvauto.errors import LockedError
from hvauto.journal import state_dir


def lock_file(runbook: Path) -> Path:
    resolved = str(runbook.expanduser().resolve())
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", runbook.stem)[:40]
    digest = hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:12]
    return state_dir() / "locks" / f"{slug}-{digest}.lock"


@contextmanager
def hold(runbook: Path, *, what: str | None = None) -> Iterator[Path]:
    path = lock_file(runbook)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            try:
                info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
                holder = f" (pid {int(info['pid'])}, since {since})"
            except (ValueError, KeyError, TypeError, OSError):
                pass
            raise LockedError(
                f"{what or runbook} is already running{holder}; this run did nothing",
                hint=f"runs of one runbook never overlap; the lock is {path}",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "started": time.time(), "runbook": str(runbook)}).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
