"""The log throttle for floods of bad packets: one line per interval, the rest counted."""

from __future__ import annotations

from sdnmip.lograte import LogThrottle


def test_one_line_per_interval_and_the_held_back_count_with_the_right_window() -> None:
    t = LogThrottle(interval=10.0)
    assert t.note(0.0, "bad BU") == "bad BU"
    assert [t.note(x, "bad BU") for x in (1.0, 5.0, 9.9)] == [None, None, None]
    # The next one comes long after: the three held back were not "in the last 10 s".
    line = t.note(300.0, "bad BA")
    assert line is not None and line.startswith("bad BA") and "3 more" in line
    assert "in the last 10 s" not in line and "300 s" in line
    assert (
        t.note(305.0, "x") is None
        and t.note(310.0, "y") == "y (and 1 more since the last report 10 s ago, not logged)"
    )
