"""Small builders shared by the policy tests."""

from __future__ import annotations

from ipaddress import IPv6Address

from sdnmip.core.policy import Policy
from sdnmip.core.policy_parse import parse_ruleset
from sdnmip.core.types import Direction, FlowDescriptor, FlowKey, UplinkView

MN = IPv6Address("2001:db8:100::1000")
CN1 = IPv6Address("2001:db8:c1::10")
CN2 = IPv6Address("2001:db8:c2::10")


def flow(
    proto: int = 6,
    remote_port: int = 80,
    *,
    local_port: int = 40000,
    remote: IPv6Address = CN1,
    local: IPv6Address = MN,
    direction: Direction = Direction.OUTGOING,
    flow_label: int = 0,
    dscp: int = 0,
    app_id: str | None = None,
) -> FlowDescriptor:
    return FlowDescriptor(
        FlowKey(proto, local, local_port, remote, remote_port),
        direction,
        flow_label=flow_label,
        dscp=dscp,
        app_id=app_id,
    )


def uplink(
    name: str,
    *,
    up: bool = True,
    rate_bps: float = 0.0,
    rtt_ms: float | None = None,
    cost: float = 0.0,
) -> UplinkView:
    coa = IPv6Address(f"2001:db8:{len(name)}::{sum(map(ord, name)):x}") if up else None
    return UplinkView(name, up, coa, rate_bps, rtt_ms, cost)


def uplinks(*views: UplinkView) -> dict[str, UplinkView]:
    return {v.name: v for v in views}


UP = uplinks(uplink("wlan"), uplink("lte"))


def policy(*rules: dict[str, object], source: str = "operator", **top: object) -> Policy:
    return Policy.build(
        [
            parse_ruleset(
                {"version": 1, "source": source, **top, "rules": list(rules)}, origin=source
            )
        ]
    )


def sources(**rules_by_source: list[dict[str, object]]) -> Policy:
    return Policy.build(
        parse_ruleset({"version": 1, "source": src, "rules": rules}, origin=src)
        for src, rules in rules_by_source.items()
    )
