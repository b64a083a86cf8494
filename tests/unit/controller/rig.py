"""A test rig: the pure logic wired to the fake switch and a scripted agent, on a mock clock.

Addresses follow the reference testbed (docs/architecture.md); ports and MACs are arbitrary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from sdnmip.controller.config import (
    BindHoas,
    ClaimHoa,
    HoaBound,
    LogicConfig,
    ReleaseHoa,
    SparePool,
    UplinkPorts,
    UplinkState,
)
from sdnmip.controller.logic import MnLogic
from sdnmip.core.policy_api import PolicyEngine, PreferredUplinkPolicy
from sdnmip.core.types import Decision, FlowDescriptor, UplinkView

from .fakeoftable import FakeOFTable, Result
from .pkt import Fields

PRIMARY = "2001:db8:100::1000"
HA = "2001:db8:100::1"
HOME = "2001:db8:100::/64"
CN1 = "2001:db8:c1::10"
CN2 = "2001:db8:c2::10"
COA = {"wlan": "2001:db8:1::2", "lte": "2001:db8:2::2"}
ROUTER_MAC = {"wlan": "02:aa:00:00:00:01", "lte": "02:aa:00:00:00:02"}
HOA0, WLAN, IWLAN, LTE, ILTE = 1, 2, 3, 4, 5
HOA0_MAC = "02:00:00:00:00:01"
TUN_MAC = {"wlan": "02:00:00:00:01:03", "lte": "02:00:00:00:02:05"}
PHYS = {"wlan": WLAN, "lte": LTE}
TUN = {"wlan": IWLAN, "lte": ILTE}
SPARES = [f"2001:db8:100::{i:x}" for i in range(0x2001, 0x2009)]


def make_config(**kw: Any) -> LogicConfig:
    return LogicConfig(
        primary_hoa=IPv6Address(PRIMARY),
        home_prefixes=(IPv6Network(HOME),),
        ha_addresses=(IPv6Address(HA),),
        hoa0_port=HOA0,
        hoa0_mac=HOA0_MAC,
        uplinks=(
            UplinkPorts("wlan", WLAN, IWLAN, TUN_MAC["wlan"]),
            UplinkPorts("lte", LTE, ILTE, TUN_MAC["lte"]),
        ),
        **kw,
    )


class ScriptedPolicy:
    """Uplink by destination port (else the first usable uplink); optional per-port decisions."""

    def __init__(self, by_port: dict[int, Decision] | None = None, default: str = "wlan") -> None:
        self.by_port = by_port or {}
        self.default = default

    def decide(
        self, flow: FlowDescriptor, uplinks: Mapping[str, UplinkView], now: float
    ) -> Decision | None:
        usable = [u.name for u in uplinks.values() if u.usable]
        d = self.by_port.get(flow.key.remote_port) or self.by_port.get(flow.key.local_port)
        if d is not None and d.uplink in usable:
            return d
        if self.default in usable:
            return Decision(self.default)
        return Decision(usable[0]) if usable else None


@dataclass
class Rig:
    logic: MnLogic
    switch: FakeOFTable
    now: float = 0.0
    agent: list[Any] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        policy: PolicyEngine | None = None,
        spares: Sequence[str] = SPARES,
        spare_uplink: str = "wlan",
        **cfg: Any,
    ) -> Rig:
        logic = MnLogic(make_config(**cfg), policy or PreferredUplinkPolicy(["wlan", "lte"]))
        rig = cls(logic, FakeOFTable())
        for name in ("wlan", "lte"):
            rig.event(UplinkState(name, True, IPv6Address(COA[name]), ROUTER_MAC[name]))
        rig.event(HoaBound(IPv6Address(PRIMARY), "wlan"))
        rig.event(SparePool(tuple((IPv6Address(s), spare_uplink) for s in spares)))
        rig.run(logic.reconcile(0.0, []))
        return rig

    # -- plumbing between the pieces ------------------------------------------------------------

    def run(self, actions: list[Any]) -> Result:
        """Apply the logic's actions: messages to the switch, requests to the agent's inbox."""
        delivered = Result()
        for a in actions:
            if isinstance(a, ClaimHoa | BindHoas | ReleaseHoa):
                self.agent.append(a)
                continue
            res = self.switch.apply(a)
            if res is not None:
                delivered.outputs += res.outputs
                delivered.packet_ins += res.packet_ins
        return delivered

    def event(self, ev: Any) -> Result:
        return self.run(self.logic.agent_event(self.now, ev))

    def send(self, in_port: int, pkt: Fields) -> Result:
        """A packet enters the bridge; packet-ins go to the logic, whose answers are applied.

        The result holds where the packet left (by a rule, or by the logic's packet-out) and the
        packet-ins it caused.
        """
        res = self.switch.process(in_port, pkt)
        for pin in list(res.packet_ins):
            out = self.run(self.logic.packet_in(self.now, pin.in_port, pin.table_id, pin.data))
            res.outputs += out.outputs
        return res

    def advance(self, dt: float) -> None:
        """Move the clock: the switch expires rules, the logic hears of it and runs its timers."""
        self.now += dt
        for rem in self.switch.advance(self.now):
            self.run(
                self.logic.flow_removed(self.now, rem.cookie, rem.reason, rem.packets, rem.bytes)
            )
        self.run(self.logic.tick(self.now))
        for rem in self.switch.advance(self.now):  # removals caused by the logic's deletes
            self.run(
                self.logic.flow_removed(self.now, rem.cookie, rem.reason, rem.packets, rem.bytes)
            )

    def take_agent(self) -> list[Any]:
        out, self.agent = self.agent, []
        return out

    def ack_binds(self) -> None:
        """The agent reports every requested binding done (BA accepted)."""
        for req in self.take_agent():
            if isinstance(req, BindHoas):
                for hoa, uplink in req.bindings:
                    self.event(HoaBound(hoa, uplink))

    # -- questions ------------------------------------------------------------------------------

    def flow_for(self, remote: str, remote_port: int) -> Any:
        for e in self.logic.flows:
            if e.key.remote == IPv6Address(remote) and e.key.remote_port == remote_port:
                return e
        raise AssertionError(f"no flow to [{remote}]:{remote_port}")
