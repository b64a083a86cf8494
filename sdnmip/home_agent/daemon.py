"""The Home Agent daemon: the asyncio shell around the binding cache.

Owns: the event loop's work. Packets from the raw sockets are decoded (codec), authenticated
(`authn`) and handed to the pure cores (`cache`, `nd`); the actions they return are performed in
groups: kernel changes (`dataplane`, batched netlink) and persisted rows (`store`) are committed
first, then the Binding Acknowledgements of that group are sent, so an MN never holds an accepted
BA for a binding the kernel or the disk does not have. Under load a group holds every BU that
arrived in one read of the sockets ("group commit"); when idle, each BU is its own group. Timers
come from the cores' deadlines (one `call_at`, moved when an earlier deadline appears): no
polling loop.

Sockets: next header 60 (BUs and MPSs carry a Home Address option; the kernel, without MIPv6,
drops them after the raw socket's copy), 135 (Mobility Headers without one, e.g. a BU from the MN
at home), 58 (NS/NA on the home link for DAD, HAAD requests to the Home-Agents anycast address),
41 (reverse-tunnelled packets nft diverted because no binding matches them) and one IPV6_HDRINCL
sender on the home link.

Must not: decide anything the cores decide, import anything of the Mobile Node side, or log a
secret (keys are looked up by NAI at the moment a BA is signed, never formatted).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Iterable
from ipaddress import IPv6Address
from typing import Any

from sdnmip.home_agent.authn import authenticate
from sdnmip.home_agent.cache import (
    Action,
    BindingCache,
    BindingRecord,
    BindingUpdateIn,
    CacheConfig,
    CancelDad,
    ForgetBinding,
    InstallBinding,
    Log,
    PersistBinding,
    RemoveBinding,
    SendBindingAck,
    SendBindingError,
    SendIcmp,
    ServedPrefix,
    StartDad,
    home_agents_anycast,
)
from sdnmip.home_agent.config import HaConfig
from sdnmip.home_agent.dataplane import ENOMEM_RETRIES, DataPlane
from sdnmip.home_agent.keys import KeyStore
from sdnmip.home_agent.nd import Announcer, DadDone, DadRunner
from sdnmip.home_agent.nlbatch import Failure
from sdnmip.home_agent.ratelimit import TokenBucket
from sdnmip.home_agent.sockets import Receiver, Sender
from sdnmip.home_agent.store import BindingStore
from sdnmip.kernel.errors import KernelRequestError
from sdnmip.kernel.netlink import AsyncIPRoute
from sdnmip.lograte import LogThrottle
from sdnmip.mipv6 import (
    AlternateCareofAddress,
    BindingAcknowledgement,
    BindingError,
    BindingUpdate,
    DecodeError,
    HomeAgentAddressDiscoveryRequest,
    MobilePrefixSolicitation,
    NeighborAdvertisement,
    NeighborSolicitation,
    build_icmpv6_packet,
    build_mh_packet,
    decode_from,
    find_option,
    solicited_node_multicast,
)
from sdnmip.mipv6.errors import UnsupportedHeaderError
from sdnmip.mipv6.ext_headers import NH_DSTOPTS, decode_options_header
from sdnmip.mipv6.options import BindingRefreshAdvice
from sdnmip.mipv6.status import BindingAckStatus

log = logging.getLogger("sdnmip.ha")

ND_HOP_LIMIT = 255  # RFC 4861 §7.1: ND messages are valid only with hop limit 255
SIGNALLING_HOP_LIMIT = 64
ALL_NODES = IPv6Address("ff02::1")
UNSPECIFIED = IPv6Address("::")
ICMP_NS, ICMP_NA, ICMP_HAAD_REQUEST = 135, 136, 144
RETRY_DELAY = 0.01  # seconds between retries of kernel requests refused with ENOMEM
BE_BURST = 5.0
CONTROL_TIMEOUT = 5.0
SIGNALLING_RCVBUF = 16 << 20

Outgoing = SendBindingAck | SendBindingError | SendIcmp | tuple[bytes, IPv6Address]


@dataclasses.dataclass
class ShellCounters:
    """What only the shell sees (the cache counts the rest)."""

    decode_errors: int = 0
    not_for_us: int = 0
    bad_hop_limit: int = 0
    be_suppressed: int = 0
    send_errors: int = 0
    kernel_failures: int = 0
    store_errors: int = 0
    ns_sent: int = 0
    na_sent: int = 0
    groups: int = 0
    group_join_failures: int = 0


def cache_config(cfg: HaConfig) -> CacheConfig:
    return CacheConfig(
        ha_address=cfg.address,
        prefixes=tuple(
            ServedPrefix(p.prefix, p.valid_lifetime, p.preferred_lifetime)
            for p in cfg.home_prefixes
        ),
        max_lifetime=cfg.max_binding_lifetime,
        refresh_advice=cfg.refresh_advice,
        replay_window=cfg.replay_window,
        dad=cfg.dad.transmits > 0,
    )


class AlreadyRunning(RuntimeError):
    """Another HA uses the same binding store."""


class HomeAgent:
    """One running HA (see the module docstring)."""

    def __init__(self, cfg: HaConfig, keys: KeyStore) -> None:
        self.cfg = cfg
        self.keys = keys
        self.ha = cfg.address
        self.cache = BindingCache(cache_config(cfg))
        self.dad = DadRunner(cfg.dad.transmits, cfg.dad.retrans_timer)
        self.announcer = Announcer(cfg.unsolicited_na.count, cfg.unsolicited_na.interval)
        self.dp = DataPlane(cfg.home_link, cfg.address, tunnel_check=cfg.tunnel_source_check)
        self.be_limit = TokenBucket(cfg.binding_errors_per_second, BE_BURST)
        self.counters = ShellCounters()
        self._malformed_log = LogThrottle()
        self.anycasts = {home_agents_anycast(p.prefix) for p in cfg.home_prefixes}
        self.started_wall = time.time()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ipr: AsyncIPRoute | None = None
        self._store: BindingStore | None = None
        self._receivers: list[Receiver] = []
        self._icmp: Receiver | None = None
        self._sender: Sender | None = None
        self._server: asyncio.AbstractServer | None = None
        self._db: dict[IPv6Address, tuple[BindingRecord, float] | None] = {}
        self._outbox: list[Outgoing] = []
        self._commit_handle: asyncio.Handle | None = None
        self._retries = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._dad_targets: dict[IPv6Address, tuple[IPv6Address, ...]] = {}
        self._groups: dict[IPv6Address, int] = {}
        self._group_cap = 1 << 30  # memberships the socket took before it refused one
        self._stop = asyncio.Event()
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------------------ lifecycle
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "HomeAgent.start has not run"
        return self._loop

    def _lock(self) -> None:
        """One HA per binding store: a second one would take the first one's kernel state for
        leftovers of a crash and remove it."""
        path = self.cfg.database.with_name(self.cfg.database.name + ".lock")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(f"another home agent holds {path}: not starting") from None
        self._lock_fd = fd

    async def start(self) -> None:
        self._lock()
        self._loop = asyncio.get_running_loop()
        self._ipr = AsyncIPRoute()
        for note in await self.dp.setup(self._ipr):
            log.warning("%s", note)
        store, rows, problems = BindingStore.open(self.cfg.database)
        self._store = store
        for p in problems:
            log.warning("%s", p)
        link = self.cfg.home_link
        # Room for a burst of a few thousand BUs (an MN pool registering, many MNs at once).
        r60 = Receiver(NH_DSTOPTS, rcvbuf=SIGNALLING_RCVBUF)
        r135 = Receiver(135)
        icmp = Receiver(58, icmp6_types=(ICMP_NS, ICMP_NA, ICMP_HAAD_REQUEST), hop_limit=True)
        self._receivers = [r60, r135, icmp]
        self._icmp = icmp
        for anycast in sorted(self.anycasts):
            icmp.join_anycast(anycast, self.dp.oif)
        self._sender = Sender(link)
        self.loop.add_reader(r60.fileno(), self._on_mobility, r60)
        self.loop.add_reader(r135.fileno(), self._on_mobility, r135)
        self.loop.add_reader(icmp.fileno(), self._on_icmp, icmp)
        if self.cfg.tunnel_source_check:
            r41 = Receiver(41)
            self._receivers.append(r41)
            self.loop.add_reader(r41.fileno(), self._on_diverted, r41)
        now, wall = self.loop.time(), time.time()
        restored = self.cache.restore(now, [row.at(wall) for row in rows])
        self._apply(restored, now, wall)
        self._commit()
        log.info(
            "home agent %s on %s: %d bindings restored from %s, serving %s",
            self.ha, link, len(self.cache), self.cfg.database,
            ", ".join(str(p.prefix) for p in self.cfg.home_prefixes),
        )  # fmt: skip
        await self._start_control()

    async def _start_control(self) -> None:
        path = self.cfg.control_socket
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        old = os.umask(0o077)
        try:
            self._server = await asyncio.start_unix_server(self._on_control, path=str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, stop cleanly."""
        try:
            await self.start()
        except AlreadyRunning:
            raise
        except BaseException:
            # Undo what the set-up did before it failed (each step tolerates absent state).
            await self.stop()
            raise
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Remove the kernel state; keep the persisted bindings for the next start."""
        log.info("stopping: removing routes, proxy entries, rules and the nft table")
        if self._loop is None:
            return
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(FileNotFoundError):
                self.cfg.control_socket.unlink()
        for r in self._receivers:
            self.loop.remove_reader(r.fileno())
        if self._timer is not None:
            self._timer.cancel()
        if self._commit_handle is not None:
            self._commit_handle.cancel()
            self._commit_handle = None
        self._flush_store()
        if self._ipr is not None:
            await self.dp.teardown(self._ipr)
            self._ipr.close()
        for r in self._receivers:
            r.close()
        if self._sender is not None:
            self._sender.close()
        if self._store is not None:
            self._store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        log.info("stopped with %d bindings persisted", len(self.cache))

    # ------------------------------------------------------------------------------ receiving
    def _on_mobility(self, sock: Receiver) -> None:
        now, wall = self.loop.time(), time.time()
        for pkt in sock.drain():
            if pkt.dst != self.ha:
                self.counters.not_for_us += 1
                continue
            try:
                d = decode_from(sock.proto, pkt.data, pkt.src, pkt.dst)
            except UnsupportedHeaderError:
                self._home_address_only(pkt.data, pkt.src, sock.proto, now, wall)
                continue
            except DecodeError as exc:
                self._malformed(now, pkt.src, sock.proto, exc)
                continue
            msg = d.message
            if isinstance(msg, BindingUpdate):
                alt = find_option(msg.options, AlternateCareofAddress)
                update = BindingUpdateIn(
                    src=pkt.src,
                    careof=alt.alternate_careof_address if alt is not None else pkt.src,
                    home_address=d.home_address or pkt.src,
                    has_home_address_option=d.home_address is not None,
                    bu=msg,
                    auth=authenticate(d, self.keys),
                    wall=wall,
                )
                self._apply(self.cache.on_binding_update(now, update), now, wall)
            elif isinstance(msg, MobilePrefixSolicitation) and d.home_address is not None:
                actions = self.cache.on_mobile_prefix_solicitation(
                    pkt.src, d.home_address, msg.identifier
                )
                self._apply(actions, now, wall)
            elif isinstance(msg, BindingAcknowledgement | BindingError):
                continue  # answers are never answered (no Binding Error ping-pong)
            elif d.mh is not None:
                # Any other Mobility Header (BRR, HoTI, CoTI, HoT, CoT, unknown types): this
                # HA is not a correspondent node; RFC 6275 §9.2 status 2 tells the sender so.
                self._apply(
                    self.cache.on_unknown_mobility_message(pkt.src, d.home_address), now, wall
                )
            elif d.home_address is not None and d.home_address not in self.cache.bindings:
                self._apply(self.cache.on_unbound_home_address(pkt.src, d.home_address), now, wall)
        self._kick()

    def _home_address_only(
        self, data: bytes, src: IPv6Address, proto: int, now: float, wall: float
    ) -> None:
        """A packet with a Home Address option whose upper layer the codec does not parse
        (TCP, UDP, ...): RFC 6275 §9.3.1 Binding Error if that home address is not bound."""
        if proto != NH_DSTOPTS:
            return
        try:
            _, hao, _ = decode_options_header(data, 0, len(data), destination=True)
        except DecodeError as exc:
            self._malformed(now, src, proto, exc)
            return
        if hao is not None and self.cfg.serves(hao.home_address) is not None:
            self._apply(self.cache.on_unbound_home_address(src, hao.home_address), now, wall)

    def _on_icmp(self, sock: Receiver) -> None:
        now, wall = self.loop.time(), time.time()
        for pkt in sock.drain():
            try:
                d = decode_from(58, pkt.data, pkt.src, pkt.dst, hop_limit=pkt.hop_limit)
            except DecodeError as exc:
                self._malformed(now, pkt.src, 58, exc)
                continue
            msg = d.message
            if isinstance(msg, NeighborAdvertisement | NeighborSolicitation):
                if pkt.hop_limit != ND_HOP_LIMIT or pkt.ifindex != self.dp.oif:
                    self.counters.bad_hop_limit += 1
                    continue
                if isinstance(msg, NeighborAdvertisement):
                    done = self.dad.on_neighbor_advertisement(msg.target_address)
                else:
                    done = self.dad.on_neighbor_solicitation(pkt.src, msg.target_address)
                for dd in done:
                    self._dad_done(now, wall, dd)
            elif isinstance(msg, HomeAgentAddressDiscoveryRequest) and pkt.dst in self.anycasts:
                self._apply(self.cache.on_haad_request(pkt.src, msg.identifier), now, wall)
        self._kick()

    def _malformed(self, now: float, src: IPv6Address, proto: int, exc: DecodeError) -> None:
        """Count a packet the codec refused; a flood of them is one warning per interval."""
        self.counters.decode_errors += 1
        what = f"dropped a malformed packet (next header {proto}) from {src}: {exc}"
        line = self._malformed_log.note(now, what)
        if line is not None:
            log.warning("%s", line)
        else:
            log.debug("%s", what)

    def _on_diverted(self, sock: Receiver) -> None:
        """Reverse-tunnelled packets no binding accepts (nft diverted them, rate-limited)."""
        now, wall = self.loop.time(), time.time()
        for pkt in sock.drain():
            data = pkt.data
            if len(data) < 40 or data[0] >> 4 != 6:
                continue
            inner_src = IPv6Address(data[8:24])
            if self.cfg.serves(inner_src) is None:
                self.counters.decode_errors += 1
                continue
            self._apply(self.cache.on_unbound_home_address(pkt.src, inner_src), now, wall)
        self._kick()

    # ------------------------------------------------------------------------------ actions
    def _apply(self, actions: Iterable[Action], now: float, wall: float) -> None:
        for a in actions:
            if isinstance(a, SendBindingAck | SendIcmp):
                self._outbox.append(a)
            elif isinstance(a, InstallBinding):
                self.dp.install(now, a)
                if a.new:
                    for na in self.announcer.announce(now, a.proxied):
                        self._outbox.append((self._na(na.target), ALL_NODES))
            elif isinstance(a, RemoveBinding):
                self.dp.remove(a.home_address, a.careof, a.proxied)
                self.announcer.cancel(a.proxied)
            elif isinstance(a, PersistBinding):
                self._db[a.record.home_address] = (a.record, wall + a.record.remaining)
            elif isinstance(a, ForgetBinding):
                self._db[a.home_address] = None
            elif isinstance(a, SendBindingError):
                if self.be_limit.allow(now):
                    self._outbox.append(a)
                else:
                    self.counters.be_suppressed += 1
            elif isinstance(a, StartDad):
                self._start_dad(now, wall, a)
            elif isinstance(a, CancelDad):
                self.dad.cancel(a.home_address)
                self._leave(self._dad_targets.pop(a.home_address, ()))
            elif isinstance(a, Log):
                log.log(logging.getLevelName(a.level.upper()), "%s", a.message)

    def _start_dad(self, now: float, wall: float, a: StartDad) -> None:
        self._dad_targets[a.home_address] = a.targets
        self._join(a.targets)
        sends, done = self.dad.start(now, a.home_address, a.targets)
        for s in sends:
            self._send_ns(s.target)
        for dd in done:
            self._dad_done(now, wall, dd)

    def _dad_done(self, now: float, wall: float, done: DadDone) -> None:
        self._leave(self._dad_targets.pop(done.home_address, ()))
        if done.duplicate is not None:
            log.warning(
                "DAD for %s: %s is in use on the home link", done.home_address, done.duplicate
            )
        self._apply(
            self.cache.on_dad_result(now, done.home_address, done.duplicate is not None), now, wall
        )

    def _join(self, targets: tuple[IPv6Address, ...]) -> None:
        """Listen on the solicited-node groups of addresses under DAD, where another node's DAD
        solicitation for the same address would arrive (RFC 4862 §5.4.3). A defender's NA goes
        to all-nodes and is heard anyway, so a refused join (a socket holds a bounded number of
        memberships: net.core.optmem_max) only loses that rarer case; it is counted."""
        assert self._icmp is not None
        for t in targets:
            group = solicited_node_multicast(t)
            n = self._groups.get(group, 0)
            if n == 0:
                if len(self._groups) >= self._group_cap:
                    self.counters.group_join_failures += 1  # full: do not ask again
                    continue
                try:
                    self._icmp.join_group(group, self.dp.oif)
                except KernelRequestError as exc:
                    self.counters.group_join_failures += 1
                    self._group_cap = len(self._groups)
                    log.debug(
                        "%s (further joins skipped while %d are held)", exc, len(self._groups)
                    )
                    continue
            self._groups[group] = n + 1
        self.counters.groups = len(self._groups)

    def _leave(self, targets: tuple[IPv6Address, ...]) -> None:
        assert self._icmp is not None
        for t in targets:
            group = solicited_node_multicast(t)
            n = self._groups.get(group, 0)
            if n <= 1:
                self._groups.pop(group, None)
                if n == 1:
                    self._icmp.leave_group(group, self.dp.oif)
            else:
                self._groups[group] = n - 1
        self.counters.groups = len(self._groups)

    # ------------------------------------------------------------------------------ sending
    def _send(self, packet: bytes, dst: IPv6Address) -> None:
        assert self._sender is not None
        err = self._sender.send(packet, dst)
        if err is not None:
            self.counters.send_errors += 1
            log.debug("%s", err)

    def _send_ns(self, target: IPv6Address) -> None:
        """RFC 4862 §5.4.2: from ::, to the solicited-node group, no link-layer option."""
        ns = NeighborSolicitation(target_address=target, source_link_layer_address=None)
        group = solicited_node_multicast(target)
        self._send(build_icmpv6_packet(UNSPECIFIED, group, ns, hop_limit=ND_HOP_LIMIT), group)
        self.counters.ns_sent += 1

    def _na(self, target: IPv6Address) -> bytes:
        """RFC 6275 §10.4.1: unsolicited, Override set, the HA's link-layer address."""
        na = NeighborAdvertisement(
            router=False,
            solicited=False,
            override=True,
            target_address=target,
            target_link_layer_address=self.dp.mac or None,
        )
        self.counters.na_sent += 1
        return build_icmpv6_packet(self.ha, ALL_NODES, na, hop_limit=ND_HOP_LIMIT)

    def _flush_outbox(self) -> None:
        out, self._outbox = self._outbox, []
        for item in out:
            if isinstance(item, tuple):
                self._send(*item)
            elif isinstance(item, SendBindingAck):
                key = self.keys.get(item.sign_nai) if item.sign_nai is not None else None
                packet = build_mh_packet(
                    self.ha,
                    item.dst,
                    item.ba,
                    rh2_address=item.home_address if item.rh2 else None,
                    auth=key,
                    hop_limit=SIGNALLING_HOP_LIMIT,
                )
                self._send(packet, item.dst)
            elif isinstance(item, SendBindingError):
                self._send(build_mh_packet(self.ha, item.dst, item.be), item.dst)
                self.cache.counters.be_sent += 1
            else:
                packet = build_icmpv6_packet(
                    self.ha, item.dst, item.message, rh2_address=item.rh2,
                    hop_limit=SIGNALLING_HOP_LIMIT,
                )  # fmt: skip
                self._send(packet, item.dst)

    # ------------------------------------------------------------------------------ committing
    def _kick(self) -> None:
        if self._commit_handle is None:
            self._commit_handle = self.loop.call_soon(self._commit)

    def _commit(self) -> None:
        """Kernel changes, then the store, then the packets of this group (module docstring)."""
        self._commit_handle = None
        retry, failed = self.dp.commit()
        if failed:
            self._fail(failed)
        if retry:
            self._retries += 1
            if self._retries <= ENOMEM_RETRIES:
                self._commit_handle = self.loop.call_later(RETRY_DELAY, self._commit)
                return
            self.dp.routes.drop(retry)  # given up on: those bindings are aborted below
            self._fail(retry)
        self._retries = 0
        self._flush_store()
        self._flush_outbox()
        self._reschedule()

    def _fail(self, failures: list[Failure]) -> None:
        """Kernel refusals: removals of what is already gone are fine; a binding whose route or
        proxy could not be installed is dropped and its BA becomes status 130."""
        now, wall = self.loop.time(), time.time()
        aborted: set[IPv6Address] = set()
        for f in failures:
            if f.what.startswith(("route del", "neigh del")):
                log.debug("kernel: %s (already gone)", f)
                continue
            self.counters.kernel_failures += 1
            log.error("kernel refused: %s", f)
            hoa = f.subject
            if hoa is not None and hoa not in aborted and hoa in self.cache.bindings:
                aborted.add(hoa)
                self._apply(self.cache.abort(now, hoa, f"kernel refused: {f}"), now, wall)
        if aborted:
            self.dp.commit()
            self._outbox = [self._downgrade(o, aborted) for o in self._outbox]

    @staticmethod
    def _downgrade(item: Outgoing, aborted: set[IPv6Address]) -> Outgoing:
        if not isinstance(item, SendBindingAck) or item.home_address not in aborted:
            return item
        if item.ba.status >= BindingAckStatus.REASON_UNSPECIFIED:
            return item
        options = tuple(o for o in item.ba.options if not isinstance(o, BindingRefreshAdvice))
        ba = dataclasses.replace(
            item.ba, status=BindingAckStatus.INSUFFICIENT_RESOURCES, lifetime=0, options=options
        )
        return dataclasses.replace(item, ba=ba)

    def _flush_store(self) -> None:
        if not self._db or self._store is None:
            return
        pending, self._db = self._db, {}
        upserts = [v for v in pending.values() if v is not None]
        deletes = [k for k, v in pending.items() if v is None]
        try:
            self._store.apply(upserts, deletes)
        except sqlite3.Error as exc:
            self.counters.store_errors += 1
            log.error(
                "binding store %s: write failed (%s): %d changes not persisted",
                self.cfg.database, exc, len(pending),
            )  # fmt: skip

    # ------------------------------------------------------------------------------ timers
    def _reschedule(self) -> None:
        candidates = [
            d
            for d in (
                self.cache.next_deadline(),
                self.dad.next_deadline(),
                self.announcer.next_deadline(),
                self.dp.next_retire(),
            )
            if d is not None
        ]
        if not candidates:
            return
        at = min(candidates)
        if self._timer is not None and not self._timer.cancelled():
            if self._timer_at <= at:
                return  # an earlier wake-up is already due; it reschedules when it fires
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now, wall = self.loop.time(), time.time()
        sends, done = self.dad.tick(now)
        for s in sends:
            self._send_ns(s.target)
        for dd in done:
            self._dad_done(now, wall, dd)
        for na in self.announcer.tick(now):
            self._outbox.append((self._na(na.target), ALL_NODES))
        self._apply(self.cache.tick(now), now, wall)
        self.dp.retire(now)
        if self._commit_handle is not None:
            self._commit_handle.cancel()
        self._commit()

    # ------------------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        now = self.loop.time()
        bindings = sorted(self.cache.records(now), key=lambda r: int(r.home_address))
        counters: dict[str, Any] = self.cache.counters.as_dict()
        counters.update(dataclasses.asdict(self.counters))
        counters["bindings"] = len(bindings)
        counters["dad_running"] = len(self.dad)
        counters["send_errors"] = self.counters.send_errors
        counters["netlink_messages"] = self.dp.routes.messages_sent
        counters["netlink_commits"] = self.dp.routes.commits
        counters["enomem_retries"] = self.dp.enomem_retries
        return {
            "home_agent": str(self.ha),
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started_wall, 1),
            "config": self.cfg.describe(),
            "counters": counters,
            "pending_dad": sorted(str(h) for h in self.cache.pending),
            "bindings": [
                {
                    "home_address": str(r.home_address),
                    "careof": str(r.careof),
                    "nai": r.nai,
                    "sequence": r.sequence,
                    "lifetime": r.lifetime,
                    "remaining": round(r.remaining, 1),
                    "link_local": r.link_local,
                }
                for r in bindings
            ],
        }

    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), CONTROL_TIMEOUT)
            try:
                request = json.loads(line or b"{}")
                command = request.get("command") if isinstance(request, dict) else None
            except (ValueError, RecursionError):  # not JSON, a number too long, nested too deep
                command = None
            if command == "status":
                reply: dict[str, Any] = {"ok": True, "status": self.status()}
            else:
                reply = {"ok": False, "error": "unknown command (known: status)"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("control connection: %s", exc)
        finally:
            writer.close()
