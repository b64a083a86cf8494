"""Decisions per second of the policy engine on the new-flow path.

Run from the repository root: `python bench/bench_policy.py [--rules N] [--flows N]`.
The policy has N rules of every kind (ports, prefixes, DSCP, app ids, strategies); the flows are
a mix where most walk past many rules and a share reach the default, which is the slow case.
"""

from __future__ import annotations

import argparse
import sys
import time
from ipaddress import IPv6Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdnmip.core.policy import Policy, RuleEngine
from sdnmip.core.policy_parse import Context, parse_ruleset
from sdnmip.core.types import (
    Direction,
    FlowDescriptor,
    FlowKey,
    UplinkView,
)

UPLINKS = ("wlan", "lte")
STRATEGIES: tuple[object, ...] = (
    {"weighted": {"wlan": 3, "lte": 1}},
    "least_loaded",
    "lowest_rtt",
    "cheapest",
    {"prefer": ["lte", "wlan"]},
)


def make_rules(count: int) -> list[dict[str, object]]:
    rules: list[dict[str, object]] = []
    for i in range(count):
        kind = i % 5
        match: dict[str, object]
        if kind == 0:
            match = {"proto": "tcp", "remote_port": f"{10000 + 10 * i}-{10009 + 10 * i}"}
        elif kind == 1:
            match = {"proto": "udp", "remote": f"2001:db8:{i:x}::/48", "remote_port": 5000 + i}
        elif kind == 2:
            match = {"dscp": ["af41", "af42"], "local_port": [1000 + i, 2000 + i]}
        elif kind == 3:
            match = {"app_id": f"app{i}", "direction": "outgoing"}
        else:
            match = {"proto": ["tcp", "udp"], "remote": f"2001:db8:c{i % 3}::{i:x}"}
        rule: dict[str, object] = {"id": f"r{i}", "priority": i % 7, "match": match}
        if i % 3 == 0:
            rule["strategy"] = STRATEGIES[i % len(STRATEGIES)]
        else:
            rule["uplink"] = UPLINKS[i % 2]
        rules.append(rule)
    return rules


def make_flows(count: int) -> list[FlowDescriptor]:
    flows = []
    local = IPv6Address("2001:db8:100::1000")
    for i in range(count):
        proto = 6 if i % 2 else 17
        remote = IPv6Address(f"2001:db8:c{i % 4}::{i % 50:x}")
        port = (10000 + (i * 7) % 400) if i % 3 else 443
        flows.append(
            FlowDescriptor(
                FlowKey(proto, local, 30000 + i % 30000, remote, port),
                Direction.OUTGOING,
                dscp=34 if i % 11 == 0 else 0,
                app_id=f"app{i % 40}" if i % 5 == 0 else None,
            )
        )
    return flows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=40)
    parser.add_argument("--flows", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    doc = {"version": 1, "source": "operator", "rules": make_rules(args.rules)}
    policy = Policy.build([parse_ruleset(doc, origin="bench", context=Context(frozenset(UPLINKS)))])
    engine = RuleEngine(policy)
    uplinks = {
        "wlan": UplinkView("wlan", True, IPv6Address("2001:db8:1::2"), 5e6, 12.0, 0.0),
        "lte": UplinkView("lte", True, IPv6Address("2001:db8:2::2"), 2e6, 40.0, 1.0),
    }
    flows = make_flows(args.flows)
    decide = engine.decide
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        for flow in flows:
            decide(flow, uplinks, 0.0)
        best = min(best, time.perf_counter() - start)
    per_s = len(flows) / best
    defaulted = sum(decide(f, uplinks, 0.0).rule_id is None for f in flows)
    print(
        f"{args.rules} rules, {len(flows)} flows ({defaulted} reach the default): "
        f"{per_s:,.0f} decisions/s, {1e6 / per_s:.2f} us/decision (best of {args.repeat})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
