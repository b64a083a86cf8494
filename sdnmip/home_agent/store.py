"""The persisted binding cache: one SQLite row per binding, so bindings survive an HA restart.

Owns: the database file (schema, write-ahead log, batched transactions) and the conversion of rows
to `BindingRecord`s. Expiry is stored as wall-clock Unix time (a monotonic clock does not survive
a restart); the caller converts. A missing database is created; a corrupt one (or one with an
unknown schema) is moved aside as `<name>.corrupt-<unix time>` and replaced by an empty one; a
row that does not parse is skipped. Each of these is returned as a problem for the daemon to log:
the HA then starts with what could be read instead of crashing.

Must not: decide anything about bindings (`cache.py` does), or hold secrets (rows carry NAIs and
addresses only).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path

from sdnmip.home_agent.cache import BindingRecord

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (
    home_address TEXT PRIMARY KEY,
    careof TEXT NOT NULL,
    nai TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    lifetime INTEGER NOT NULL,
    expires REAL NOT NULL,
    timestamp TEXT NOT NULL,
    link_local INTEGER NOT NULL
);
"""
_UPSERT = (
    "INSERT OR REPLACE INTO bindings (home_address, careof, nai, sequence, lifetime, expires, "
    "timestamp, link_local) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class StoredBinding:
    """A row: the record (its `remaining` unused) and its wall-clock expiry."""

    record: BindingRecord
    expires_wall: float

    def at(self, wall_now: float) -> BindingRecord:
        """The record with `remaining` computed at `wall_now`."""
        r = self.record
        return BindingRecord(
            r.home_address,
            r.careof,
            r.nai,
            r.sequence,
            r.lifetime,
            self.expires_wall - wall_now,
            r.timestamp,
            r.link_local,
        )


def _text(address: IPv6Address) -> str:
    """RFC 5952 text of an address (inet_ntop: several times faster than str() on IPv6Address,
    which matters at thousands of rows a second; IPv6Address() reads it back)."""
    return socket.inet_ntop(socket.AF_INET6, address.packed)


class BindingStore:
    """The SQLite file; `open` never raises for a bad file, it reports and starts empty."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    @classmethod
    def open(cls, path: Path) -> tuple[BindingStore, list[StoredBinding], list[str]]:
        """Open (or create) the store; returns it, the rows read, and problems to log."""
        problems: list[str] = []
        if not path.exists():
            problems.append(f"no binding store at {path}: starting with no bindings")
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            conn = cls._connect(path)
            rows = cls._read(conn, problems)
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            problems.append(
                f"binding store {path} is unreadable ({exc}): moved to {aside}, "
                "starting with no bindings"
            )
            cls._move_aside(path, aside)
            conn = cls._connect(path)
            rows = []
        return cls(path, conn), rows, problems

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            # WAL with synchronous=NORMAL: a commit is an append to the log, no fsync; a crash
            # of the HA loses nothing committed (only a power loss can lose the last commits).
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check says {check}")
            conn.executescript(_SCHEMA)
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if version is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            elif version[0] != str(SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"schema version {version[0]}, expected 1")
        except BaseException:
            conn.close()
            raise
        os.chmod(path, 0o600)
        return conn

    @staticmethod
    def _move_aside(path: Path, aside: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            src = path.with_name(path.name + suffix)
            if src.exists():
                src.replace(aside.with_name(aside.name + suffix))

    @staticmethod
    def _read(conn: sqlite3.Connection, problems: list[str]) -> list[StoredBinding]:
        out = []
        cur = conn.execute(
            "SELECT home_address, careof, nai, sequence, lifetime, expires, timestamp, "
            "link_local FROM bindings"
        )
        for row in cur:
            try:
                hoa, coa, nai, seq, lifetime, expires, ts, ll = row
                record = BindingRecord(
                    IPv6Address(hoa),
                    IPv6Address(coa),
                    str(nai),
                    int(seq) & 0xFFFF,
                    int(lifetime),
                    0.0,
                    int(ts),
                    bool(ll),
                )
                out.append(StoredBinding(record, float(expires)))
            except (ValueError, TypeError) as exc:
                problems.append(f"binding store: skipped an unreadable row for {row[0]!r}: {exc}")
        return out

    def apply(
        self, upserts: Iterable[tuple[BindingRecord, float]], deletes: Iterable[IPv6Address]
    ) -> None:
        """Write bindings (record, wall expiry) and delete others, in one transaction."""
        rows = [
            (
                _text(r.home_address),
                _text(r.careof),
                r.nai,
                r.sequence,
                r.lifetime,
                expires,
                str(r.timestamp),
                int(r.link_local),
            )
            for r, expires in upserts
        ]
        gone = [(_text(h),) for h in deletes]
        if not rows and not gone:
            return
        conn = self._conn
        conn.execute("BEGIN")
        try:
            if gone:
                conn.executemany("DELETE FROM bindings WHERE home_address = ?", gone)
            if rows:
                conn.executemany(_UPSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def load(self) -> list[StoredBinding]:
        problems: list[str] = []
        return self._read(self._conn, problems)

    def close(self) -> None:
        self._conn.close()
