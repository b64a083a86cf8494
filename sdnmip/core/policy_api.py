"""The contract between the controller's logic and a policy engine, plus the default engine.

Owns: the `PolicyEngine` protocol the controller logic calls for every new flow (and on
`resteer`), and `PreferredUplinkPolicy`, the default used when no rules are configured.
Must not: hold flow state, choose Home Addresses (that is Figure 6, sdnmip/core/redirector.py),
do I/O or read clocks. The rule engine (operator, network, application and user rules) is
`sdnmip.core.policy.RuleEngine`.

Contract of `decide`:
- It is called with the flow's descriptor, every configured uplink's current view (usable or
  not), keyed by name in the configured order, and the current time. It must be cheap: it runs
  on the new-flow path, which has a budget of well under 100 us in total.
- It returns the `Decision` for the flow, or None when no uplink is acceptable now; the logic then
  drops the packet without installing a rule, so the next packet asks again.
- A Decision naming an uplink that is not usable is treated like None ("held", see
  `sdnmip.core.policy.is_held`): fallback between uplinks is the engine's job, because only the
  engine knows whether a rule forbids the other uplink.
- `Decision.mode` is honoured for outgoing flows only: an incoming flow arrived on a Home
  Address and must stay anchored on it (patent Figure 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from sdnmip.core.types import Decision, FlowDescriptor, UplinkView


class PolicyEngine(Protocol):
    """Anything that can place one flow on an uplink."""

    def decide(
        self, flow: FlowDescriptor, uplinks: Mapping[str, UplinkView], now: float
    ) -> Decision | None: ...


class PreferredUplinkPolicy:
    """Default policy: the first usable uplink in the configured preference order.

    Uplinks not named in `preferred` come after the named ones, in the order the logic lists
    them (the configuration order). Every flow is anchored (through the HA).
    """

    def __init__(self, preferred: Sequence[str] = ()) -> None:
        self._rank = {name: i for i, name in enumerate(preferred)}

    def decide(
        self, flow: FlowDescriptor, uplinks: Mapping[str, UplinkView], now: float
    ) -> Decision | None:
        best: UplinkView | None = None
        best_rank = 0
        for i, view in enumerate(uplinks.values()):
            if not view.usable:
                continue
            rank = self._rank.get(view.name, len(self._rank) + i)
            if best is None or rank < best_rank:
                best, best_rank = view, rank
        return None if best is None else Decision(uplink=best.name)
