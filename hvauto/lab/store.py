"""The lab's SQLite store: the estate's objects, injected faults, and a call counter.

Objects are JSON documents keyed by (kind, key), with the owning host as a column so
per-host queries stay cheap. Every lab call runs in one ``BEGIN IMMEDIATE`` transaction,
so concurrent commands (threads or processes) see each other's effects in order.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    host TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS objects_host ON objects (kind, host);
CREATE TABLE IF NOT EXISTS faults (host TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    host TEXT NOT NULL,
    template TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wire_requests (
    host TEXT NOT NULL,
    action TEXT NOT NULL,
    status INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (host, action, status)
);
"""


def _key(value: str) -> str:
    # Windows names are case-insensitive: so are the lab's keys.
    return value.lower()


class Estate:
    """A view of the estate inside one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT data FROM objects WHERE kind=? AND key=?", (kind, _key(key))).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, key: str, data: Mapping[str, Any], *, host: str | None = None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO objects (kind, key, host, data) VALUES (?, ?, ?, ?)",
            (kind, _key(key), _key(host) if host else None, json.dumps(data, sort_keys=True)),
        )

    def delete(self, kind: str, key: str) -> bool:
        cur = self.conn.execute("DELETE FROM objects WHERE kind=? AND key=?", (kind, _key(key)))
        return cur.rowcount > 0

    def all(self, kind: str, *, host: str | None = None) -> list[dict[str, Any]]:
        if host is None:
            rows = self.conn.execute("SELECT data FROM objects WHERE kind=? ORDER BY key", (kind,))
        else:
            rows = self.conn.execute("SELECT data FROM objects WHERE kind=? AND host=? ORDER BY key",
                                     (kind, _key(host)))
        return [json.loads(r[0]) for r in rows]

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every object, by kind: what a test compares to show that nothing changed."""
        out: dict[str, list[dict[str, Any]]] = {}
        for kind, data in self.conn.execute("SELECT kind, data FROM objects ORDER BY kind, key"):
            out.setdefault(kind, []).append(json.loads(data))
        return out


class LabStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def exists(self) -> bool:
        return self.path.is_file()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # The estate holds the lab accounts' passwords (as lab/password does): the owner's only.
                # SQLite gives its -wal and -shm files the database file's mode.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            elif self.path.stat().st_mode & 0o077 and self.path.stat().st_uid == getattr(os, "getuid", lambda: -1)():
                self.path.chmod(0o600)  # an estate made by an older hvauto
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[Estate]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Estate(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def load(self, objects: Mapping[str, Sequence[Mapping[str, Any]]], meta: Mapping[str, str]) -> None:
        """Replace the whole estate (``lab init`` / ``lab reset``)."""
        with self.transaction() as est:
            est.conn.execute("DELETE FROM objects")
            est.conn.execute("DELETE FROM faults")
            est.conn.execute("DELETE FROM calls")
            est.conn.execute("DELETE FROM wire_requests")
            est.conn.execute("DELETE FROM meta")
            for kind, items in objects.items():
                for item in items:
                    est.put(kind, str(item["key"]), item, host=item.get("host"))
            for k, v in meta.items():
                est.set_meta(k, v)

    # -- faults --------------------------------------------------------------------------------------
    def fault(self, host: str) -> dict[str, Any]:
        row = self._conn().execute("SELECT data FROM faults WHERE host=?", (_key(host),)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_fault(self, host: str, **changes: Any) -> dict[str, Any]:
        with self.transaction() as est:
            row = est.conn.execute("SELECT data FROM faults WHERE host=?", (_key(host),)).fetchone()
            data = json.loads(row[0]) if row else {}
            data.update({k: v for k, v in changes.items() if v is not None})
            est.conn.execute("INSERT OR REPLACE INTO faults (host, data) VALUES (?, ?)",
                             (_key(host), json.dumps(data)))
            return data

    def clear_faults(self, host: str | None = None) -> None:
        with self.transaction() as est:
            if host is None:
                est.conn.execute("DELETE FROM faults")
            else:
                est.conn.execute("DELETE FROM faults WHERE host=?", (_key(host),))

    def take_fault(self, host: str, template: str | None = None) -> dict[str, Any]:
        """The host's faults for this call; consumes one of ``fail_next`` (only for ``fail_template`` if set)."""
        with self.transaction() as est:
            row = est.conn.execute("SELECT data FROM faults WHERE host=?", (_key(host),)).fetchone()
            if not row:
                return {}
            data: dict[str, Any] = json.loads(row[0])
            now = {k: v for k, v in data.items() if k != "fail_next"}
            aimed = data.get("fail_template")
            if int(data.get("fail_next", 0)) > 0 and (not aimed or template is None or aimed == template):
                data["fail_next"] = int(data["fail_next"]) - 1
                est.conn.execute("UPDATE faults SET data=? WHERE host=?", (json.dumps(data), _key(host)))
                now["fail"] = True
            return now

    # -- calls ---------------------------------------------------------------------------------------
    def record_call(self, host: str, template: str, outcome: str) -> None:
        with self.transaction() as est:
            est.conn.execute("INSERT INTO calls (ts, host, template, outcome) VALUES (?, ?, ?, ?)",
                             (time.time(), _key(host), template, outcome))

    def calls(self, *, host: str | None = None, template: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM calls WHERE 1=1", []
        if host:
            sql += " AND host=?"
            args.append(_key(host))
        if template:
            sql += " AND template=?"
            args.append(template)
        row = self._conn().execute(sql, args).fetchone()
        return int(row[0])

    def call_counts(self) -> list[tuple[str, str, str, int]]:
        rows = self._conn().execute(
            "SELECT host, template, outcome, COUNT(*) FROM calls GROUP BY host, template, outcome ORDER BY host, template"
        )
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        with self.transaction() as est:
            return est.snapshot()

    # -- the wire endpoint ---------------------------------------------------------------------------
    def take_wire_fault(self, host: str, action: str) -> str | None:
        """The fault kind for this WS-Management request, consuming one of ``fail_next`` if it applies.

        ``fail_on`` restricts the fault to one action (Create, Command, Receive ...); a
        ``permanent`` fault is the script's, not the wire's, and is left for the run.
        """
        if int(self.fault(host).get("fail_next", 0) or 0) <= 0:
            return None  # the common case reads without a write lock (a long lab call may hold it)
        with self.transaction() as est:
            row = est.conn.execute("SELECT data FROM faults WHERE host=?", (_key(host),)).fetchone()
            if not row:
                return None
            data: dict[str, Any] = json.loads(row[0])
            kind = str(data.get("kind") or "transient")
            on = data.get("fail_on")
            # A fault aimed at one template is the in-process lab's (the wire does not tell requests apart so).
            if (int(data.get("fail_next", 0) or 0) <= 0 or kind == "permanent" or data.get("fail_template")
                    or (on and on.lower() != action.lower())):
                return None
            data["fail_next"] = int(data["fail_next"]) - 1
            est.conn.execute("UPDATE faults SET data=? WHERE host=?", (json.dumps(data), _key(host)))
            return kind

    def peek(self, kind: str, key: str) -> dict[str, Any] | None:
        """Read one object outside any transaction (WAL readers never wait for a writer)."""
        return Estate(self._conn()).get(kind, key)

    def record_requests(self, counts: Mapping[tuple[str, str, int], int]) -> None:
        with self.transaction() as est:
            for (host, action, status), n in counts.items():
                est.conn.execute(
                    "INSERT INTO wire_requests (host, action, status, count) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (host, action, status) DO UPDATE SET count = count + excluded.count",
                    (_key(host), action, status, n),
                )

    def request_counts(self) -> list[tuple[str, str, int, int]]:
        """WS-Management requests the wire endpoint answered: (host, action, HTTP status, count)."""
        rows = self._conn().execute(
            "SELECT host, action, status, count FROM wire_requests ORDER BY host, action, status")
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
