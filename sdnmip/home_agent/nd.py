"""Neighbour Discovery the HA does on behalf of mobile nodes, as pure timers and decisions.

Owns:
- `DadRunner`: Duplicate Address Detection for HoAs (RFC 4862 §5.4, RFC 6275 §10.3.1), many in
  parallel: for each target it asks for `transmits` Neighbor Solicitations (source ::, to the
  target's solicited-node group, target = the address), `retrans_timer` apart, and declares the
  address unique `retrans_timer` after the last one. A Neighbor Advertisement for the target
  (§5.4.4), or a Neighbor Solicitation for it from another node's DAD (source ::, §5.4.3) while
  the DAD runs, makes it a duplicate at once. An NS with a unicast source is address resolution,
  not DAD, and does not count.
- `Announcer`: the unsolicited Neighbor Advertisements the HA multicasts when it starts
  defending a HoA (RFC 6275 §10.4.1; RFC 4861 §7.2.6 allows MAX_NEIGHBOR_ADVERTISEMENT of them).

Must not: open sockets or read clocks (the shell passes `now` and performs `SendNs`/`SendNa`),
or hold binding state (`cache.py` does).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from ipaddress import IPv6Address


@dataclass(frozen=True, slots=True)
class SendNs:
    """Send a DAD Neighbor Solicitation for `target` (source ::, hop limit 255)."""

    target: IPv6Address


@dataclass(frozen=True, slots=True)
class SendNa:
    """Multicast an unsolicited NA for `target` (to all-nodes, O set, HA's link-layer address)."""

    target: IPv6Address


@dataclass(frozen=True, slots=True)
class DadDone:
    """DAD for `home_address` ended: `duplicate` is the address found in use, or None."""

    home_address: IPv6Address
    duplicate: IPv6Address | None


@dataclass(slots=True)
class _Dad:
    home_address: IPv6Address
    targets: tuple[IPv6Address, ...]
    sent: int = 0
    done: bool = False
    gen: int = 0


@dataclass(slots=True)
class DadRunner:
    """Parallel DADs keyed by HoA (see the module docstring)."""

    transmits: int
    retrans_timer: float
    _running: dict[IPv6Address, _Dad] = field(default_factory=dict)
    _by_target: dict[IPv6Address, IPv6Address] = field(default_factory=dict)
    _heap: list[tuple[float, int, IPv6Address]] = field(default_factory=list)
    _gen: int = 0

    def __len__(self) -> int:
        return len(self._running)

    def running(self, home_address: IPv6Address) -> bool:
        return home_address in self._running

    def targets(self) -> list[IPv6Address]:
        """Every address under DAD (whose solicited-node groups the shell must listen to)."""
        return list(self._by_target)

    def start(
        self, now: float, home_address: IPv6Address, targets: tuple[IPv6Address, ...]
    ) -> tuple[list[SendNs], list[DadDone]]:
        """Start DAD; with `transmits` 0 the addresses are unique at once (RFC 4862 §5.1)."""
        if home_address in self._running:
            raise ValueError(f"DAD for {home_address} is already running")
        if self.transmits == 0:
            return [], [DadDone(home_address, None)]
        self._gen += 1
        dad = _Dad(home_address, targets, gen=self._gen)
        self._running[home_address] = dad
        for t in targets:
            self._by_target[t] = home_address
        return self._send(now, dad), []

    def _send(self, now: float, dad: _Dad) -> list[SendNs]:
        dad.sent += 1
        heapq.heappush(self._heap, (now + self.retrans_timer, dad.gen, dad.home_address))
        return [SendNs(t) for t in dad.targets]

    def _finish(self, dad: _Dad) -> None:
        dad.done = True
        del self._running[dad.home_address]
        for t in dad.targets:
            if self._by_target.get(t) == dad.home_address:
                del self._by_target[t]

    def cancel(self, home_address: IPv6Address) -> bool:
        dad = self._running.get(home_address)
        if dad is None:
            return False
        self._finish(dad)
        return True

    def on_neighbor_advertisement(self, target: IPv6Address) -> list[DadDone]:
        """RFC 4862 §5.4.4: an NA for a tentative address means someone uses it."""
        return self._conflict(target)

    def on_neighbor_solicitation(self, src: IPv6Address, target: IPv6Address) -> list[DadDone]:
        """RFC 4862 §5.4.3: another node's DAD (source ::) for the same address."""
        if not src.is_unspecified:
            return []
        return self._conflict(target)

    def _conflict(self, target: IPv6Address) -> list[DadDone]:
        hoa = self._by_target.get(target)
        if hoa is None:
            return []
        dad = self._running[hoa]
        self._finish(dad)
        return [DadDone(hoa, target)]

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def tick(self, now: float) -> tuple[list[SendNs], list[DadDone]]:
        """Send the next NSs that are due and finish the DADs whose wait is over."""
        sends: list[SendNs] = []
        done: list[DadDone] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, gen, hoa = heapq.heappop(heap)
            dad = self._running.get(hoa)
            if dad is None or dad.gen != gen:
                continue  # finished by a conflict or cancelled
            if dad.sent < self.transmits:
                sends.extend(self._send(when, dad))
            else:
                self._finish(dad)
                done.append(DadDone(hoa, None))
        return sends, done


@dataclass(slots=True)
class Announcer:
    """Repeats the unsolicited NAs of RFC 6275 §10.4.1 `count` times, `interval` apart."""

    count: int
    interval: float
    _left: dict[IPv6Address, tuple[int, int]] = field(default_factory=dict)  # target: left, gen
    _heap: list[tuple[float, int, IPv6Address]] = field(default_factory=list)
    _gen: int = 0

    def __len__(self) -> int:
        return len(self._left)

    def announce(self, now: float, targets: tuple[IPv6Address, ...]) -> list[SendNa]:
        if self.count <= 0:
            return []
        for t in targets:
            if self.count > 1:
                self._gen += 1
                self._left[t] = (self.count - 1, self._gen)
                heapq.heappush(self._heap, (now + self.interval, self._gen, t))
        return [SendNa(t) for t in targets]

    def cancel(self, targets: tuple[IPv6Address, ...]) -> None:
        for t in targets:
            self._left.pop(t, None)

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def tick(self, now: float) -> list[SendNa]:
        out = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, gen, t = heapq.heappop(heap)
            entry = self._left.get(t)
            if entry is None or entry[1] != gen:
                continue  # cancelled, or announced afresh since
            out.append(SendNa(t))
            if entry[0] > 1:
                self._left[t] = (entry[0] - 1, gen)
                heapq.heappush(heap, (when + self.interval, gen, t))
            else:
                del self._left[t]
        return out
