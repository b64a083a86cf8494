"""How one action picks an uplink among its candidates, from what the core knows of each uplink.

Every strategy skips candidates that are not usable (down, or no Care-of Address), that the
controller does not know, or whose cost is above the action's `max_cost`, and returns None when no
candidate is left. Ties go to the candidate listed first, so every choice is deterministic.
Only the weighted split keeps state (`SmoothWeighted`); the others are pure functions of the
UplinkViews. No clocks, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from sdnmip.core.policy_model import Action, Strategy
from sdnmip.core.types import UplinkView


def eligible(view: UplinkView | None, max_cost: float | None) -> bool:
    return (
        view is not None
        and view.up
        and view.coa is not None
        and (max_cost is None or view.cost <= max_cost)
    )


def candidates(action: Action, uplinks: Mapping[str, UplinkView]) -> tuple[str, ...]:
    """The action's candidates in order (every known uplink when the action names none)."""
    return tuple(uplinks) if action.uplinks is None else action.uplinks


def choose_stateless(action: Action, uplinks: Mapping[str, UplinkView]) -> str | None:
    """The choice of every strategy except WEIGHTED (which needs `SmoothWeighted`)."""
    names = uplinks if action.uplinks is None else action.uplinks
    max_cost = action.max_cost
    strategy = action.strategy
    if strategy is Strategy.UPLINK or strategy is Strategy.PREFER:
        for name in names:
            if eligible(uplinks.get(name), max_cost):
                return name
        return None
    best: str | None = None
    best_key: tuple[float, float] = (0.0, 0.0)
    for name in names:
        view = uplinks.get(name)
        if view is None or not eligible(view, max_cost):
            continue
        if strategy is Strategy.LEAST_LOADED:
            key = (view.rate_bps, 0.0)
        elif strategy is Strategy.LOWEST_RTT:
            # An uplink with no RTT measurement yet ranks after every measured one.
            key = (0.0, view.rtt_ms) if view.rtt_ms is not None else (1.0, 0.0)
        elif strategy is Strategy.CHEAPEST:
            key = (view.cost, 0.0)
        else:
            raise ValueError(f"{strategy} is not a stateless strategy")
        if best is None or key < best_key:
            best, best_key = name, key
    return best


class SmoothWeighted:
    """Smooth weighted round-robin over the usable candidates (the nginx upstream algorithm).

    Each pick adds every eligible candidate's weight to its credit, takes the candidate with the
    most credit (first listed on a tie) and takes the eligible total back from it. Every cycle of
    sum(weights) picks gives each uplink exactly its weight, interleaved rather than in bursts;
    in between, each count stays near its exact share (within one flow for two uplinks, at most
    about 1.2 measured for six). So 100 new flows split 3:1 give 75 and 25, with no randomness.
    When the set of eligible candidates changes (an uplink goes down or comes back) the credits
    restart from zero, so the split over the new set is again exact from that point.
    """

    __slots__ = ("_credit", "_eligible", "names", "weights")

    def __init__(self, names: tuple[str, ...], weights: tuple[int, ...]) -> None:
        if len(names) != len(weights) or not names:
            raise ValueError("weighted split needs one weight per uplink")
        self.names = names
        self.weights = weights
        self._credit = [0] * len(names)
        self._eligible: tuple[int, ...] = ()

    def pick(self, uplinks: Mapping[str, UplinkView], max_cost: float | None) -> str | None:
        chosen = tuple(
            i
            for i, name in enumerate(self.names)
            if self.weights[i] > 0 and eligible(uplinks.get(name), max_cost)
        )
        if not chosen:
            return None
        credit = self._credit
        if chosen != self._eligible:
            self._eligible = chosen
            for i in range(len(credit)):
                credit[i] = 0
        total = 0
        best = chosen[0]
        for i in chosen:
            weight = self.weights[i]
            total += weight
            credit[i] += weight
            if credit[i] > credit[best]:
                best = i
        credit[best] -= total
        return self.names[best]
