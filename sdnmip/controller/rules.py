"""Turn the logic's state into flow-mods: the pipeline's fixed rules and each flow's two rules.

Owns: the matches and action lists of every rule (see the table map in pipeline.py), built
through pipeline.Table so each is checked against the declaration.
Must not: decide anything (sdnmip/controller/logic.py), keep state beyond the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from sdnmip.controller import ofmsg
from sdnmip.controller import pipeline as pl
from sdnmip.controller.config import LogicConfig, UplinkPorts
from sdnmip.core.flows import FlowEntry
from sdnmip.core.types import IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, FlowKey, Mode

ETH = ("eth_type", ofmsg.ETH_TYPE_IPV6)
MULTICAST = IPv6Network("ff00::/8")
LINK_LOCAL = IPv6Network("fe80::/10")

_INGRESS = pl.TABLES[pl.TableId.INGRESS]
_TCP_END = pl.TABLES[pl.TableId.TCP_END]
_UPLINK = pl.TABLES[pl.TableId.UPLINK]
_DOWNLINK = pl.TABLES[pl.TableId.DOWNLINK]
_DIRECT_IN = pl.TABLES[pl.TableId.DIRECT_IN]
_STATIC = pl.cookie(pl.CookieKind.STATIC)
_PLUMBING = pl.cookie(pl.CookieKind.PLUMBING)


@dataclass(frozen=True, slots=True)
class Egress:
    """Where a direct-mode flow leaves: the uplink's CoA and access router, known at runtime."""

    coa: IPv6Address
    router_mac: str


# A flow-mod builder: Table.add or Table.modify_strict.
Builder = Callable[..., Any]


@lru_cache(maxsize=8192)
def _text(addr: IPv6Address) -> str:
    # Formatting an IPv6 address costs about 5 us; the same few HoAs and correspondents recur.
    return str(addr)


class RuleBuilder:
    def __init__(self, cfg: LogicConfig) -> None:
        self.cfg = cfg
        self.ports: dict[str, UplinkPorts] = {u.name: u for u in cfg.uplinks}

    # -- per flow -------------------------------------------------------------------------------

    def up_match(self, e: FlowEntry) -> list[tuple[str, Any]]:
        k = e.key
        return [
            ("in_port", self.cfg.hoa0_port),
            ETH,
            ("ipv6_src", _text(k.local)),
            ("ipv6_dst", _text(k.remote)),
            *_l4(k, outgoing=True),
        ]

    def up_actions(self, e: FlowEntry, egress: Egress | None) -> list[Any]:
        port = self.ports[e.uplink]
        if e.mode is Mode.DIRECT:
            if egress is None:
                raise ValueError(f"direct flow {e.flow_id}: uplink {e.uplink} has no egress")
            return [
                ofmsg.set_field("ipv6_src", _text(egress.coa)),
                ofmsg.set_field("eth_src", port.tun_mac),
                ofmsg.set_field("eth_dst", egress.router_mac),
                ofmsg.output(port.phys_port),
            ]
        acts = []
        if e.hoa != e.key.local:
            acts.append(ofmsg.set_field("ipv6_src", _text(e.hoa)))
        acts.append(ofmsg.set_field("eth_dst", port.tun_mac))
        acts.append(ofmsg.output(port.tun_port))
        return acts

    def down_match(self, e: FlowEntry) -> list[tuple[str, Any]]:
        k = e.key
        items: list[tuple[str, Any]] = [
            ETH,
            ("ipv6_src", _text(k.remote)),
            ("ipv6_dst", _text(e.wire_addr)),
            *_l4(k, outgoing=False),
        ]
        if e.mode is Mode.DIRECT:
            items.append(("in_port", self.ports[e.uplink].phys_port))
        return items

    def down_actions(self, e: FlowEntry) -> list[Any]:
        acts = []
        if e.wire_addr != e.key.local:
            acts.append(ofmsg.set_field("ipv6_dst", _text(e.key.local)))
        acts.append(ofmsg.set_field("eth_dst", self.cfg.hoa0_mac))
        acts.append(ofmsg.output(self.cfg.hoa0_port))
        return acts

    def up_rule(
        self,
        e: FlowEntry,
        egress: Egress | None,
        modify: bool = False,
        actions: list[Any] | None = None,
    ) -> Any:
        """The flow's uplink rule; `actions` if the caller already built them (packet-out)."""
        table = _UPLINK
        build: Builder = table.modify_strict if modify else table.add
        if actions is None:
            actions = self.up_actions(e, egress)
        return build(
            pl.PRIO_FLOW,
            pl.cookie(pl.CookieKind.FLOW_UP, e.flow_id),
            self.up_match(e),
            [ofmsg.apply_actions(actions)],
            idle_timeout=self.cfg.idle_timeout(e.key.proto),
            flags=ofmsg.OFPFF_SEND_FLOW_REM,
        )

    def down_rule(self, e: FlowEntry, actions: list[Any] | None = None) -> Any:
        table = _DIRECT_IN if e.mode is Mode.DIRECT else _DOWNLINK
        if actions is None:
            actions = self.down_actions(e)
        return table.add(
            pl.PRIO_FLOW,
            pl.cookie(pl.CookieKind.FLOW_DOWN, e.flow_id),
            self.down_match(e),
            [ofmsg.apply_actions(actions)],
            idle_timeout=self.cfg.idle_timeout(e.key.proto),
            flags=ofmsg.OFPFF_SEND_FLOW_REM,
        )

    # -- the fixed pipeline ---------------------------------------------------------------------

    def static_rules(self) -> list[Any]:
        """Every rule that does not belong to a flow, for the current ports."""
        cfg = self.cfg
        drop: list[Any] = []
        rules = [
            _INGRESS.add(pl.PRIO_MISS, _STATIC, [], drop),
            _TCP_END.add(pl.PRIO_MISS, _STATIC, [], drop),
            _UPLINK.add(pl.PRIO_MISS, _STATIC, [], [_to_controller(ofmsg.OFPCML_NO_BUFFER)]),
            _DOWNLINK.add(pl.PRIO_MISS, _STATIC, [], [_to_controller(ofmsg.OFPCML_NO_BUFFER)]),
            _DIRECT_IN.add(pl.PRIO_MISS, _STATIC, [], drop),
        ]
        for meta, nxt in (
            (pl.META_UP, pl.TableId.UPLINK),
            (pl.META_DOWN, pl.TableId.DOWNLINK),
            (pl.META_DIRECT_IN, pl.TableId.DIRECT_IN),
        ):
            on_dir = ("metadata", (meta, pl.META_DIR_MASK))
            tcp = [on_dir, ETH, ("ip_proto", IPPROTO_TCP)]
            copy_then_go = [_to_controller(pl.TCP_END_COPY_LEN), ofmsg.goto_table(nxt)]
            rules += [
                _TCP_END.add(
                    pl.PRIO_TCP_RST,
                    _STATIC,
                    [*tcp, ("tcp_flags", (pl.TCP_RST, pl.TCP_RST))],
                    copy_then_go,
                ),
                _TCP_END.add(
                    pl.PRIO_TCP_FIN,
                    _STATIC,
                    [*tcp, ("tcp_flags", (pl.TCP_FIN, pl.TCP_FIN))],
                    copy_then_go,
                ),
                _TCP_END.add(pl.PRIO_TCP_PASS, _STATIC, [on_dir], [ofmsg.goto_table(nxt)]),
            ]
        hoa0 = ("in_port", cfg.hoa0_port)
        for net in (MULTICAST, LINK_LOCAL):
            # The kernel's ND/MLD on hoa0 goes nowhere: hoa0 needs a permanent neighbour entry
            # for its default router (set up with the bridge).
            rules.append(
                _INGRESS.add(
                    pl.PRIO_FILTER,
                    _PLUMBING,
                    [hoa0, ETH, ("ipv6_dst", ofmsg.ipv6_prefix(net))],
                    drop,
                )
            )
        rules.append(_INGRESS.add(pl.PRIO_DISPATCH, _PLUMBING, [hoa0, ETH], _dispatch(pl.META_UP)))
        for up in cfg.uplinks:
            rules += self._uplink_plumbing(up)
        return rules

    def _uplink_plumbing(self, up: UplinkPorts) -> list[Any]:
        tun = ("in_port", up.tun_port)
        phys = ("in_port", up.phys_port)
        to_phys = [ofmsg.apply_actions([ofmsg.output(up.phys_port)])]
        rules = []
        for ha in self.cfg.ha_addresses:
            # The kernel's own packets to the HA (the reverse tunnel, Binding Updates) are in the
            # home prefix too; they must not be taken for decapsulated inner packets.
            rules.append(
                _INGRESS.add(
                    pl.PRIO_PLUMB_HIGH, _PLUMBING, [tun, ETH, ("ipv6_dst", str(ha))], to_phys
                )
            )
        for net in self.cfg.home_prefixes:
            home = ("ipv6_dst", ofmsg.ipv6_prefix(net))
            # Inner Mobility Header packets to a HoA are for the agent's raw socket, not hoa0.
            rules.append(
                _INGRESS.add(
                    pl.PRIO_FILTER, _PLUMBING, [tun, ETH, home, ("ip_proto", pl.IPPROTO_MH)], []
                )
            )
            rules.append(
                _INGRESS.add(pl.PRIO_DISPATCH, _PLUMBING, [tun, ETH, home], _dispatch(pl.META_DOWN))
            )
        rules.append(_INGRESS.add(pl.PRIO_PLUMB_LOW, _PLUMBING, [tun], to_phys))
        rules.append(
            _INGRESS.add(pl.PRIO_DISPATCH, _PLUMBING, [phys], _dispatch(pl.META_DIRECT_IN))
        )
        rules.append(
            _DIRECT_IN.add(
                pl.PRIO_PLUMB_LOW,
                _PLUMBING,
                [phys],
                [ofmsg.apply_actions([ofmsg.output(up.tun_port)])],
            )
        )
        return rules


def _to_controller(max_len: int) -> Any:
    return ofmsg.apply_actions([ofmsg.output(ofmsg.OFPP_CONTROLLER, max_len)])


def _dispatch(meta: int) -> list[Any]:
    return [ofmsg.write_metadata(meta, pl.META_DIR_MASK), ofmsg.goto_table(pl.TableId.TCP_END)]


def _l4(k: FlowKey, *, outgoing: bool) -> list[tuple[str, Any]]:
    """Transport match of one direction (ports swap; ICMPv6 matches the type each side sends)."""
    proto = k.proto
    items: list[tuple[str, Any]] = [("ip_proto", proto)]
    src, dst = (k.local_port, k.remote_port) if outgoing else (k.remote_port, k.local_port)
    if proto == IPPROTO_TCP:
        items += [("tcp_src", src), ("tcp_dst", dst)]
    elif proto == IPPROTO_UDP:
        items += [("udp_src", src), ("udp_dst", dst)]
    elif proto == IPPROTO_ICMPV6:
        items.append(("icmpv6_type", src))
    return items
