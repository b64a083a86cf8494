"""The agent's clock and state file: wall-clock times, atomic writes, one agent per directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sdnmip.mn_agent.state import STATE_FILE, AgentClock, StateError, StateStore


def test_clock_is_monotonic_anchored_on_the_wall_clock():
    mono = [100.0]
    wall = [1_700_000_000.0]
    c = AgentClock(wall=lambda: wall[0], monotonic=lambda: mono[0])
    assert c.now() == 1_700_000_000.0
    mono[0] += 5.0
    wall[0] -= 3600.0  # NTP steps the wall clock back: the agent's time does not jump
    assert c.now() == 1_700_000_005.0
    assert c.to_monotonic(1_700_000_010.0) == 110.0


def test_save_is_atomic_only_when_changed_and_private(tmp_path: Path):
    s = StateStore(tmp_path / "st")
    assert s.load() is None
    assert s.save({"a": 1}) is True
    assert s.save({"a": 1}) is False
    path = tmp_path / "st" / STATE_FILE
    assert json.loads(path.read_text()) == {"a": 1, "version": 1}
    assert (path.stat().st_mode & 0o777) == 0o600
    assert not list((tmp_path / "st").glob("*.tmp"))
    s2 = StateStore(tmp_path / "st")
    assert s2.load() == {"a": 1, "version": 1}
    assert s2.save({"a": 1}) is False  # what it loaded is what is on disk


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"version": 7}'])
def test_a_damaged_state_file_stops_the_agent_naming_it(tmp_path: Path, content: str):
    (tmp_path / STATE_FILE).write_text(content)
    with pytest.raises(StateError, match=f"{STATE_FILE}.*move it away"):
        StateStore(tmp_path).load()


def test_only_one_agent_per_state_directory(tmp_path: Path):
    a, b = StateStore(tmp_path), StateStore(tmp_path)
    a.lock()
    with pytest.raises(StateError, match="another agent"):
        b.lock()
    a.unlock()
    b.lock()
    assert (tmp_path / "agent.lock").read_text() == f"{os.getpid()}\n"
    b.unlock()
