"""Packet captures of the demo: stock tcpdump in the testbed's namespaces.

Two kinds:
- the signalling capture on the HA's home link, whole packets: every BU, BA, BRR, BE, MPS and
  MPA between the MN and the HA (the HA is one-armed, so they all cross that link). It goes into
  the report, for Wireshark.
- one capture per MN uplink, `SNAP_LEN` bytes of each frame: the tunnelled data packets the MN
  sends (outer source in the uplink's prefix), TCP resets in either direction, and the
  signalling. The demo reads these while they grow (pcap.py) for the per-flow rates and the
  handover timings; they stay in the testbed's state directory and go with it.

tcpdump is started through `Testbed.spawn`, so `down` kills it even if the demo crashed.

Owns: the capture filters and the life of the tcpdump processes.
Must not: interpret packets (pcap.py does).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from ipaddress import IPv6Network
from pathlib import Path

from sdnmip.testbed.errors import TestbedError
from sdnmip.testbed.testbed import Testbed, TrackedProcess

# Ethernet 14 + outer IPv6 40 + inner IPv6 40 + TCP up to its flags (14), or the BU/BA body
# behind a 24-byte Home Address option or type 2 routing header (14 + 40 + 24 + 12 = 90).
SNAP_LEN = 128
START_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0
POLL_S = 0.05
DROPPED = re.compile(r"(\d+) packets? dropped by kernel")


def _after_ext(index: str) -> str:
    """The offset just behind an extension header starting at IPv6 offset `index`."""
    return f"{index} + (ip6[{index} + 1] + 1) * 8"


def signalling_filter() -> str:
    """BPF for Mobility Header messages and Mobile Prefix Solicitations/Advertisements: bare,
    behind a Destination Options header (Home Address option) or a type 2 routing header, or
    inside an IPv6-in-IPv6 tunnel (a Binding Refresh Request to a Home Address)."""
    behind_ext = _after_ext("40")
    return " or ".join(
        [
            "ip6[6] == 135",
            "((ip6[6] == 60 or ip6[6] == 43) and ip6[40] == 135)",
            "(ip6[6] == 58 and (ip6[40] == 146 or ip6[40] == 147))",
            f"((ip6[6] == 60 or ip6[6] == 43) and ip6[40] == 58 and "
            f"(ip6[{behind_ext}] == 146 or ip6[{behind_ext}] == 147))",
            "(ip6[6] == 41 and ip6[46] == 135)",
        ]
    )


def uplink_filter(uplink_prefix: IPv6Network) -> str:
    """BPF for the uplink captures: data the MN tunnels out from this uplink's CoA, inner TCP
    resets either way, and the signalling."""
    return " or ".join(
        [
            f"(ip6[6] == 41 and ip6 src net {uplink_prefix})",
            "(ip6[6] == 41 and ip6[46] == 6 and (ip6[93] & 4) != 0)",  # 40 + 40 + 13: TCP flags
            f"({signalling_filter()})",
        ]
    )


@dataclass
class Capture:
    """One running tcpdump writing `path`."""

    node: str
    iface: str
    path: Path
    proc: TrackedProcess

    @classmethod
    def start(
        cls,
        tb: Testbed,
        *,
        node: str,
        iface: str,
        path: Path,
        bpf: str,
        snap_len: int = 0,
        name: str | None = None,
    ) -> Capture:
        """Start tcpdump and return once it captures (it has written the file's header).
        `snap_len` 0 keeps whole frames. `-U` writes each packet as it comes, so the file can be
        read while it grows; `-Z root` keeps tcpdump from dropping to a user that cannot write
        into the testbed's state directory."""
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            "tcpdump",
            "-i",
            iface,
            "-n",
            "-U",
            "-Z",
            "root",
            "-s",
            str(snap_len),
            "-w",
            str(path),
            bpf,
        ]
        proc = tb.spawn(node, argv, name or f"tcpdump-{node}-{iface}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (path.exists() and path.stat().st_size > 0):
            if not proc.alive():
                raise TestbedError(f"tcpdump on {node}/{iface} exited: {_tail(proc.log)}")
            if time.monotonic() > deadline:
                proc.stop()
                raise TestbedError(f"tcpdump on {node}/{iface} did not start: {_tail(proc.log)}")
            time.sleep(POLL_S)
        return cls(node, iface, path, proc)

    def stop(self) -> int | None:
        """SIGTERM: tcpdump writes what it holds and exits. Returns how many packets the kernel
        dropped before tcpdump read them (from its closing statistics), None if unknown."""
        if self.proc.alive():
            self.proc.stop(grace_s=STOP_GRACE_S)
        try:
            text = self.proc.log.read_text(errors="replace")
        except OSError:
            return None
        found = DROPPED.findall(text)
        return int(found[-1]) if found else None


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(no output)"
