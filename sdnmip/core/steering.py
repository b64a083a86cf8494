"""The policy engine the controller asks: the rule engine, with the MN's own facts added.

`SteeringEngine` implements `sdnmip.core.policy_api.PolicyEngine` around a `RuleEngine`:
- it attributes each flow to the application that declared it (`sdnmip.core.apps.AppIndex`), so
  rules matching `app_id` apply (the Data Flow Separator's "applications" source);
- it gives the uplink views the configuration's facts that the controller does not track: the
  operator's cost per uplink (for `max_cost` and `cheapest`) and the preference order
  (`preferred_uplink` first), which is the "configured order" every strategy breaks ties by and
  the built-in default follows;
- `install` puts a new Policy in force and says which live flows it affects: those whose
  deciding rules differ, compared with the old and the new attributions (a declaration added or
  withdrawn changes which flows an application owns).

Pure: no I/O, no clocks. The shell installs policies under the controller's lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from sdnmip.core.apps import AppIndex
from sdnmip.core.policy import EMPTY_POLICY, Policy, RuleEngine
from sdnmip.core.types import Decision, FlowDescriptor, UplinkView


class SteeringEngine:
    """Decides new flows (PolicyEngine) and installs policies, reporting the flows they affect."""

    __slots__ = ("_apps", "_costs", "_engine", "_last_in", "_last_out", "_order")

    def __init__(
        self,
        policy: Policy = EMPTY_POLICY,
        *,
        costs: Mapping[str, float] | None = None,
        order: Sequence[str] = (),
    ) -> None:
        self._engine = RuleEngine(policy)
        self._apps = AppIndex(policy)
        self._costs = dict(costs or {})
        self._order = {name: i for i, name in enumerate(order)}
        self._last_in: Mapping[str, UplinkView] | None = None
        self._last_out: Mapping[str, UplinkView] = {}

    @property
    def policy(self) -> Policy:
        return self._engine.policy

    @property
    def apps(self) -> AppIndex:
        return self._apps

    def attribute(self, flow: FlowDescriptor) -> FlowDescriptor:
        return self._apps.attribute(flow)

    def decide(
        self, flow: FlowDescriptor, uplinks: Mapping[str, UplinkView], now: float
    ) -> Decision:
        return self._engine.decide(self._apps.attribute(flow), self._views(uplinks), now)

    def install(
        self, policy: Policy, live: Iterable[tuple[int, FlowDescriptor]] = ()
    ) -> frozenset[int]:
        """Put `policy` in force; return the ids of the live flows whose decision may change."""
        old, old_apps = self._engine.policy, self._apps
        new_apps = AppIndex(policy)
        affected = frozenset(
            fid
            for fid, desc in live
            if old.chain(old_apps.attribute(desc)) != policy.chain(new_apps.attribute(desc))
        )
        self._engine.install(policy)
        self._apps = new_apps
        return affected

    def _views(self, uplinks: Mapping[str, UplinkView]) -> Mapping[str, UplinkView]:
        # The controller builds a new mapping whenever an uplink changes: one rebuild per change.
        if uplinks is self._last_in:
            return self._last_out
        if not self._costs and not self._order:
            out: Mapping[str, UplinkView] = uplinks
        else:
            views = [
                replace(v, cost=self._costs[name]) if name in self._costs else v
                for name, v in uplinks.items()
            ]
            last = len(self._order)
            views.sort(key=lambda v: self._order.get(v.name, last))  # stable: the rest in order
            out = {v.name: v for v in views}
        self._last_in, self._last_out = uplinks, out
        return out


__all__ = ["SteeringEngine"]
