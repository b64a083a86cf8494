"""The demo's sampler: a thread inside the MN's namespace that records what happens.

Every `PERIOD_S` it reads the MN's interface counters (/proc/thread-self/net/dev: kernel byte
counters of `wlan` and `lte`, exact to the packet, unlike OpenFlow counters which lag about a
second) and the packets tcpdump has added to the uplink captures; every `TABLE_PERIOD_S` it
asks the northbound for the flow table and the interfaces. Everything goes into an
`Observations` (observe.py).

Owns: the thread, its namespace, the timing of the samples, reading the growing captures.
Must not: change anything on the MN (it only reads), or outlive `stop()`: a thread left in the
MN's namespace would keep that namespace alive after the testbed is removed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sdnmip.demo.observe import Observations
from sdnmip.demo.pcap import PcapStream, classify
from sdnmip.northbound.client import ClientError, NorthboundClient
from sdnmip.testbed import netns

PERIOD_S = 0.1
TABLE_PERIOD_S = 0.5
READ_CHUNK = 1 << 20
STOP_TIMEOUT_S = 10.0  # a sample takes well under a second; the REST client times out in 5


class Northbound:
    """The MN's REST API, reached from inside its namespace (it listens on loopback there)."""

    def __init__(self, namespace: str, url: str, timeout: float = 10.0) -> None:
        self.namespace = namespace
        self.client = NorthboundClient(url, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        with netns.entered(self.namespace):
            return self.client.request(method, path, body)


class Sampler(threading.Thread):
    def __init__(
        self,
        namespace: str,
        obs: Observations,
        *,
        uplinks: dict[str, Path],
        receivers: dict[str, Path],
        northbound_url: str,
    ) -> None:
        super().__init__(name="demo-sampler", daemon=True)
        self.namespace = namespace
        self.obs = obs
        # uplink -> the MN's capture on it; node -> a correspondent's capture (growing pcaps)
        self.captures = {**uplinks, **receivers}
        self.receivers = set(receivers)
        self.client = NorthboundClient(northbound_url, timeout=5.0)
        self._stop_event = threading.Event()
        self._streams = {name: PcapStream() for name in self.captures}
        self._offsets = dict.fromkeys(self.captures, 0)
        self.error: BaseException | None = None

    def stop(self) -> None:
        """Stop the thread and wait for it; one that does not end is an error, not a leak."""
        self._stop_event.set()
        self.join(timeout=STOP_TIMEOUT_S)
        if self.is_alive():
            raise RuntimeError(
                f"the demo's sampler did not stop within {STOP_TIMEOUT_S:g} s: it still holds "
                f"the namespace {self.namespace}"
            )

    def run(self) -> None:
        try:
            with netns.entered(self.namespace):
                self._loop()
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread (`error`), not swallowed
            self.error = exc

    def _loop(self) -> None:
        next_table = 0.0
        while not self._stop_event.is_set():
            started = time.monotonic()
            now = time.time()
            counters = netns.interface_counters()
            with self.obs.lock:
                self.obs.counters.append((now, counters))
            self._read_captures()
            if started >= next_table:
                next_table = started + TABLE_PERIOD_S
                self._read_tables()
            self._stop_event.wait(max(0.0, PERIOD_S - (time.monotonic() - started)))
        self._read_captures()  # what tcpdump wrote before it was stopped

    def _read_captures(self) -> None:
        for name, path in self.captures.items():
            try:
                with open(path, "rb") as f:
                    f.seek(self._offsets[name])
                    chunk = f.read(READ_CHUNK)
            except FileNotFoundError:
                continue
            if not chunk:
                continue
            self._offsets[name] += len(chunk)
            records = self._streams[name].feed(chunk)
            with self.obs.lock:
                for rec in records:
                    pkt = classify(rec.data)
                    if pkt is None:
                        continue
                    if name in self.receivers:
                        self.obs.add_received(pkt)
                    else:
                        self.obs.add_packet(name, rec.ts, rec.wire_len, pkt)

    def _read_tables(self) -> None:
        try:
            flows = self.client.get("/v1/flows")["flows"]
            interfaces = self.client.get("/v1/interfaces")["interfaces"]
        except ClientError:
            return  # the controller is busy or restarting: the next sample will tell
        now = time.time()
        with self.obs.lock:
            self.obs.flow_tables.append((now, flows))
            self.obs.interfaces.append((now, interfaces))
