"""The os-ken application: the only code that touches os-ken events and sends OpenFlow.

Owns: the connection to the MN's bridge (accepting only the configured datapath and checking
its ports), one handler per OpenFlow event, the single send path (`_send`: attach an xid,
encode, bundle multi-flow changes, one write per batch), switch requests with deadlines
(flow/port stats, barriers; a failure names the request), reconciliation on every (re)connect,
and the green threads for the logic's deadline timer, stats polling, the canary check,
debounced persistence. Agent events come in through `agent_event` (called by
the agent link's reader), agent requests go out through the agent link's queue. The agent and
the switch may connect in either order: the logic reconciles HoA claims once it has both.
Must not: decide anything. Every handler looks up the logic, calls it with `now`
(time.monotonic()) and sends what it returns, in order (Faucet's faucet.py/valve_ryuapp.py).

Concurrency: os-ken runs each app's handlers in one green thread; the timers, the agent reader
and the control socket run in others. All of them go through `call`, which holds one lock
while the logic runs and its messages are queued, so the messages of one logic call are never
interleaved with another's.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, cast

from eventlet import tpool
from os_ken.base import app_manager
from os_ken.controller import handler as os_ken_handler
from os_ken.controller import ofp_event
from os_ken.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sdnmip.controller import ofmsg, ofstats, ofwire
from sdnmip.controller import pipeline as pl
from sdnmip.controller.adopt import AdoptionReport
from sdnmip.controller.bridge import BridgePorts, BridgeSpec
from sdnmip.controller.config import AgentEvent, BindHoas, ClaimHoa, ReleaseHoa
from sdnmip.controller.facade import SwitchRequestFailed
from sdnmip.controller.logic import MnLogic
from sdnmip.controller.persist import SnapshotStore
from sdnmip.controller.uplinks import PortCounters

log = logging.getLogger("sdnmip.controller")
ofstats.install()  # counter polls must not parse every rule's match (see ofstats.py)

AGENT_REQUESTS = (ClaimHoa, BindHoas, ReleaseHoa)
RECENT_MESSAGES = 4096  # sent messages remembered by xid, so that an error can name its request
# Larger batches (a reconciliation after lost tables) go without a bundle, in the logic's order
# (adds before deletes): OVS holds a whole bundle in memory and applies it in one go.
MAX_BUNDLE = 4096
SWITCH_FLOW_MODS_PER_S = 5000.0  # a conservative rate for deadlines of big batches
PERSIST_SHARE = 20  # snapshot writes take at most 1/20 of the controller's time
FLUSH_AT = 64  # encoded messages waiting before they are handed over at once (see _flush)
MAX_XID = 0xFFFFFFFF
LOGGED_IDS = 20  # flow ids named in one log line
# The switch's table-miss rule of the ingress table: if a stats poll does not find it, the
# switch lost our rules (ovs-vswitchd restarted without a reconnect, or someone flushed them).
CANARY = (int(pl.TableId.INGRESS), pl.PRIO_MISS, pl.cookie(pl.CookieKind.STATIC))


F = TypeVar("F", bound=Callable[..., None])


def _on(ev_cls: Any, dispatchers: Any) -> Callable[[F], F]:
    """os-ken's set_ev_cls with a type (os-ken ships none)."""
    return cast(Callable[[F], F], set_ev_cls(ev_cls, dispatchers))


class AgentLinkLike(Protocol):
    connected: bool

    def start(self, deliver: Callable[[AgentEvent], None]) -> None: ...

    def submit(self, request: Any) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Timing:
    request_timeout: float = 10.0  # any switch request (stats, barrier)
    stats_interval: float = 10.0  # flow and port counters, and the canary check
    persist_delay: float = 1.0  # debounce of snapshot writes


@dataclass
class Runtime:
    """Everything the app needs, built by the CLI before os-ken starts."""

    logic: MnLogic
    spec: BridgeSpec
    ports: BridgePorts
    store: SnapshotStore
    agent: AgentLinkLike
    timing: Timing = field(default_factory=Timing)
    on_started: Callable[[MnControllerApp], None] | None = None
    # Told the seconds from a packet-in that creates a flow to its messages being written
    # (the northbound's flow-setup histogram).
    flow_setup: Callable[[float], None] | None = None


class _Pending:
    """A request waiting for its reply (multipart parts collected until the last one)."""

    __slots__ = ("done", "errors", "parts", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        self.parts: list[Any] = []
        self.errors: list[str] = []
        self.done = hub.Event()


def describe(msg: Any) -> str:
    """A message as a log line: its kind and the fields that identify it."""
    if isinstance(msg, parser.OFPFlowMod):
        command = {
            ofp.OFPFC_ADD: "add",
            ofp.OFPFC_MODIFY: "modify",
            ofp.OFPFC_MODIFY_STRICT: "modify-strict",
            ofp.OFPFC_DELETE: "delete",
            ofp.OFPFC_DELETE_STRICT: "delete-strict",
        }.get(msg.command, str(msg.command))
        fields = ",".join(f"{k}={v}" for k, v in ofmsg.match_items(msg.match))
        return (
            f"flow-mod {command} table={msg.table_id} priority={msg.priority} "
            f"cookie={msg.cookie:#x} match[{fields}]"
        )
    if isinstance(msg, parser.OFPPacketOut):
        return f"packet-out ({len(msg.data or b'')} bytes)"
    if isinstance(msg, parser.OFPFlowStatsRequest):
        return (
            f"flow-stats request table={msg.table_id} cookie={msg.cookie:#x}/{msg.cookie_mask:#x}"
        )
    if isinstance(msg, parser.ONFBundleCtrlMsg):
        return f"bundle {msg.bundle_id} control {msg.type}"
    return type(msg).__name__


def _error_text(err: Any) -> str:
    try:
        kind = ofp.ofp_error_type_to_str(err.type)
        code = ofp.ofp_error_code_to_str(err.type, err.code)
    except (KeyError, AttributeError):
        kind, code = str(err.type), str(getattr(err, "code", "?"))
    return f"{kind} / {code}"


class MnControllerApp(app_manager.OSKenApp):  # type: ignore[misc]
    OFP_VERSIONS: ClassVar[list[int]] = [ofp.OFP_VERSION]

    def __init__(self, *args: Any, sdnmip: Runtime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rt = sdnmip
        self.logic = sdnmip.logic
        self.timing = sdnmip.timing
        self.dp: Any = None  # the connected os-ken Datapath, or None
        self.generation = 0  # connections so far: a reconcile of an older one stops
        self.reconciled = False
        self.last_reconcile: dict[str, float] = {}  # rules found, changes sent, milliseconds
        self.counters: Counter[str] = Counter()
        self._lock = hub.Semaphore(1)
        self._xid = 0
        self._bundle_id = 0
        # Ring of (xid, message) of the last messages sent, indexed by xid.
        self._recent: list[tuple[int, Any] | None] = [None] * RECENT_MESSAGES
        self._pending: dict[int, _Pending] = {}
        self._errors: OrderedDict[int, str] = OrderedDict()
        self._out: list[bytes] = []  # encoded messages not yet handed to os-ken (see _flush)
        self._out_dp: Any = None
        self._flush_wanted = hub.Event()
        self._wake = hub.Event()  # the logic's next deadline changed
        self._armed: float | None = None
        self._dirty = hub.Event()  # the logic changed since the last snapshot
        self._stopping = False
        self._new_flow = False  # the last timed packet-in created a flow
        self.fatal: str | None = None  # set when the process must restart (ports changed)
        self.fatal_event = hub.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Any:
        thread = super().start()
        self._handle_in_receive_loop()
        for loop in (self._flusher, self._deadline_loop, self._stats_loop, self._persist_loop):
            self.threads.append(hub.spawn(loop))
        self.rt.agent.start(self.agent_event)
        if self.rt.on_started is not None:
            self.rt.on_started(self)
        return thread

    def _handle_in_receive_loop(self) -> None:
        """Handle the switch's messages in the green thread that reads them, in the order they
        arrive (a flow-removed never overtakes the packet-in after it), without the hop through
        this app's event queue, and with back-pressure on the switch when we fall behind.

        os-ken calls the handlers registered on its OpenFlow brick ("ofp_event") right in each
        datapath's receive loop; an exception there would end the connection, so each handler
        is wrapped to log it (with its traceback) and count it instead.
        """
        brick = app_manager.lookup_service_brick("ofp_event")
        handlers = {
            ofp_event.EventOFPPacketIn: self._packet_in,
            ofp_event.EventOFPFlowRemoved: self._flow_removed,
            ofp_event.EventOFPPortStatus: self._port_status,
            ofp_event.EventOFPErrorMsg: self._error,
            ofp_event.EventOFPFlowStatsReply: self._flow_stats_reply,
            ofp_event.EventOFPPortStatsReply: self._port_stats_reply,
            ofp_event.EventOFPBarrierReply: self._barrier_reply,
        }
        for ev_cls, fn in handlers.items():
            brick.register_handler(ev_cls, self._guarded(ev_cls, fn))

    def _guarded(self, ev_cls: Any, fn: Callable[[Any], None]) -> Callable[[Any], None]:
        def handle(ev: Any) -> None:
            try:
                fn(ev)
            except Exception:  # logged with its traceback (os-ken would drop the connection)
                self.counters["handler_errors"] += 1
                log.exception("bug: handling %s failed", ev_cls.__name__)

        # os-ken's receive loop reads the states a handler wants from `callers`.
        handle.callers = {  # type: ignore[attr-defined]
            ev_cls: os_ken_handler._Caller([MAIN_DISPATCHER], None)
        }
        return handle

    def shutdown(self) -> None:
        """Stop taking events and write the final snapshot (the switch keeps its rules)."""
        self._stopping = True
        self.rt.agent.close()
        with self._lock:
            data = self.rt.store.encode(self.logic.snapshot())
        self.rt.store.write(data)
        log.info(
            "snapshot written to %s; the switch keeps forwarding (fail_mode secure)",
            self.rt.store.path,
        )

    def die(self, why: str) -> None:
        """Ask the process to exit with an error (the supervisor restarts it)."""
        log.error("%s", why)
        self.fatal = why
        self.fatal_event.set()

    # -- the one way into the logic -----------------------------------------------------------

    def call(self, fn: Callable[..., list[Any]], *args: Any, atomic: bool = False) -> list[Any]:
        """Run one logic method with `now`, send what it returns in order; returns the actions."""
        with self._lock:
            actions = fn(time.monotonic(), *args)
            if actions:
                self._dispatch(actions, atomic)
            self._changed()
        return actions

    def read(self, fn: Callable[[], Any]) -> Any:
        """Run a read-only function of the logic under the same lock."""
        with self._lock:
            return fn()

    def _dispatch(self, actions: Sequence[Any], atomic: bool) -> list[int]:
        messages = []
        for a in actions:
            if isinstance(a, AGENT_REQUESTS):
                self.rt.agent.submit(a)
            else:
                messages.append(a)
        return self._send(messages, atomic)

    def _changed(self) -> None:
        self._dirty.set()
        deadline = self.logic.next_deadline()
        if deadline != self._armed:
            self._wake.set()

    # -- the one place that sends -------------------------------------------------------------

    def _next_xid(self, msg: Any) -> int:
        self._xid = self._xid % MAX_XID + 1
        self._recent[self._xid % RECENT_MESSAGES] = (self._xid, msg)
        return self._xid

    def sent(self, xid: int) -> Any:
        """The message sent with `xid`, if it is among the last RECENT_MESSAGES."""
        entry = self._recent[xid % RECENT_MESSAGES]
        return entry[1] if entry is not None and entry[0] == xid else None

    def _send(self, messages: Sequence[Any], atomic: bool = False) -> list[int]:
        """Send `messages` in order as one write; flow-mods in one bundle when `atomic` and
        there are several. Returns the xids used (for barriers and error checks)."""
        dp = self.dp
        if not messages:
            return []
        if dp is None:
            self.counters["unsent_no_switch"] += len(messages)
            return []
        bufs = []
        xids = []
        flow_mods = [m for m in messages if type(m) is parser.OFPFlowMod]
        if atomic and 1 < len(flow_mods) <= MAX_BUNDLE:
            self._bundle_id = self._bundle_id % MAX_XID + 1
            bid = self._bundle_id
            opening = ofmsg.bundle_control(bid, ofmsg.BUNDLE_OPEN)
            xid = self._next_xid(opening)
            bufs.append(ofwire.encode(opening, xid))
            for m in flow_mods:
                xid = self._next_xid(m)
                xids.append(xid)
                bufs.append(ofwire.bundle_add(bid, ofmsg.BUNDLE_FLAGS, m, xid))
            commit = ofmsg.bundle_control(bid, ofmsg.BUNDLE_COMMIT)
            xid = self._next_xid(commit)
            xids.append(xid)
            bufs.append(ofwire.encode(commit, xid))
            rest = [m for m in messages if type(m) is not parser.OFPFlowMod]
            self.counters["bundles"] += 1
        else:
            rest = list(messages)
        for m in rest:
            xid = self._next_xid(m)
            xids.append(xid)
            bufs.append(ofwire.encode(m, xid))
        self.counters["messages_sent"] += len(bufs)
        if self._out_dp is not dp:
            self._flush()  # what was queued for a connection that has gone
            self._out_dp = dp
        self._out += bufs
        if len(self._out) >= FLUSH_AT:
            self._flush()
        else:
            self._flush_wanted.set()
        return xids

    def _flush(self) -> None:
        """Hand everything queued to os-ken's send loop as one write.

        Messages of consecutive logic calls (a burst of packet-ins read in one go) leave
        together: one queue hand-over and one system call instead of one per packet-in. The
        flusher thread runs as soon as the receive loop has nothing more to read, so a lone
        packet-in is answered without delay.
        """
        if not self._out:
            return
        dp, out = self._out_dp, self._out
        self._out = []
        if dp is not None and not dp.send(b"".join(out)):
            self.counters["unsent_closing"] += len(out)

    def _flusher(self) -> None:
        while True:
            self._flush_wanted.wait()
            self._flush_wanted.clear()
            self._flush()

    # -- switch requests with deadlines -------------------------------------------------------

    def _request(self, msg: Any, timeout: float) -> list[Any]:
        """Send a multipart request; return every part of its reply, or raise naming it."""
        what = describe(msg)
        with self._lock:
            xids = self._send([msg])
            if not xids:
                raise SwitchRequestFailed(f"{what}: no switch connected")
            pending = self._pending[xids[0]] = _Pending(what)
            self._flush()
        try:
            if not pending.done.wait(timeout):
                raise SwitchRequestFailed(f"{what}: no complete reply within {timeout:g} s")
        finally:
            self._pending.pop(xids[0], None)
        if pending.errors:
            raise SwitchRequestFailed(f"{what}: {'; '.join(pending.errors)}")
        return pending.parts

    def _barrier(self, xids: Sequence[int], what: str, timeout: float) -> None:
        """Wait until the switch has processed everything sent so far; raise if any of `xids`
        (a batch sent before) got an error."""
        self._request(ofmsg.barrier(), timeout)
        failed = [f"{describe(self.sent(x))}: {self._errors[x]}" for x in xids if x in self._errors]
        if failed:
            raise SwitchRequestFailed(f"{what}: {len(failed)} message(s) refused: {failed[0]}")

    def _wake_pending(self, why: str) -> None:
        for p in self._pending.values():
            p.errors.append(why)
            p.done.set()

    # -- connection ---------------------------------------------------------------------------

    @_on(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev: Any) -> None:
        dp = ev.datapath
        if ev.state == MAIN_DISPATCHER:
            self._connected(dp)
        elif ev.state == DEAD_DISPATCHER and dp is self.dp:
            log.warning(
                "switch %016x disconnected; it keeps forwarding with the rules it has", dp.id or 0
            )
            self.dp = None
            self.reconciled = False
            self._wake_pending("the switch disconnected")

    def _connected(self, dp: Any) -> None:
        if dp.id != self.rt.ports.datapath_id:
            log.warning(
                "ignoring datapath %016x: expected bridge %s (%016x)",
                dp.id or 0,
                self.rt.spec.name,
                self.rt.ports.datapath_id,
            )
            return
        problem = self._check_ports(dp)
        if problem:
            self.die(f"bridge {self.rt.spec.name} changed since start ({problem}): restarting")
            return
        if self.dp is not None and self.dp is not dp:
            self._wake_pending("the switch reconnected")
        self.dp = dp
        self.generation += 1
        self.reconciled = False
        self.counters["connections"] += 1
        log.info(
            "switch %016x connected (connection %d): reconciling",
            dp.id,
            self.counters["connections"],
        )
        with self._lock:
            self._send([ofmsg.set_config()])
        hub.spawn(self._reconcile, self.generation)

    def _check_ports(self, dp: Any) -> str | None:
        """Do the switch's ports still have the numbers and MACs the logic was built with?"""
        want: dict[int, tuple[str, str | None]] = {
            self.rt.ports.hoa_port: (self.rt.spec.hoa_port, self.rt.ports.hoa_mac)
        }
        for spec, up in zip(self.rt.spec.uplinks, self.rt.ports.uplinks, strict=True):
            want[up.phys_port] = (spec.port, None)
            want[up.tun_port] = (spec.kernel_port, up.tun_mac)
        for port_no, (name, mac) in want.items():
            port = dp.ports.get(port_no)
            if port is None:
                return f"no port {port_no} ({name})"
            got = port.name.decode() if isinstance(port.name, bytes) else str(port.name)
            if got != name:
                return f"port {port_no} is {got}, not {name}"
            if mac is not None and str(port.hw_addr).lower() != mac.lower():
                return f"port {name} has MAC {port.hw_addr}, not {mac}"
        return None

    def _reconcile(self, generation: int) -> None:
        """Make the switch hold exactly the logic's rules (every (re)connect and on a lost
        canary). On failure, drop the connection: the switch reconnects and we start over."""
        dp = self.dp
        t0 = time.monotonic()
        try:
            with self._lock:
                asks = self.logic.datapath_up(time.monotonic())
            dumps = [m for m in asks if isinstance(m, parser.OFPFlowStatsRequest)]
            if len(dumps) != 1:
                raise AssertionError(f"datapath_up must ask for one flow dump, got {asks}")
            with self._lock:
                self._dispatch([m for m in asks if m is not dumps[0]], atomic=False)
            parts = self._request(dumps[0], self.timing.request_timeout)
            if generation != self.generation:
                return
            dump = [ofmsg.LazyFlowStat(s) for s in parts]
            with self._lock:
                actions = self.logic.reconcile(time.monotonic(), dump)
                adoption = self.logic.adoption
                xids = self._dispatch(actions, atomic=True)
                self._changed()
            _log_adoption(adoption)
            # OVS applies some 10,000 flow-mods per second on one core: allow for that.
            wait = self.timing.request_timeout + len(xids) / SWITCH_FLOW_MODS_PER_S
            self._barrier(xids, "reconciliation", wait)
            for up in self.rt.ports.uplinks:
                port = dp.ports.get(up.phys_port)
                if port is not None:
                    self.call(self.logic.port_status, up.phys_port, _link_up(port), atomic=True)
        except SwitchRequestFailed as exc:
            if generation == self.generation and dp is self.dp:
                log.error("reconciliation failed: %s; dropping the connection", exc)
                dp.close()
            return
        if generation == self.generation:
            self.reconciled = True
            self.counters["reconciled"] += 1
            self.last_reconcile = {
                "rules": len(dump),
                "changes": len(actions),
                "adopted": len(adoption.adopted),
                "ms": round((time.monotonic() - t0) * 1e3, 1),
            }
            log.info(
                "reconciled in %.0f ms: %d rules on the switch, %d changes, %d flows",
                (time.monotonic() - t0) * 1e3,
                len(dump),
                len(actions),
                len(self.logic.flows),
            )

    # -- OpenFlow events ----------------------------------------------------------------------

    def _packet_in(self, ev: Any) -> None:
        msg = ev.msg
        if msg.datapath is not self.dp:
            return
        self.counters["packet_ins"] += 1
        if self.rt.flow_setup is None:
            self.call(self.logic.packet_in, msg.match["in_port"], msg.table_id, msg.data)
            return
        t0 = time.monotonic()
        self.call(self._packet_in_timed, msg.match["in_port"], msg.table_id, msg.data)
        if self._new_flow:
            self.rt.flow_setup(time.monotonic() - t0)

    def _packet_in_timed(self, now: float, in_port: int, table_id: int, data: bytes) -> list[Any]:
        """packet_in, noting (under the lock) whether it created a flow."""
        before = self.logic.stats["flows_created"]
        actions = self.logic.packet_in(now, in_port, table_id, data)
        self._new_flow = self.logic.stats["flows_created"] != before
        return actions

    def _flow_removed(self, ev: Any) -> None:
        msg = ev.msg
        if msg.datapath is not self.dp:
            return
        self.call(self.logic.flow_removed, msg.cookie, msg.reason, msg.packet_count, msg.byte_count)

    def _port_status(self, ev: Any) -> None:
        msg = ev.msg
        if msg.datapath is not self.dp:
            return
        up = msg.reason != ofp.OFPPR_DELETE and _link_up(msg.desc)
        self.call(self.logic.port_status, msg.desc.port_no, up, atomic=True)

    def _error(self, ev: Any) -> None:
        msg = ev.msg
        text = _error_text(msg)
        self.counters["switch_errors"] += 1
        self._errors[msg.xid] = text
        if len(self._errors) > RECENT_MESSAGES:
            self._errors.popitem(last=False)
        request = self.sent(msg.xid)
        log.error("switch refused %s: %s", describe(request) if request else f"xid {msg.xid}", text)
        pending = self._pending.get(msg.xid)
        if pending is not None:
            pending.errors.append(text)
            pending.done.set()

    def _reply(self, msg: Any, more: bool = False) -> None:
        pending = self._pending.get(msg.xid)
        if pending is None:
            return
        pending.parts.extend(getattr(msg, "body", ()) or ())
        if not more:
            pending.done.set()

    def _flow_stats_reply(self, ev: Any) -> None:
        self._reply(ev.msg, bool(ev.msg.flags & ofp.OFPMPF_REPLY_MORE))

    def _port_stats_reply(self, ev: Any) -> None:
        self._reply(ev.msg, bool(ev.msg.flags & ofp.OFPMPF_REPLY_MORE))

    def _barrier_reply(self, ev: Any) -> None:
        self._reply(ev.msg)

    # -- agent --------------------------------------------------------------------------------

    def agent_event(self, event: AgentEvent) -> None:
        """An event from the agent (called by the agent link's reader thread)."""
        if self._stopping:
            return
        self.counters["agent_events"] += 1
        self.call(self.logic.agent_event, event, atomic=True)

    # -- timers -------------------------------------------------------------------------------

    def _deadline_loop(self) -> None:
        """Run the logic's `tick` when its next deadline comes (re-armed when it changes)."""
        while True:
            with self._lock:
                deadline = self._armed = self.logic.next_deadline()
            self._wake.clear()
            if deadline is None:
                self._wake.wait()
            else:
                left = deadline - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
            if deadline is not None and time.monotonic() >= deadline:
                self.call(self.logic.tick, atomic=True)

    def _stats_loop(self) -> None:
        while True:
            hub.sleep(self.timing.stats_interval)
            if self.dp is None or not self.reconciled:
                continue
            try:
                self.poll_stats()
            except SwitchRequestFailed as exc:
                log.warning("stats poll failed: %s", exc)

    def poll_stats(self) -> None:
        """Read flow and port counters into the logic; reconcile if the canary rule is gone."""
        mine = pl.COOKIE_PREFIX << pl.COOKIE_PREFIX_SHIFT
        parts = self._request(
            ofmsg.flow_stats_request(mine, pl.COOKIE_PREFIX_MASK), self.timing.request_timeout
        )
        stats = [ofmsg.flow_counters(s) for s in parts]
        if not any((s.table_id, s.priority, s.cookie) == CANARY for s in stats):
            self.counters["canary_lost"] += 1
            log.warning("the switch lost our rules (canary rule gone): reconciling")
            hub.spawn(self._reconcile, self.generation)
            return
        now = time.monotonic()
        with self._lock:
            self.logic.flow_stats(now, stats)
        ports = self._request(ofmsg.port_stats_request(), self.timing.request_timeout)
        counters = [PortCounters(p.port_no, p.rx_bytes, p.tx_bytes) for p in ports]
        with self._lock:
            self.logic.port_stats(time.monotonic(), counters)

    def _persist_loop(self) -> None:
        """Write the logic's snapshot while it changes: at most once per `persist_delay`, and
        never taking more than 1/PERSIST_SHARE of the time (a snapshot of many thousand flows
        takes a good fraction of a second). A clean stop always writes the last state."""
        spent = 0.0
        while True:
            self._dirty.wait()
            hub.sleep(max(self.timing.persist_delay, PERSIST_SHARE * spent))
            self._dirty.clear()
            if self._stopping:
                return
            t0 = time.monotonic()
            with self._lock:
                snap = self.logic.snapshot()
            parts = []
            for part in self.rt.store.encode_parts(snap):
                parts.append(part)
                hub.sleep(0)  # packet-ins go first: encoding many flows takes milliseconds
            # fsync blocks the whole process: do it in a real thread.
            tpool.execute(self.rt.store.write, b"".join(parts))
            spent = time.monotonic() - t0
            self.counters["snapshots_written"] += 1


def _log_adoption(report: AdoptionReport) -> None:
    """Say which flows the reconciliation took over from the switch, and which rules with our
    cookie it deleted instead, with the reason (the logic's adopt.py)."""
    if report.adopted:
        log.info(
            "adopted %d flows created after the last snapshot: %s",
            len(report.adopted),
            ", ".join(map(str, report.adopted[:LOGGED_IDS]))
            + (", ..." if len(report.adopted) > LOGGED_IDS else ""),
        )
    for fid in report.superseded:
        log.info("flow %d ended: an adopted flow has its 5-tuple", fid)
    for r in report.rejected:
        log.warning("deleting the rules of unknown flow %d: %s", r.flow_id, r.reason)


def _link_up(port: Any) -> bool:
    return not (port.state & ofp.OFPPS_LINK_DOWN or port.config & ofp.OFPPC_PORT_DOWN)
