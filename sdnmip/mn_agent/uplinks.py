"""Per-uplink link state from what netlink reports: carrier, Care-of Address, default router.

Owns: turning observations about devices (carrier of an uplink's physical port), addresses (on its
kernel port) and default routes learned from Router Advertisements (on its kernel port) into one
`UplinkInfo` per uplink, and saying which uplinks changed. The CoA is sticky: while the current
one stays usable it is kept, so a second address appearing does not move every binding.
Must not: talk to netlink (the shell feeds it), decide re-bindings (the core does), or read clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Address

from sdnmip.mn.config import Uplink
from sdnmip.mn_agent.api import UplinkInfo


@dataclass(slots=True)
class _State:
    cfg: Uplink
    port_index: int | None = None
    kernel_index: int | None = None
    carrier: bool = False
    addrs: set[IPv6Address] = field(default_factory=set)  # usable global addresses
    routers: dict[IPv6Address, int] = field(default_factory=dict)  # RA default router -> metric
    coa: IPv6Address | None = None
    reported: UplinkInfo | None = None
    reported_index: int | None = None

    def pick_coa(self) -> None:
        """Keep the current CoA while it is usable; else take the lowest usable address."""
        if self.coa not in self.addrs:
            self.coa = min(self.addrs) if self.addrs else None

    def info(self) -> UplinkInfo:
        router = min(self.routers, key=lambda r: (self.routers[r], r)) if self.routers else None
        return UplinkInfo(self.cfg.name, self.carrier, self.coa, router)


class UplinkTracker:
    """Feed it `link`, `address` and `router` observations, then ask `changes()`."""

    def __init__(self, uplinks: tuple[Uplink, ...]) -> None:
        self._states = {u.name: _State(u) for u in uplinks}
        self._by_port = {u.port: u.name for u in uplinks}
        self._by_kernel_port = {u.kernel_port: u.name for u in uplinks}
        self._rereading = False  # between reset() and changes(): the CoA choice waits

    def info(self, name: str) -> UplinkInfo:
        return self._states[name].info()

    def kernel_index(self, name: str) -> int | None:
        """The ifindex of uplink `name`'s kernel port, None while it does not exist."""
        return self._states[name].kernel_index

    def reset(self) -> None:
        """Forget every observation before a full re-read (after the monitor lost events). The
        CoA choice and what was reported are kept, so the re-read reports only real changes."""
        self._rereading = True
        for s in self._states.values():
            s.port_index = s.kernel_index = None
            s.carrier = False
            s.addrs.clear()
            s.routers.clear()

    def uplink_of_kernel_index(self, index: int) -> str | None:
        for name, s in self._states.items():
            if s.kernel_index == index:
                return name
        return None

    def link(self, name: str, index: int, carrier: bool, present: bool = True) -> None:
        """Device `name` (index `index`) exists with this carrier, or is gone (`present=False`)."""
        if name in self._by_port:
            s = self._states[self._by_port[name]]
            s.port_index = index if present else None
            s.carrier = carrier and present
        if name in self._by_kernel_port:
            s = self._states[self._by_kernel_port[name]]
            if present:
                s.kernel_index = index
            elif s.kernel_index == index:
                # The CoA port is gone with its addresses and routes.
                s.kernel_index = None
                s.addrs.clear()
                s.routers.clear()
                s.coa = None

    def address(self, index: int, address: IPv6Address, usable: bool, present: bool) -> None:
        """An address on device `index`: usable as a CoA (global, preferred, DAD done) or not."""
        s = self._kernel(index)
        if s is None:
            return
        if present and usable and not address.is_link_local:
            s.addrs.add(address)
        else:
            s.addrs.discard(address)
        if not self._rereading:
            s.pick_coa()

    def router(self, index: int, gateway: IPv6Address, metric: int, present: bool) -> None:
        """A default route learned from a Router Advertisement via `gateway` on device `index`."""
        s = self._kernel(index)
        if s is None:
            return
        if present:
            s.routers[gateway] = metric
        else:
            s.routers.pop(gateway, None)

    def changes(self) -> list[UplinkInfo]:
        """Uplinks whose info or kernel port differs from what the last call saw (all of them,
        the first time), in config order."""
        self._rereading = False
        out = []
        for s in self._states.values():
            s.pick_coa()  # after a re-read: keep the CoA if it is still there
            info = s.info()
            if info != s.reported or s.kernel_index != s.reported_index or s.reported is None:
                s.reported = info
                s.reported_index = s.kernel_index
                out.append(info)
        return out

    def _kernel(self, index: int) -> _State | None:
        for s in self._states.values():
            if s.kernel_index == index:
                return s
        return None
