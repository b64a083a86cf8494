"""The controller's pure logic for one MN bridge (Faucet valve.py style).

Owns: the Flow Mapping Table and the controller's Home Address view at run time, and every
decision the controller makes: classify a packet-in into a flow (Data Flow Separator), place a
new flow (policy engine + Figure 6/5), install its two rules and re-send its first packet, notice
its end (TCP FIN/RST after a linger, idle timeouts of both rules, explicit removal) and release
its HoA, move flows (one HoA at a time, make-before-break), rescue flows of a dead uplink (all at
once), fail back to an uplink once it has been back for `failback_after`, re-steer on policy
changes, keep counters and rates, reconcile the switch after a
controller restart (adopting flows created after the last snapshot), and reconcile its HoA
claims with the agent's.
Must not: do I/O, read clocks, or import the os-ken event framework. Every method takes `now`
and parsed facts, and returns a list of actions: OpenFlow messages (datapath=None, from
ofmsg/pipeline) and agent requests (sdnmip.controller.config.ClaimHoa/BindHoas/ReleaseHoa).
The shell sends them in order. User mistakes (unknown flow, unusable uplink) raise FlowError.

Helpers: packet.py parses, rules.py builds each rule (checked by pipeline.py), reconcile.py
diffs expected rules against a dump, adopt.py rebuilds unknown flows from their rules,
hoa_claims.py compares HoA claims with the agent's, icmp6err.py translates ICMPv6 errors,
uplinks.py holds the run-time uplink state; sdnmip/core holds the tables, Figure 6 and the
policy contract.

Ordering: a new flow's flow-mods come before its packet-out, and the packet-out carries the
rule's own actions (not OFPP_TABLE), so the first packet takes the flow's path whether or not
the switch has applied the flow-mods yet; no barrier round trip on the new-flow path.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from ipaddress import IPv6Address
from typing import Any

from sdnmip.controller import adopt, hoa_claims, icmp6err, ofmsg, reconcile
from sdnmip.controller import pipeline as pl
from sdnmip.controller.config import (
    AgentEvent,
    AgentHoas,
    BindFailed,
    BindHoas,
    ClaimHoa,
    HoaBound,
    LogicConfig,
    ReleaseHoa,
    SparePool,
    UplinkState,
)
from sdnmip.controller.packet import Packet, Refused, parse
from sdnmip.controller.reconcile import RuleKey, rule_key
from sdnmip.controller.rules import Egress, RuleBuilder
from sdnmip.controller.uplinks import PortCounters, UplinkRuntime
from sdnmip.core.flows import FlowEntry, FlowTable, RuleState, icmpv6_peer_type
from sdnmip.core.policy import Policy
from sdnmip.core.policy_api import PolicyEngine
from sdnmip.core.redirector import ControllerHoaTable, choose_incoming, choose_outgoing
from sdnmip.core.types import (
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    Decision,
    Direction,
    FlowDescriptor,
    FlowKey,
    Mode,
    UplinkView,
)

Action = Any  # an os-ken message (untyped) or an AgentRequest
# The ingress table-miss rule (table, priority, cookie kind): in a dump, it shows the switch
# kept the tables we gave it (the app shell's canary is the same rule).
CANARY = (int(pl.TableId.INGRESS), pl.PRIO_MISS, pl.CookieKind.STATIC)
# RFC 4443/4861/4191/3810: MLD and Neighbor Discovery are link-local plumbing, not flows.
ICMPV6_NOT_FLOWS = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})


class FlowError(ValueError):
    """A northbound request names a flow or uplink that cannot be acted on."""


class _AgentView:
    """The agent's claims and bindings as of its last snapshot (AgentHoas), kept up to date
    with the claims and releases the logic sends after it and the bindings it reports after it
    (HoaBound, BindFailed)."""

    __slots__ = ("bound", "claimed")

    def __init__(self, ev: AgentHoas) -> None:
        self.claimed: set[IPv6Address] = set(ev.claimed)
        self.bound: dict[IPv6Address, str] = dict(ev.bound)


class MnLogic:
    def __init__(
        self,
        cfg: LogicConfig,
        policy: PolicyEngine,
        flows: FlowTable | None = None,
        hoas: ControllerHoaTable | None = None,
    ) -> None:
        self.cfg = cfg
        self.policy = policy
        self.flows = flows if flows is not None else FlowTable()
        self.hoas = hoas if hoas is not None else ControllerHoaTable(cfg.primary_hoa)
        if self.hoas.primary != cfg.primary_hoa:
            raise ValueError("persisted Home Address Table has another Primary HoA")
        self.rules = RuleBuilder(cfg)
        self.uplinks = {u.name: UplinkRuntime(u.name) for u in cfg.uplinks}
        self._by_phys = {u.phys_port: u.name for u in cfg.uplinks}
        self._by_tun = {u.tun_port: u.name for u in cfg.uplinks}
        self._views: dict[str, UplinkView] = {}
        # Failback: uplinks lost (dead) since they were last usable, and when each uplink that
        # came back will have been usable for `failback_after` (cancelled if it is lost again).
        self._lost: set[str] = set()
        self._failback_at: dict[str, float] = {}
        self._refresh_views()
        self._deadlines: list[tuple[float, int]] = []
        self.refused: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()
        # Flow ids from here on that the table does not know were created after the snapshot
        # it was restored from: reconciliation adopts them (lower unknown ids ended before it).
        self._adopt_from = self.flows.next_id
        self.adoption = adopt.AdoptionReport()  # of the last reconciliation, for the shell's log
        self._switch_known = False  # a reconciliation has run: the flow table is complete
        self._agent: _AgentView | None = None  # None until the agent's first snapshot
        self._unseen: dict[IPv6Address, bool] = {}  # claims (True), releases before it
        self._claims_synced = False  # the claims were reconciled with the last agent snapshot
        for e in self.flows:
            if e.end_at is not None:
                heapq.heappush(self._deadlines, (e.end_at, e.flow_id))

    # -- persistence ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        # Uplinks lost and not yet failed back to (also those waiting out `failback_after`): a
        # restarted controller still owes their flows the return, with the full delay again.
        lost = sorted(self._lost | set(self._failback_at))
        return {"flows": self.flows.to_dict(), "hoas": self.hoas.to_dict(), "lost_uplinks": lost}

    @classmethod
    def restore(
        cls, cfg: LogicConfig, policy: PolicyEngine, snapshot: Mapping[str, Any]
    ) -> MnLogic:
        logic = cls(
            cfg,
            policy,
            FlowTable.from_dict(snapshot["flows"]),
            ControllerHoaTable.from_dict(snapshot["hoas"]),
        )
        lost = snapshot.get("lost_uplinks", [])  # absent in snapshots of older versions
        if not isinstance(lost, list) or not all(isinstance(n, str) for n in lost):
            raise ValueError(f"lost_uplinks: expected a list of uplink names, got {lost!r}")
        logic._lost = {n for n in lost if n in logic.uplinks}  # a removed uplink is no debt
        return logic

    # -- uplinks --------------------------------------------------------------------------------

    def uplink_views(self) -> tuple[UplinkView, ...]:
        return tuple(self._views.values())

    def _refresh_views(self, now: float | None = None) -> None:
        """Rebuild the policy's uplink views; with `now`, also follow losses and returns for
        failback (callers whose event can change an uplink's usability pass it)."""
        # Keyed by name in configuration order: the policy engine's contract (policy_api).
        self._views = {name: u.view() for name, u in self.uplinks.items()}
        if now is None:
            return
        for name, u in self.uplinks.items():
            if u.dead:
                self._lost.add(name)
                if self._failback_at.pop(name, None) is not None:
                    self.stats["failbacks_cancelled"] += 1  # lost again within the delay
            elif u.usable and name in self._lost:
                self._lost.discard(name)
                if self.cfg.failback_after is not None:
                    self._failback_at[name] = now + self.cfg.failback_after

    def _usable(self, name: str) -> bool:
        u = self.uplinks.get(name)
        return u is not None and u.usable

    def _dead(self, name: str) -> bool:
        u = self.uplinks.get(name)
        return u is None or u.dead

    # -- switch connection ----------------------------------------------------------------------

    def datapath_up(self, now: float) -> list[Action]:
        """The switch (re)connected: ask for its rules; `reconcile` gets the reply."""
        return [ofmsg.flow_stats_request()]

    def reconcile(self, now: float, dump: Iterable[ofmsg.FlowStatView]) -> list[Action]:
        """Make the switch hold exactly the expected rules, touching only what differs.

        `dump` is the whole flow-stats reply (every part of the multipart reply to the request
        `datapath_up` returned). Rules of flows created after the snapshot the logic was restored
        from (our flow cookie, an id not below the snapshot's next id) are adopted: the flow is
        rebuilt from them and kept (adopt.py; rules that do not check out are deleted, with the
        reason in `self.adoption`). Rules with foreign cookies (the testbed's plumbing, another
        controller's) or with our cookie but no longer expected (flows that ended while we were
        away) are deleted. A persisted flow none of whose rules is left ended while we were away
        (both idled out) if the switch kept its tables (our table-miss rule is in the dump): it
        ends now and releases its HoA. Otherwise missing rules are added (a flow that lost one
        rule gets it back; after a switch lost its tables every flow gets its rules back and
        ages out again if it is dead); rules whose actions changed are modified in place.
        Adopted flows on an uplink already known to be lost are rescued. Once the agent's
        snapshot is known too, HoA claims are reconciled (`_sync_claims`). The result is the
        same whether it runs once or twice.
        """
        dump = list(dump)  # read twice: adoption, then the diff
        out: list[Action] = []
        for e in list(self.flows):
            if e.uplink not in self.uplinks:  # the uplink left the configuration
                out += self._end_flow(e.flow_id, "uplink removed")
        on_switch: dict[int, list[ofmsg.FlowStatView]] = {}  # flow id -> its rules
        kept_tables = False
        for stat in dump:
            parsed = pl.parse_cookie(stat.cookie)
            if parsed is None:
                continue
            if parsed[0] in pl.FLOW_KINDS:
                on_switch.setdefault(parsed[1], []).append(stat)
            elif (stat.table_id, stat.priority, parsed[0]) == CANARY:
                kept_tables = True
        down_only: set[int] = set()
        unknown = {
            fid: rules
            for fid, rules in on_switch.items()
            if fid >= self._adopt_from and fid not in self.flows
        }
        out += self._adopt(now, unknown, down_only)
        if kept_tables:
            # The switch kept its tables (our table-miss rule is there), so a flow none of
            # whose rules is left has ended: both idled out (or were deleted) while we were
            # away, and the flow-removed messages went nowhere. After a switch that lost its
            # tables, every flow gets its rules back instead.
            for e in list(self.flows):
                if e.flow_id not in on_switch:
                    out += self._end_flow(e.flow_id, "gone while away")
        expected: dict[RuleKey, Any] = {}
        owner: dict[RuleKey, RuleState] = {}
        keep: dict[int, FlowEntry] = {}  # cookies of live flows' rules we cannot rebuild yet
        for msg in self.rules.static_rules():
            expected[rule_key(msg)] = msg
        for e in self.flows:
            e.up.installed = e.down.installed = True
            for msg, state in self._flow_rules(e):
                if state is e.up and e.flow_id in down_only:
                    continue  # its uplink is a guess: the next packet's miss re-installs it
                k = rule_key(msg)
                expected[k] = msg
                owner[k] = state
            if e.flow_id in down_only:
                e.up.installed = False
            elif e.mode is Mode.DIRECT and self.uplinks[e.uplink].egress() is None:
                keep[pl.cookie(pl.CookieKind.FLOW_UP, e.flow_id)] = e
                e.up.installed = False  # unless the dump shows it
        p = reconcile.plan(expected, dump, keep, live=self.flows)
        for k, stat in p.intact:
            owned = owner.get(k)
            if owned is not None:
                owned.cur_packets, owned.cur_bytes = stat.packet_count, stat.byte_count
        for stat in p.kept:
            keep[stat.cookie].up.installed = True
        self.stats["reconciled"] += 1
        # Every flow of an earlier incarnation was in this dump: unknown ids from now on are
        # flows this logic ended itself.
        self._adopt_from = self.flows.next_id
        self._switch_known = True
        out += p.messages
        if self.adoption.adopted:
            # Adopted flows may sit on an uplink the agent reported lost before the switch
            # reconnected: that uplink's rescue ran before they were known.
            out += self._rescue(now)
        if self._agent is not None and (not self._claims_synced or self.adoption.adopted):
            out += self._sync_claims(now)
        return out

    def _adopt(
        self,
        now: float,
        unknown: Mapping[int, Sequence[ofmsg.FlowStatView]],
        down_only: set[int],
    ) -> list[Action]:
        """Take over the flows of the dump created after our snapshot (see `reconcile`):
        `unknown` holds the rules of each such flow id.

        A flow that has the 5-tuple of a live one replaces it: ids only grow, so the live one
        is older, and it must have ended (the old controller never has two live flows with one
        5-tuple). Its HoA is held (ControllerHoaTable.adopt); the agent hears of it when the
        claims are reconciled.
        """
        report = self.adoption = adopt.AdoptionReport()
        out: list[Action] = []
        for fid in sorted(unknown):
            r = adopt.rebuild(fid, unknown[fid], self.cfg, self.rules, self._adopted_uplink)
            if isinstance(r, adopt.Rejected):
                report.rejected.append(r)
                self.stats["adoptions_refused"] += 1
                continue
            e = r.entry
            older: list[FlowEntry] = []
            for clash in (self.flows.by_key(e.key), self.flows.by_wire(e.wire_key)):
                if clash is not None and clash not in older:
                    older.append(clash)
            for old in older:
                self.flows.remove(old.flow_id)
            e.created = e.last_seen = now
            if e.hoa is not None:
                e.shared = e.cn in self.flows.cns_on_hoa(e.hoa)
                e.own_hoa = (
                    self.cfg.hoa_per_flow
                    and e.desc.direction is Direction.OUTGOING
                    and e.hoa != self.hoas.primary
                    and self.flows.hoa_flow_count(e.hoa) == 0
                )
                if e.hoa != self.hoas.primary:
                    self.hoas.adopt(e.hoa)
            self.flows.add(e)
            if not r.has_up:
                down_only.add(fid)
            report.adopted.append(fid)
            self.stats["flows_adopted"] += 1
            for old in older:
                report.superseded.append(old.flow_id)
                out += self._ended(old, "superseded")
        return out

    def _adopted_uplink(self, hoa: IPv6Address) -> str:
        """The uplink of an adopted anchored flow whose uplink rule is gone: that of the HoA's
        other flows, else where the HoA is bound (or wanted), else the first uplink. A HoA
        whose binding is not known yet takes its flows along when the agent reports it."""
        other = self.flows.a_flow_on_hoa(hoa)
        if other is not None:
            return other.uplink
        rec = self.hoas.record(hoa)
        candidates = [] if rec is None else [rec.bound, rec.target]
        candidates.append(self.hoas.spares().get(hoa))
        if self._agent is not None:
            candidates.append(self._agent.bound.get(hoa))
        for name in candidates:
            if name is not None and name in self.uplinks:
                return name
        return self.cfg.uplinks[0].name

    def _flow_rules(self, e: FlowEntry) -> list[tuple[Any, RuleState]]:
        out = [(self.rules.down_rule(e), e.down)]
        egress = self.uplinks[e.uplink].egress() if e.mode is Mode.DIRECT else None
        if e.mode is Mode.ANCHORED or egress is not None:
            out.append((self.rules.up_rule(e, egress), e.up))
        return out

    # -- packet-in ------------------------------------------------------------------------------

    def packet_in(self, now: float, in_port: int, table_id: int, data: bytes) -> list[Action]:
        pkt = parse(data)
        if isinstance(pkt, Refused):
            return self._refuse(pkt.reason)
        if table_id == pl.TableId.TCP_END:
            self._tcp_end(now, in_port, pkt)
            return []
        if table_id == pl.TableId.UPLINK and in_port == self.cfg.hoa0_port:
            return self._from_app(now, pkt, data)
        if table_id == pl.TableId.DOWNLINK and in_port in self._by_tun:
            return self._to_hoa(now, pkt, data)
        return self._refuse(f"unexpected packet-in (table {table_id}, port {in_port})")

    def _refuse(self, reason: str) -> list[Action]:
        self.refused[reason] += 1
        return []

    def _from_app(self, now: float, p: Packet, data: bytes) -> list[Action]:
        if p.src != self.cfg.primary_hoa:
            return self._refuse("source is not the Primary HoA")
        key = _outgoing_key(p)
        if key is None:
            return self._refuse("ICMPv6 error or neighbour discovery from the MN")
        e = self.flows.by_key(key)
        if e is not None:
            return self._known_up(now, e, p, data)
        if p.proto == IPPROTO_TCP and not p.is_tcp_open:
            return self._refuse("TCP segment of no known connection")
        desc = FlowDescriptor(key, Direction.OUTGOING, p.flow_label, p.dscp)
        d = self.policy.decide(desc, self._views, now)
        if d is None or not self._usable(d.uplink):
            return self._refuse("no usable uplink")
        return self._new_outgoing(now, desc, d, data if p.complete else None)

    def _known_up(self, now: float, e: FlowEntry, p: Packet, data: bytes) -> list[Action]:
        e.last_seen = now
        egress = self.uplinks[e.uplink].egress() if e.mode is Mode.DIRECT else None
        if e.mode is Mode.DIRECT and egress is None:
            return self._refuse("direct flow's uplink has no router")
        # A table miss proves the rule is absent (expired, lost, or its flow-mod still in
        # flight): install it whatever we believed; an identical add just replaces it.
        acts = self.rules.up_actions(e, egress)
        out: list[Action] = [self.rules.up_rule(e, egress, actions=acts)]
        if not e.up.installed:
            e.up.installed = True
            self.stats["reinstalled"] += 1
        if p.complete:
            out.append(ofmsg.packet_out(data, acts))
        return out

    def _new_outgoing(
        self, now: float, desc: FlowDescriptor, d: Decision, data: bytes | None
    ) -> list[Action]:
        out: list[Action] = []
        fid = self.flows.new_id()
        uplink = self.uplinks[d.uplink]
        egress = uplink.egress() if d.mode is Mode.DIRECT else None
        if egress is not None:
            e = FlowEntry(fid, desc, None, d.uplink, Mode.DIRECT, coa=egress.coa, rule_id=d.rule_id)
        else:
            own = self.cfg.hoa_per_flow or d.own_hoa
            a = choose_outgoing(
                self.hoas,
                self.flows,
                desc.key.remote,
                d.uplink,
                primary_use=self.cfg.primary_use,
                own_hoa=own,
                pin=d.dedicated_hoa,
            )
            if a.claimed:
                self.hoas.claim(a.hoa)
                out.append(self._claim_request(a.hoa))
            now_at = self._uplink_now(a.hoa, a.uplink)
            if a.rebind:
                self._set_target(a.hoa, a.uplink)
                out.append(BindHoas(((a.hoa, a.uplink),), "new flow"))
            e = FlowEntry(
                fid,
                desc,
                a.hoa,
                now_at,
                rule_id=d.rule_id,
                shared=a.shared,
                own_hoa=own and not a.shared,
            )
        return out + self._install_new(now, e, data, egress, first_up=True)

    def _uplink_now(self, hoa: IPv6Address, target: str) -> str:
        """The uplink a new flow on `hoa` sends by until the HoA is bound at `target`.

        The HA accepts reverse-tunnelled packets of a HoA only from the CoA it is bound to
        (RFC 6275 §10.4.5), so a new flow leaves where the binding points now and moves with
        the HoA's other flows when the BA for `target` arrives (`_hoa_bound`): its first
        packets are not dropped while the Binding Update is on its way.
        """
        other = self.flows.a_flow_on_hoa(hoa)
        if other is not None:
            return other.uplink
        rec = self.hoas.record(hoa)
        if rec is not None and rec.bound is not None and self._usable(rec.bound):
            return rec.bound
        return target

    def _install_new(
        self, now: float, e: FlowEntry, data: bytes | None, egress: Egress | None, first_up: bool
    ) -> list[Action]:
        e.created = e.last_seen = now
        self.flows.add(e)  # callers checked the 5-tuple: a collision here is a bug
        e.up.installed = e.down.installed = True
        self.stats["flows_created"] += 1
        up_acts = self.rules.up_actions(e, egress)
        down_acts = self.rules.down_actions(e)
        out: list[Action] = [
            self.rules.up_rule(e, egress, actions=up_acts),
            self.rules.down_rule(e, actions=down_acts),
        ]
        if data is not None:
            out.append(ofmsg.packet_out(data, up_acts if first_up else down_acts))
        return out

    def _to_hoa(self, now: float, p: Packet, data: bytes) -> list[Action]:
        if icmp6err.is_error(p):
            return self._icmp_error(p, data)
        if p.proto == IPPROTO_ICMPV6:
            mn_port, remote_port = icmpv6_peer_type(p.sport), p.sport
        else:
            mn_port, remote_port = p.dport, p.sport
        e = self.flows.by_wire((p.proto, p.dst, mn_port, p.src, remote_port))
        if e is not None:
            e.last_seen = now
            acts = self.rules.down_actions(e)
            out: list[Action] = [self.rules.down_rule(e, actions=acts)]
            if not e.down.installed:
                e.down.installed = True
                self.stats["reinstalled"] += 1
            if p.complete:
                out.append(ofmsg.packet_out(data, acts))
            return out
        if not self.hoas.is_held(p.dst):
            return self._refuse("to an address the MN does not hold")
        if p.proto == IPPROTO_ICMPV6 and p.sport in ICMPV6_NOT_FLOWS:
            return self._refuse("neighbour discovery to a HoA")
        if p.proto == IPPROTO_TCP and not p.is_tcp_open:
            return self._refuse("TCP segment of no known connection")
        key = FlowKey(p.proto, self.cfg.primary_hoa, mn_port, p.src, remote_port)
        if self.flows.by_key(key) is not None:
            # The application already has this 5-tuple with the CN under another HoA.
            return self._refuse("incoming 5-tuple of a live flow on another HoA")
        desc = FlowDescriptor(key, Direction.INCOMING, p.flow_label, p.dscp)
        d = self.policy.decide(desc, self._views, now)
        rec = self.hoas.record(p.dst)
        if d is not None and self._usable(d.uplink):
            want = d.uplink
        elif rec is not None and rec.target is not None and self._usable(rec.target):
            want = rec.target
        else:
            return self._refuse("no usable uplink")
        out = []
        a = choose_incoming(self.hoas, self.flows, p.dst, want)
        now_at = self._uplink_now(a.hoa, a.uplink)
        if a.rebind:
            self._set_target(a.hoa, a.uplink)
            out.append(BindHoas(((a.hoa, a.uplink),), "incoming flow"))
        e = FlowEntry(
            self.flows.new_id(),
            desc,
            a.hoa,
            now_at,
            rule_id=None if d is None else d.rule_id,
        )
        return out + self._install_new(now, e, data if p.complete else None, None, first_up=False)

    def _icmp_error(self, p: Packet, data: bytes) -> list[Action]:
        """An ICMPv6 error about one of our flows: hand it to the kernel as if about the Primary."""
        q = icmp6err.quoted(data, p)
        if isinstance(q, Refused):
            return self._refuse(f"ICMPv6 error quoting junk: {q.reason}")
        # The quoted packet is one the MN sent: from the flow's address on the wire.
        if q.proto == IPPROTO_ICMPV6:
            wire = (q.proto, q.src, q.sport, q.dst, icmpv6_peer_type(q.sport))
        else:
            wire = (q.proto, q.src, q.sport, q.dst, q.dport)
        e = self.flows.by_wire(wire)
        if e is None or e.hoa != p.dst:
            return self._refuse("ICMPv6 error about no flow of ours")
        self.stats["icmp_errors_translated"] += 1
        frame = data if e.hoa == e.key.local else icmp6err.rewrite(data, p, e.key.local)
        acts = [ofmsg.set_field("eth_dst", self.cfg.hoa0_mac), ofmsg.output(self.cfg.hoa0_port)]
        return [ofmsg.packet_out(frame, acts)]

    # -- flow end -------------------------------------------------------------------------------

    def _tcp_end(self, now: float, in_port: int, p: Packet) -> None:
        if p.proto != IPPROTO_TCP:
            return
        if in_port == self.cfg.hoa0_port:
            key = _outgoing_key(p)
            e = None if key is None else self.flows.by_key(key)
            outgoing = True
        else:
            e = self.flows.by_wire((p.proto, p.dst, p.dport, p.src, p.sport))
            outgoing = False
        if e is None:
            return
        if p.tcp_flags & pl.TCP_FIN:
            if outgoing:
                e.fin_out = True
            else:
                e.fin_in = True
        if (p.tcp_flags & pl.TCP_RST or (e.fin_out and e.fin_in)) and e.end_at is None:
            e.end_at = now + self.cfg.fin_linger
            heapq.heappush(self._deadlines, (e.end_at, e.flow_id))

    def next_deadline(self) -> float | None:
        """When `tick` next has work to do (the shell arms a timer for it)."""
        failback = min(self._failback_at.values(), default=None)
        while self._deadlines:
            at, fid = self._deadlines[0]
            e = self.flows.get(fid)
            if e is not None and e.end_at == at:
                return at if failback is None else min(at, failback)
            heapq.heappop(self._deadlines)
        return failback

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            at, fid = heapq.heappop(self._deadlines)
            e = self.flows.get(fid)
            if e is not None and e.end_at == at:
                out += self._end_flow(fid, "tcp end")
        return out + self._due_failbacks(now)

    def flow_removed(
        self, now: float, cookie: int, reason: int, packet_count: int, byte_count: int
    ) -> list[Action]:
        parsed = pl.parse_cookie(cookie)
        if parsed is None or parsed[0] not in pl.FLOW_KINDS:
            return []
        kind, fid = parsed
        e = self.flows.get(fid)
        if e is None:
            return []  # a flow we ended ourselves
        state = e.up if kind is pl.CookieKind.FLOW_UP else e.down
        state.gone(packet_count, byte_count)
        if reason == ofmsg.OFPRR_DELETE:
            # We delete only the rules of flows we have ended (gone from the table by then), so
            # someone else deleted this one (an operator's del-flows, another controller): only
            # timeouts end flows; put it back. Re-adding never causes another flow-removed.
            return self._restore_rule(e, kind)
        if not e.up.installed and not e.down.installed:
            return self._end_flow(fid, "idle")
        if e.mode is Mode.DIRECT and kind is pl.CookieKind.FLOW_DOWN:
            # Return packets of a direct flow that miss go to the kernel (which owns the CoA),
            # not to us, so a live direct flow keeps its downlink rule.
            e.down.installed = True
            return [self.rules.down_rule(e)]
        return []

    def _restore_rule(self, e: FlowEntry, kind: pl.CookieKind) -> list[Action]:
        if kind is pl.CookieKind.FLOW_DOWN:
            e.down.installed = True
            self.stats["rules_restored"] += 1
            return [self.rules.down_rule(e)]
        egress = self.uplinks[e.uplink].egress() if e.mode is Mode.DIRECT else None
        if e.mode is Mode.DIRECT and egress is None:
            return []  # rebuilt when its next packet misses, once the router is known
        e.up.installed = True
        self.stats["rules_restored"] += 1
        return [self.rules.up_rule(e, egress)]

    def remove_flow(self, now: float, flow_id: int) -> list[Action]:
        if flow_id not in self.flows:
            raise FlowError(f"no live flow {flow_id}")
        return self._end_flow(flow_id, "removed")

    def _end_flow(self, fid: int, why: str) -> list[Action]:
        return self._ended(self.flows.remove(fid), why)

    def _ended(self, e: FlowEntry, why: str) -> list[Action]:
        """A flow just left the table: delete its rules, release its HoA if no flow is left."""
        self.stats[f"flows_ended_{why.replace(' ', '_')}"] += 1
        out: list[Action] = [pl.delete_flow_rules(e.flow_id)]
        hoa = e.hoa
        if hoa is not None and hoa != self.hoas.primary and self.flows.hoa_flow_count(hoa) == 0:
            self.hoas.release(hoa)
            out.append(self._release_request(hoa))
        return out

    # -- HoA claims at the agent ----------------------------------------------------------------

    def _claim_request(self, hoa: IPv6Address) -> ClaimHoa:
        self._note_request(hoa, claimed=True)
        return ClaimHoa(hoa)

    def _release_request(self, hoa: IPv6Address) -> ReleaseHoa:
        self._note_request(hoa, claimed=False)
        return ReleaseHoa(hoa)

    def _note_request(self, hoa: IPv6Address, *, claimed: bool) -> None:
        """Keep the agent view as it will be once our queued requests are done. Before the
        first snapshot, remember them: that snapshot may predate them."""
        if self._agent is None:
            self._unseen[hoa] = claimed
        elif claimed:
            self._agent.claimed.add(hoa)
        else:
            self._agent.claimed.discard(hoa)

    def _agent_hoas(self, now: float, ev: AgentHoas) -> list[Action]:
        """The agent's snapshot (it (re)subscribed): reconcile the claims now if the flow table
        is complete, else after the first reconciliation with the switch (either may come
        first after a restart)."""
        self._agent = _AgentView(ev)
        for hoa, claimed in self._unseen.items():
            self._note_request(hoa, claimed=claimed)
        self._unseen.clear()
        self._claims_synced = False
        return self._sync_claims(now) if self._switch_known else []

    def _sync_claims(self, now: float) -> list[Action]:
        """Make the agent's claims match the HoAs live flows use (hoa_claims.py), and let
        adopted HoAs whose binding we did not know follow the agent's report of it."""
        view = self._agent
        if view is None:
            raise AssertionError("HoA claims reconciled before the agent's snapshot")
        out: list[Action] = []
        for hoa, uplink in view.bound.items():
            rec = self.hoas.record(hoa)
            if rec is not None and not rec.primary and rec.target is None:
                out += self._hoa_bound(now, HoaBound(hoa, uplink))
        p = hoa_claims.plan(self.hoas, self.flows, view.claimed, self._dedicated_hoas())
        for hoa in p.claim:
            out.append(self._claim_request(hoa))
        for hoa in p.release:
            if self.hoas.is_held(hoa):
                self.hoas.release(hoa)
            out.append(self._release_request(hoa))
        self.stats["hoas_reclaimed"] += len(p.claim)
        self.stats["hoas_released_unused"] += len(p.release)
        self._claims_synced = True
        return out

    def _dedicated_hoas(self) -> frozenset[IPv6Address]:
        """HoAs a policy rule pins flows to: kept claimed even while no flow uses them."""
        rules = getattr(self.policy, "policy", None)  # RuleEngine and SteeringEngine have one
        if not isinstance(rules, Policy):
            return frozenset()
        return frozenset(r.dedicated_hoa for r in rules.rules if r.dedicated_hoa is not None)

    # -- moving flows ---------------------------------------------------------------------------

    def move_flow(self, now: float, flow_id: int, uplink: str) -> list[Action]:
        """Hand one flow over to `uplink`; every flow on its HoA moves with it.

        The uplink rules switch when the agent reports the BA (`HoaBound`), by modify-strict of
        the same rule, so packets never meet a missing rule.
        """
        e = self.flows.get(flow_id)
        if e is None:
            raise FlowError(f"no live flow {flow_id}")
        if uplink not in self.uplinks:
            raise FlowError(f"no uplink named {uplink!r}")
        if not self._usable(uplink):
            raise FlowError(f"uplink {uplink} is not usable")
        if e.mode is Mode.DIRECT or e.hoa is None:
            raise FlowError(f"flow {flow_id} is direct: its address is the CoA, it cannot move")
        e.pinned = uplink
        rec = self.hoas.record(e.hoa)
        if rec is not None and rec.target == uplink and e.uplink == uplink:
            return []  # already there
        return self._move([(e.hoa, uplink)], immediate=False, reason="move")

    def resteer(self, now: float, only: Collection[int] | None = None) -> list[Action]:
        """Re-ask the policy for every live anchored flow; move HoAs whose flows all agree.

        A HoA moves only if every flow on it wants the same other uplink, and never if a user
        pinned one of them (move_flow). Mode changes apply to new flows only.
        `only`: re-decide just these flows (those a policy change affects, as the northbound
        computes them); the others want to stay where they are. A pinned flow in `only` is
        decided again and unpinned: the rules that decide it have changed.
        """
        if only is not None:
            for fid in only:
                e = self.flows.get(fid)
                if e is not None:
                    e.pinned = None
        return self._redecide(now, only, toward=None, reason="policy")

    def _redecide(
        self, now: float, only: Collection[int] | None, toward: str | None, reason: str
    ) -> list[Action]:
        """Move HoAs where their flows want to be (see `resteer`). With `toward` (failback),
        only moves to that uplink are made, and a HoA holding a flow a user pinned goes back
        to the uplink it was pinned to (if all its pins agree)."""
        wants: dict[IPv6Address, set[str]] = {}
        decided: list[tuple[FlowEntry, Decision]] = []
        pins: dict[IPv6Address, set[str]] = {}
        for e in self.flows:
            if e.hoa is None:
                continue
            if only is not None and e.flow_id not in only:
                wants.setdefault(e.hoa, set()).add("")  # "keep it where it is"
                continue
            if e.pinned is not None:
                pins.setdefault(e.hoa, set()).add(e.pinned)
                continue
            d = self.policy.decide(e.desc, self._views, now)
            if d is None or not self._usable(d.uplink):
                wants.setdefault(e.hoa, set()).add("")  # "keep it where it is"
                continue
            decided.append((e, d))
            wants.setdefault(e.hoa, set()).add(d.uplink)
        if toward is not None:
            wants.update(pins)  # a pin outranks the policy of the flows sharing its HoA
        moves = []
        for hoa, ups in wants.items():
            rec = self.hoas.record(hoa)
            if (toward is None and hoa in pins) or len(ups) != 1 or rec is None:
                continue
            (uplink,) = ups
            if not uplink or uplink == rec.target or not self._usable(uplink):
                continue
            if toward is None or uplink == toward:
                moves.append((hoa, uplink))
        out = self._move(moves, immediate=False, reason=reason)
        for e, d in decided:  # the rule now responsible for where each flow is going
            rec = self.hoas.record(e.hoa) if e.hoa is not None else None
            if rec is not None and rec.target == d.uplink:
                e.rule_id = d.rule_id
        return out

    def _due_failbacks(self, now: float) -> list[Action]:
        """Uplinks back for `failback_after`: flows whose policy (or pin) wants them there
        return, make-before-break (their rules switch at the BA)."""
        out: list[Action] = []
        for name, at in sorted(self._failback_at.items(), key=lambda kv: kv[1]):
            if at > now:
                continue
            del self._failback_at[name]
            if not self._usable(name):
                # Unusable without being lost (not reported yet): still owed, scheduled again
                # once it is usable (_refresh_views).
                self._lost.add(name)
                continue
            self.stats["failbacks"] += 1
            out += self._redecide(now, None, toward=name, reason="failback")
        return out

    def _move(
        self, moves: Sequence[tuple[IPv6Address, str]], *, immediate: bool, reason: str
    ) -> list[Action]:
        out: list[Action] = []
        bindings = []
        for hoa, uplink in moves:
            self._set_target(hoa, uplink)
            bindings.append((hoa, uplink))
            if immediate:
                out += self._switch_uplink(hoa, uplink)
        if bindings:
            self.stats[f"moves_{reason}"] += len(bindings)
            out.append(BindHoas(tuple(bindings), reason))
        return out

    def _set_target(self, hoa: IPv6Address, uplink: str) -> None:
        rec = self.hoas.record(hoa)
        if rec is None:
            raise AssertionError(f"{hoa} is not held")
        rec.target = uplink

    def _switch_uplink(self, hoa: IPv6Address, uplink: str) -> list[Action]:
        out = []
        for fid in sorted(self.flows.flows_on_hoa(hoa)):
            e = self.flows.get(fid)
            if e is None or e.uplink == uplink:
                continue
            self.flows.set_uplink(fid, uplink)
            if e.up.installed:
                out.append(self.rules.up_rule(e, None, modify=True))
        return out

    def _rescue(self, now: float) -> list[Action]:
        """Flows on a dead uplink move at once; their HoAs are re-bound in one batch."""
        out: list[Action] = []
        for name, u in self.uplinks.items():
            if not u.dead:
                continue
            for fid in sorted(self.flows.flows_on_uplink(name)):
                e = self.flows.get(fid)
                if e is not None and e.mode is Mode.DIRECT:
                    out += self._end_flow(fid, "uplink lost")
        moves = []
        retarget = []
        for rec in list(self.hoas.held()):
            fids = sorted(self.flows.flows_on_hoa(rec.addr))
            if not fids:
                continue
            flows = [self.flows.get(f) for f in fids]
            current = {e.uplink for e in flows if e is not None}
            if not any(self._dead(c) for c in current):
                if rec.target is not None and self._dead(rec.target) and len(current) == 1:
                    retarget.append((rec.addr, current.pop()))  # a pending move lost its target
                continue
            new = self._pick_uplink(now, flows[0])
            if new is not None:
                moves.append((rec.addr, new))
        out += self._move(moves, immediate=True, reason="uplink lost")
        out += self._move(retarget, immediate=False, reason="move target lost")
        return out

    def _pick_uplink(self, now: float, e: FlowEntry | None) -> str | None:
        if e is not None:
            d = self.policy.decide(e.desc, self._views, now)
            if d is not None and self._usable(d.uplink):
                return d.uplink
        for v in self._views.values():
            if v.usable:
                return v.name
        return None

    # -- events from the switch and the agent ---------------------------------------------------

    def port_status(self, now: float, port_no: int, link_up: bool) -> list[Action]:
        name = self._by_phys.get(port_no)
        if name is None:
            return []
        u = self.uplinks[name]
        if u.link_up == link_up:
            return []
        u.link_up = link_up
        self._refresh_views(now)
        return self._rescue(now) + self._due_failbacks(now)

    def agent_event(self, now: float, ev: AgentEvent) -> list[Action]:
        if isinstance(ev, SparePool):
            self.hoas.set_pool(ev.spares)
            return []
        if isinstance(ev, HoaBound):
            if self._agent is not None:  # a HoA adopted later follows its latest binding
                self._agent.bound[ev.hoa] = ev.uplink
            return self._hoa_bound(now, ev)
        if isinstance(ev, BindFailed):
            if self._agent is not None:
                self._agent.bound.pop(ev.hoa, None)  # as the agent link's translator does
            return self._bind_failed(ev)
        if isinstance(ev, UplinkState):
            return self._uplink_state(now, ev)
        if isinstance(ev, AgentHoas):
            return self._agent_hoas(now, ev)
        raise TypeError(f"unknown agent event {ev!r}")

    def _hoa_bound(self, now: float, ev: HoaBound) -> list[Action]:
        self.hoas.set_bound(ev.hoa, ev.uplink)
        rec = self.hoas.record(ev.hoa)
        if rec is None or rec.target != ev.uplink:
            return []  # a spare, or a BA for a binding we no longer want
        out = self._switch_uplink(ev.hoa, ev.uplink)
        if self._dead(ev.uplink):
            # A HoA whose binding we did not know (adopted after a restart) is bound at an
            # uplink lost meanwhile: its flows must not stay there.
            out += self._rescue(now)
        return out

    def _bind_failed(self, ev: BindFailed) -> list[Action]:
        self.stats["bind_failed"] += 1
        rec = self.hoas.record(ev.hoa)
        if rec is None or rec.target != ev.uplink:
            return []
        ups = {e.uplink for f in self.flows.flows_on_hoa(ev.hoa) if (e := self.flows.get(f))}
        if ups and ev.uplink not in ups:
            # A planned move that did not happen: the flows never left; stop waiting for it.
            rec.target = rec.bound
        return []

    def _uplink_state(self, now: float, ev: UplinkState) -> list[Action]:
        u = self.uplinks.get(ev.name)
        if u is None:
            return []
        out: list[Action] = []
        if u.coa is not None and ev.coa != u.coa:
            # Direct flows carry the old CoA in their packets: they cannot survive its loss.
            for fid in sorted(self.flows.flows_on_uplink(ev.name)):
                e = self.flows.get(fid)
                if e is not None and e.mode is Mode.DIRECT:
                    out += self._end_flow(fid, "coa changed")
        new_router = ev.router_mac is not None and ev.router_mac != u.router_mac
        u.agent_up, u.coa, u.router_mac, u.reported = ev.up, ev.coa, ev.router_mac, True
        self._refresh_views(now)
        if new_router:
            # Direct flows address the access router itself: follow it (same rule, new MAC).
            egress = u.egress()
            for fid in sorted(self.flows.flows_on_uplink(ev.name)):
                e = self.flows.get(fid)
                if e is not None and e.mode is Mode.DIRECT and e.up.installed:
                    out.append(self.rules.up_rule(e, egress, modify=True))
        return out + self._rescue(now) + self._due_failbacks(now)

    # -- counters -------------------------------------------------------------------------------

    def flow_stats(self, now: float, stats: Iterable[ofmsg.FlowStatView]) -> None:
        for s in stats:
            parsed = pl.parse_cookie(s.cookie)
            if parsed is None or parsed[0] not in pl.FLOW_KINDS:
                continue
            e = self.flows.get(parsed[1])
            if e is None:
                continue
            state = e.up if parsed[0] is pl.CookieKind.FLOW_UP else e.down
            if state.reading(s.packet_count, s.byte_count):
                e.last_seen = now

    def port_stats(self, now: float, counters: Iterable[PortCounters]) -> None:
        changed = False
        for c in counters:
            name = self._by_phys.get(c.port_no)
            if name is not None:
                u = self.uplinks[name]
                u.rx_bytes, u.tx_bytes = c.rx_bytes, c.tx_bytes  # for the northbound's metrics
                changed |= u.count(now, c.rx_bytes + c.tx_bytes)
        if changed:
            self._refresh_views()


def _outgoing_key(p: Packet) -> FlowKey | None:
    if p.proto == IPPROTO_ICMPV6:
        if p.sport < icmp6err.FIRST_INFORMATIONAL or p.sport in ICMPV6_NOT_FLOWS:
            return None
        return FlowKey(p.proto, p.src, p.sport, p.dst, icmpv6_peer_type(p.sport))
    return FlowKey(p.proto, p.src, p.sport, p.dst, p.dport)
