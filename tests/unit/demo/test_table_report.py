"""The live table, the report's text and its picture, from a synthetic run."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

from sdnmip.demo import report, table
from sdnmip.demo.analysis import analyse
from sdnmip.demo.scenario import FLOWS

from .fake import HOA, SCENARIO, T0, Perturb, fake_run


def test_the_view_shows_each_flow_with_its_home_address_uplink_and_rate():
    run = fake_run()
    # The sampler's latest flow table is from 4.9 s.
    v = table.view(run.obs, SCENARIO, FLOWS, t0=T0, now=T0 + 4.95, events=["1.0 s policy"])
    assert v.phase == "restored" and v.next_step is None
    rows = {r.key: r for r in v.flows}
    assert rows["bulk"].hoa == HOA["bulk"] and rows["bulk"].uplink == "wlan"  # failed back
    # 100 packets of 1000 bytes per second: 0.8 Mbit/s.
    assert abs((rows["video"].mbit_s or 0) - 0.8) < 0.05
    text = "\n".join(table.render(v))
    assert HOA["upload"] in text and "phase: restored" in text and "1.0 s policy" in text
    early = table.view(run.obs, SCENARIO, FLOWS, t0=T0, now=T0 + 2.5, events=[])
    assert early.phase == "moved" and early.next_step == "wlan cut in 0 s"
    assert [i.name for i in v.interfaces] == ["wlan", "lte"]


def test_a_terminal_gets_the_table_redrawn_in_place_and_a_log_gets_progress_lines():
    run = fake_run()
    v = table.view(run.obs, SCENARIO, FLOWS, t0=T0, now=T0 + 3.5, events=[])
    tty = io.StringIO()
    d = table.Display(tty, tty=True)
    d.show(v)
    d.show(v)
    assert tty.getvalue().count("\x1b[J") == 1  # the second drawing erased the first
    log = io.StringIO()
    p = table.Display(log, tty=False)
    p.show(v)
    p.show(v)  # too soon for another progress line
    p.message("-> 3.0 s wlan cut")
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\x1b" not in log.getvalue()
    # The flows as of the latest flow table sampled (the whole fake run: back on wlan).
    assert lines[0].startswith("[  3.5 s] failover") and "video wlan 0.8" in lines[0]


def test_the_report_states_the_figures_and_every_check(tmp_path: Path):
    run = fake_run(Perturb(lost={290, 291}))
    summary = report.write(run, tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert f"**{len(summary['checks'])} of {len(summary['checks'])} checks passed.**" in md
    assert "| 2.0 s | bulk moved to wlan | bulk | lte -> wlan | 10 ms | 40 ms | 50 ms |" in md
    assert "video: 2 datagrams lost by the captures (2 by iperf3): 2 were in the wlan link" in md
    assert json.loads((tmp_path / "summary.json").read_text())["ok"] is True
    text = report.verdict_text(summary)
    assert text.startswith(f"Result: {len(summary['checks'])}/{len(summary['checks'])}")
    bad = analyse(fake_run(Perturb(reset_at=3.5)))
    assert "FAILED: no TCP connection reset" in report.verdict_text(bad)


def test_the_plot_is_a_png_of_the_run(tmp_path: Path):
    report.write(fake_run(), tmp_path)
    png = (tmp_path / report.PLOT).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack("!II", png[16:24])
    assert (width, height) == (1320, 1045)


def test_loss_sentence_places_the_oldest_datagram_lost_at_the_cut_relative_to_it() -> None:
    from sdnmip.demo.report import loss_sentence

    kinds = {"in_wlan_link_at_cut": 3, "in_mn_at_switch": 1, "lte_before_ba": 2,
             "wlan_congestion": 0, "lte_after_ba": 0}  # fmt: skip
    before = {"lost": 6, "lost_by_cause": kinds, "oldest_lost_at_cut_ms_before_cut": 12.5}
    assert (
        "3 were in the wlan link when its carrier went (the oldest sent 12.5 ms before the cut)"
        in (loss_sentence("video", before, 6))
    )
    after = dict(before, oldest_lost_at_cut_ms_before_cut=-6.5)
    assert "(the oldest sent 6.5 ms after the cut)" in loss_sentence("video", after, 6)
    none = dict(before, lost_by_cause=dict(kinds, in_wlan_link_at_cut=0),
                oldest_lost_at_cut_ms_before_cut=None)  # fmt: skip
    assert "0 were in the wlan link when its carrier went, 1 never" in loss_sentence("v", none, 3)
