"""The SQLite binding store: round trip, batched writes, and a missing or corrupt file reported
and replaced by an empty store instead of a crash."""

from __future__ import annotations

import sqlite3
import stat
from ipaddress import IPv6Address
from pathlib import Path

from sdnmip.home_agent.cache import BindingRecord
from sdnmip.home_agent.store import BindingStore

HOA = IPv6Address("2001:db8:100::1000")
HOA2 = IPv6Address("2001:db8:100::2000")
COA = IPv6Address("2001:db8:1::10")
TS = 0xF000_0000_1234_5678  # an NTP timestamp above 2**63: must survive SQLite's signed ints


def rec(hoa: IPv6Address = HOA, seq: int = 7) -> BindingRecord:
    return BindingRecord(hoa, COA, "mn1@x.example", seq, 400, 0.0, TS, True)


def test_missing_store_is_created_and_reported(tmp_path: Path):
    path = tmp_path / "sub" / "ha.sqlite"
    store, rows, problems = BindingStore.open(path)
    assert rows == [] and len(problems) == 1 and "no binding store" in problems[0]
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    store.close()


def test_round_trip_and_wall_clock_expiry(tmp_path: Path):
    path = tmp_path / "ha.sqlite"
    store, _, _ = BindingStore.open(path)
    store.apply([(rec(), 1000.0), (rec(HOA2, 9), 2000.0)], [])
    store.apply([(rec(seq=8), 1500.0)], [HOA2])
    store.close()
    store, rows, problems = BindingStore.open(path)
    assert problems == []
    (row,) = rows
    assert row.expires_wall == 1500.0
    r = row.at(1400.0)
    assert (r.home_address, r.careof, r.nai, r.sequence, r.lifetime) == (
        HOA, COA, "mn1@x.example", 8, 400,
    )  # fmt: skip
    assert r.remaining == 100.0 and r.timestamp == TS and r.link_local
    store.close()


def test_corrupt_store_is_moved_aside_and_the_ha_starts_empty(tmp_path: Path):
    path = tmp_path / "ha.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store, rows, problems = BindingStore.open(path)
    assert rows == []
    assert len(problems) == 1 and "unreadable" in problems[0] and "moved to" in problems[0]
    assert any(p.name.startswith("ha.sqlite.corrupt-") for p in tmp_path.iterdir())
    store.apply([(rec(), 1.0)], [])  # the fresh store works
    assert len(store.load()) == 1
    store.close()


def test_a_bad_row_is_skipped_and_reported(tmp_path: Path):
    path = tmp_path / "ha.sqlite"
    store, _, _ = BindingStore.open(path)
    store.apply([(rec(), 1000.0)], [])
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO bindings VALUES ('not-an-address', '2001:db8:1::1', 'x@y', 1, 4, 5.0, '1', 0)"
    )
    conn.commit()
    conn.close()
    store, rows, problems = BindingStore.open(path)
    assert [r.record.home_address for r in rows] == [HOA]
    assert len(problems) == 1 and "not-an-address" in problems[0]
    store.close()


def test_a_store_with_another_schema_version_is_not_trusted(tmp_path: Path):
    path = tmp_path / "ha.sqlite"
    store, _, _ = BindingStore.open(path)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    store, rows, problems = BindingStore.open(path)
    assert rows == [] and "schema version 99" in problems[0]
    store.close()
