"""One run of a runbook at a time: an advisory lock per runbook file (``flock``; ``msvcrt`` on Windows).

The operating system drops the lock when its process dies, ``kill -9`` included, so a crash
never leaves a stale lock behind. The holder writes its pid and start time into the file so the
run that is turned away can say who holds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hvauto.errors import LockedError
from hvauto.journal import state_dir


def lock_file(runbook: Path) -> Path:
    """The lock of the runbook file itself: through a symlink, a hard-to-see relative path or ``..``, the same."""
    real = runbook.expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", real.stem)[:40]
    digest = hashlib.sha256(str(real).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return state_dir() / "locks" / f"{slug}-{digest}.lock"


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f" (pid {int(info['pid'])}, since {since})"
    except (ValueError, KeyError, TypeError, OSError):
        return ""


@contextmanager
def hold(runbook: Path, *, what: str | None = None) -> Iterator[Path]:
    path = lock_file(runbook)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _try_lock(fd):
            raise LockedError(
                f"{what or runbook} is already running{_holder(path)}; this run did nothing",
                hint=f"runs of one runbook never overlap; the lock is {path}",
            )
        info = json.dumps({"pid": os.getpid(), "started": time.time(), "runbook": str(runbook)}).encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, info)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            _unlock(fd)
    finally:
        os.close(fd)
