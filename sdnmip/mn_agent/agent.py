"""The agent process: the asyncio loop that connects the logic shell to the kernel and the RPC.

Owns: the order of start-up (lock and read the state, set up the kernel data path, open the
signalling sockets, read the link state, then tell the core about every uplink and serve the RPC)
and of a clean stop (RPC closed, data path removed, state kept); the one timer armed at the core's
next deadline; the netlink monitor loop (re-reading everything if the monitor fails, e.g. after
an overflow); one HDRINCL sender per uplink and CoA; the three raw receivers.
Must not: make decisions (service.py and the core do) or build packets (signalling.py does).

Why netlink through `AsyncIPRoute` and the monitor's own socket: the agent is one asyncio loop,
and pyroute2 0.9's synchronous IPRoute cannot run inside a running loop (docs/datapath.md).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from sdnmip.kernel.constants import RT_TABLE_MAIN
from sdnmip.kernel.errors import KernelConfigError, KernelRequestError
from sdnmip.kernel.links import Addr, Link, Route, get_addrs, get_default_routers, get_links
from sdnmip.kernel.monitor import AddrEvent, Event, LinkEvent, Monitor, RouteEvent
from sdnmip.kernel.netlink import AsyncIPRoute
from sdnmip.kernel.rawsock import HdrinclSender, RawReceiver, bpf_inner_next_header
from sdnmip.mipv6 import MnHaKey
from sdnmip.mn.config import MnConfig
from sdnmip.mn_agent.api import EventKind, UplinkInfo
from sdnmip.mn_agent.datapath import MnDatapath
from sdnmip.mn_agent.rpc import RpcServer
from sdnmip.mn_agent.service import AgentService
from sdnmip.mn_agent.signalling import NH_IPV6, NH_MH, NH_ROUTING, Credentials
from sdnmip.mn_agent.state import AgentClock, StateStore
from sdnmip.mn_agent.uplinks import UplinkTracker

log = logging.getLogger("sdnmip.mn_agent")

MONITOR_RETRY_S = 1.0  # pause before re-opening a failed netlink monitor


class Agent:
    def __init__(self, cfg: MnConfig, key: bytes) -> None:
        self.cfg = cfg
        self.cred = Credentials(cfg.home.agent, cfg.identity.nai, MnHaKey(cfg.identity.spi, key))
        self.clock = AgentClock()
        self.store = StateStore(cfg.paths.state_dir)
        self.tracker = UplinkTracker(cfg.uplinks)
        self._senders: dict[tuple[str, IPv6Address], HdrinclSender] = {}
        self._outbox: list[tuple[str, bytes, str]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._prefixes: tuple[IPv6Network, ...] = cfg.home_prefixes
        self._tasks: list[asyncio.Task[None]] = []
        self._failed: asyncio.Future[None] | None = None
        self.service: AgentService | None = None
        self.rpc: RpcServer | None = None
        self._datapath: MnDatapath | None = None

    # --- Outputs of the service ----------------------------------------------------------------

    def send(self, uplink: str, packet: bytes, what: str) -> None:
        """Queue the packet; it leaves in the next turn of the loop, after the RPC answer that
        caused it (a claim's refill BU does not delay the claim). The state is already saved."""
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._guarded, self._flush)
        self._outbox.append((uplink, packet, what))

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        for uplink, packet, what in outbox:
            self._send_now(uplink, packet, what)

    def _send_now(self, uplink: str, packet: bytes, what: str) -> None:
        src = IPv6Address(packet[8:24])
        sender = self._senders.get((uplink, src))
        if sender is None:
            # The CoA changed between the core's decision and now: the core re-sends from
            # the new one as soon as it hears of it.
            log.info("not sent (uplink %s no longer has CoA %s): %s", uplink, src, what)
            return
        try:
            sender.send(packet)
        except KernelRequestError as exc:
            log.warning("%s via %s: %s", what, uplink, exc)  # the core retransmits

    def publish(self, kind: EventKind, data: dict[str, Any]) -> None:
        if self.rpc is not None:
            self.rpc.publish(kind, data)

    # --- the run -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self._failed = loop.create_future()
        self.store.lock()
        ipr = AsyncIPRoute()
        datapath = self._datapath = MnDatapath(ipr, self.cfg)
        receivers: list[RawReceiver] = []
        try:
            restored = self.store.load()
            self.service = AgentService(
                self.cfg,
                self.cred,
                clock=self.clock,
                store=self.store,
                out=self,
                random_iid=lambda: secrets.randbits(64),
                random16=lambda: secrets.randbits(16),
                restored=restored,
            )
            self._prefixes = self.service.table.prefixes
            await datapath.start()
            if self._prefixes != self.cfg.home_prefixes:
                await datapath.set_prefixes(self._prefixes)
            receivers = [
                RawReceiver(NH_ROUTING),  # BAs (and MPAs): type 2 routing header
                RawReceiver(NH_MH),  # Binding Errors
                RawReceiver(NH_IPV6, bpf=bpf_inner_next_header(NH_MH)),  # tunnelled BRRs
            ]
            self.rpc = RpcServer(self.cfg.agent_socket, self._request, self.service.snapshot)
            monitor_ready = asyncio.Event()
            self._spawn(self._watch_links(ipr, monitor_ready))
            await monitor_ready.wait()  # every uplink reported to the core once
            for rx in receivers:
                self._spawn(self._receive(rx))
            await self.rpc.start()
            log.info(
                "agent up: Primary HoA %s, HA %s, RPC on %s",
                self.cfg.home.primary_hoa,
                self.cfg.home.agent,
                self.cfg.agent_socket,
            )
            stopped: asyncio.Future[Any] = loop.create_task(stop.wait())
            failed: asyncio.Future[Any] = self._failed
            await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if self._failed.done():
                self._failed.result()  # re-raise what killed a task
        finally:
            if self._timer is not None:
                self._timer.cancel()
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.rpc is not None:
                await self.rpc.close()
            for rx in receivers:
                rx.close()
            for s in self._senders.values():
                s.close()
            self._senders.clear()
            try:
                await datapath.stop()
            finally:
                ipr.close()
                self.store.unlock()
                log.info("agent stopped; bindings and state kept for the next start")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _guarded(self, callback: Callable[[], None]) -> None:
        """Run a loop callback; an exception (a bug) stops the agent instead of being logged
        and forgotten by asyncio (which would leave the agent running without its timer)."""
        try:
            callback()
        except BaseException as exc:
            if self._failed is not None and not self._failed.done():
                self._failed.set_exception(exc)
            raise

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._failed is None or self._failed.done():
            return
        exc = task.exception()
        if exc is not None:
            self._failed.set_exception(exc)  # a bug: stop the agent loudly

    # --- after every call into the service -----------------------------------------------------

    def _request(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        assert self.service is not None
        try:
            return self.service.request(op, args)
        finally:
            self._after()

    def _after(self) -> None:
        """Re-arm the timer; follow new home prefixes in the kernel."""
        assert self.service is not None
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.service.next_deadline
        if deadline is not None:
            self._timer = loop.call_at(
                self.clock.to_monotonic(deadline), self._guarded, self._on_timer
            )
        prefixes = self.service.table.prefixes
        if prefixes != self._prefixes and self._datapath is not None:
            self._prefixes = prefixes
            self._spawn(self._datapath.set_prefixes(prefixes))

    def _on_timer(self) -> None:
        assert self.service is not None
        self._timer = None
        self.service.tick()
        self._after()

    # --- signalling ----------------------------------------------------------------------------

    async def _receive(self, rx: RawReceiver) -> None:
        assert self.service is not None
        while True:
            pkt = await rx.recv()
            self.service.packet(rx.proto, pkt.data, pkt.src, pkt.dst)
            self._after()

    def _update_senders(self, info: UplinkInfo) -> None:
        """One HDRINCL socket per (uplink, CoA), bound to the kernel port and the CoA, so a BU
        leaves by that uplink (`from <CoA>` selects its router table)."""
        for key in [k for k in self._senders if k[0] == info.name and k[1] != info.coa]:
            self._senders.pop(key).close()
        if info.coa is not None and (info.name, info.coa) not in self._senders:
            port = self.cfg.uplink(info.name).kernel_port
            try:
                self._senders[(info.name, info.coa)] = HdrinclSender(port, info.coa)
            except (KernelConfigError, KernelRequestError) as exc:
                log.warning("uplink %s: cannot send from %s: %s", info.name, info.coa, exc)

    # --- link state ----------------------------------------------------------------------------

    async def _watch_links(self, ipr: AsyncIPRoute, ready: asyncio.Event) -> None:
        while True:
            try:
                async with Monitor() as mon:
                    # Open first, then read: events in between wait on the monitor's socket.
                    self.tracker.reset()
                    for link in await get_links(ipr):
                        await self._on_link(link, True)
                    for a in await get_addrs(ipr):
                        self._on_addr(a, True)
                    for r in await get_default_routers(ipr):
                        self._on_route(r, True)
                    await self._apply()
                    ready.set()
                    async for ev in mon:
                        await self._on_event(ev)
                        await self._apply()
            except (OSError, NetlinkError) as exc:
                log.warning("netlink monitor failed (%s): re-reading the link state", exc)
                await asyncio.sleep(MONITOR_RETRY_S)

    async def _on_event(self, ev: Event) -> None:
        match ev:
            case LinkEvent(kind=kind, link=link):
                await self._on_link(link, kind == "new")
            case AddrEvent(kind=kind, addr=addr):
                self._on_addr(addr, kind == "new")
            case RouteEvent(kind=kind, route=route):
                self._on_route(route, kind == "new")

    async def _on_link(self, link: Link, present: bool) -> None:
        self.tracker.link(link.name, link.index, link.carrier, present)
        if link.name == self.cfg.bridge.hoa_port and present:
            assert self._datapath is not None
            await self._datapath.hoa_port_changed(link.index)

    def _on_addr(self, a: Addr, present: bool) -> None:
        self.tracker.address(a.index, a.address, a.usable, present)

    def _on_route(self, r: Route, present: bool) -> None:
        ra_default = r.table == RT_TABLE_MAIN and r.is_default and r.from_ra
        if ra_default and r.gateway is not None and r.ifindex is not None:
            self.tracker.router(r.ifindex, r.gateway, r.priority, present)

    async def _apply(self) -> None:
        """Kernel first (routes for the new CoA/router), then sockets, then the core."""
        changes = self.tracker.changes()
        if not changes:
            return
        assert self.service is not None and self._datapath is not None
        for info in changes:
            await self._datapath.update(info, self.tracker.kernel_index(info.name))
            self._update_senders(info)
        self.service.uplinks_changed(changes)
        self._after()
