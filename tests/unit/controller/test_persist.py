"""The snapshot file: written whole or not at all, read back, refused when it is not ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdnmip.controller.logic import MnLogic
from sdnmip.controller.persist import SnapshotStore, StateError
from sdnmip.core.policy_api import PreferredUplinkPolicy

from .pkt import tcp_pkt
from .rig import CN1, HOA0, PRIMARY, Rig


def test_a_snapshot_written_and_read_back_restores_the_same_tables(tmp_path: Path) -> None:
    rig = Rig.start()
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    store = SnapshotStore(tmp_path / "state" / "controller.json")
    store.write(store.encode(rig.logic.snapshot()))
    assert [p.name for p in store.path.parent.iterdir()] == ["controller.json"]  # no temp left
    loaded = store.load()
    assert loaded is not None
    again = MnLogic.restore(rig.logic.cfg, PreferredUplinkPolicy(), loaded)
    assert again.snapshot() == rig.logic.snapshot()


def test_no_file_is_no_snapshot(tmp_path: Path) -> None:
    assert SnapshotStore(tmp_path / "none.json").load() is None


@pytest.mark.parametrize(
    "text, problem",
    [("{not json", "not JSON"), ('{"version": 99, "logic": {}}', "not a version 1"),
     ('{"version": 1}', "no 'logic'")],
)  # fmt: skip
def test_a_damaged_or_foreign_file_is_refused_naming_it(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "controller.json"
    path.write_text(text)
    with pytest.raises(StateError, match=problem) as err:
        SnapshotStore(path).load()
    assert str(path) in str(err.value)


def test_a_new_write_replaces_the_old_file(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "c.json")
    store.write(store.encode({"a": 1}))
    store.write(store.encode({"a": 2}))
    assert json.loads(store.path.read_text())["logic"] == {"a": 2}
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"


def test_the_snapshot_in_parts_is_the_same_json() -> None:
    rig = Rig.start()
    for port in range(40000, 40600):
        rig.send(HOA0, tcp_pkt(PRIMARY, CN1, port, 80))
    store = SnapshotStore(Path("/nonexistent/c.json"))
    snap = rig.logic.snapshot()
    parts = list(store.encode_parts(snap, flows_per_part=100))
    assert len(parts) > 6
    assert json.loads(b"".join(parts)) == {"version": 1, "logic": json.loads(json.dumps(snap))}
