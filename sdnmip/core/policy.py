"""The running policy and the engine that answers "which network for this new flow?".

`Policy` is an immutable value: the rule sets of every origin, checked together (rule ids unique
per source, at most one default and one precedence), put in their one evaluation order and
compiled for matching. Changing the policy means building a new Policy; a refused change raises
PolicyError and leaves the running one as it was.

`RuleEngine` implements `sdnmip.core.policy_api.PolicyEngine`: the first rule in order that
matches the flow and has a usable uplink decides; a rule with `fallback: none` and no usable
uplink holds the flow on its own uplink; otherwise the default decides. Its only state is the
weighted-split credit. `affected_flows` (pure) and `RuleEngine.apply` say which live flows a
policy change re-steers.

No I/O, no clocks: `now` comes from the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from sdnmip.core.policy_index import MatchIndex
from sdnmip.core.policy_model import (
    DEFAULT_PRECEDENCE,
    Action,
    Fallback,
    PolicyError,
    Rule,
    RuleSet,
    Source,
    Strategy,
    ordered_rules,
)
from sdnmip.core.strategies import SmoothWeighted, candidates, choose_stateless
from sdnmip.core.types import Decision, FlowDescriptor, Mode, UplinkView

# With no default configured: the first usable uplink in the controller's configured order.
BUILTIN_DEFAULT = Action(Strategy.PREFER, None)
DEFAULT_KEY = ""  # weighted-split state key of the default action (rule keys are "source:id")

_Behaviour = tuple[object, ...]


class _Compiled:
    """One rule on the new-flow path: what it does, and its Decisions cached."""

    __slots__ = ("action", "decisions", "fallback", "key", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.key = rule.qualified_id
        self.action = rule.action
        self.fallback = rule.fallback
        self.decisions: dict[str, Decision] = {}

    def decision(self, uplink: str) -> Decision:
        # Decisions are immutable: one per (rule, uplink) is shared by every flow it decides.
        found = self.decisions.get(uplink)
        if found is None:
            rule = self.rule
            found = Decision(uplink, rule.mode, rule.dedicated_hoa, self.key)
            self.decisions[uplink] = found
        return found


class Policy:
    """Every origin's rules, validated together and in evaluation order. Immutable.

    Build with `Policy.build(rulesets)` (rule sets come from `policy_parse.parse_ruleset`) and
    change with `update`, which returns a new Policy or raises PolicyError.
    """

    __slots__ = ("_compiled", "_index", "default", "precedence", "rules", "rulesets")

    def __init__(self, rulesets: tuple[RuleSet, ...]) -> None:
        """Use `build`: it checks what spans rule sets before this runs."""
        self.rulesets = rulesets
        self.precedence = next(
            (rs.precedence for rs in rulesets if rs.precedence is not None), DEFAULT_PRECEDENCE
        )
        self.default = next(
            (rs.default for rs in rulesets if rs.default is not None), BUILTIN_DEFAULT
        )
        self.rules = ordered_rules(rulesets, self.precedence)
        self._compiled = tuple(_Compiled(rule) for rule in self.rules)
        self._index = MatchIndex([rule.match for rule in self.rules])

    @classmethod
    def build(cls, rulesets: Iterable[RuleSet] = ()) -> Policy:
        sets = tuple(sorted(rulesets, key=lambda rs: rs.origin))
        origins: set[str] = set()
        owners: dict[tuple[Source, str], str] = {}
        default_from: str | None = None
        precedence_from: str | None = None
        for rs in sets:
            if rs.origin in origins:
                raise PolicyError((), f"two rule sets from origin {rs.origin!r}")
            origins.add(rs.origin)
            if rs.default is not None:
                if default_from is not None:
                    raise PolicyError(
                        ("default",), f"already set by {default_from}", origin=rs.origin
                    )
                default_from = rs.origin
            if rs.precedence is not None:
                if precedence_from is not None:
                    raise PolicyError(
                        ("precedence",), f"already set by {precedence_from}", origin=rs.origin
                    )
                precedence_from = rs.origin
            for i, rule in enumerate(rs.rules):
                other = owners.get((rule.source, rule.id))
                if other is not None:
                    raise PolicyError(
                        ("rules", i, "id"),
                        f"{rule.source.value} rule id {rule.id!r} is already used in {other}",
                        origin=rs.origin,
                    )
                owners[(rule.source, rule.id)] = rs.origin
        return cls(sets)

    def update(self, put: Iterable[RuleSet] = (), remove: Iterable[str] = ()) -> Policy:
        """A new Policy with rule sets added or replaced (by origin) and origins removed."""
        new = {rs.origin: rs for rs in put}
        dropped = set(remove) | set(new)
        kept = [rs for rs in self.rulesets if rs.origin not in dropped]
        return Policy.build([*kept, *new.values()])

    def put_rule(self, origin: str, rule: Rule) -> Policy:
        """A new Policy with `rule` added to the rule set `origin` (created if absent), or
        replacing the rule of the same id there: what the REST API's "push a rule" needs."""
        found = self.ruleset(origin)
        if found is None:
            return self.update(put=[RuleSet(origin, rule.source, (rule,))])
        if found.source is not rule.source:
            raise PolicyError(
                (),
                f"origin {origin!r} holds {found.source.value} rules, not {rule.source.value}",
            )
        rules = [r for r in found.rules if r.id != rule.id]
        return self.update(put=[replace(found, rules=(*rules, rule))])

    def remove_rule(self, source: Source, rule_id: str) -> Policy:
        """A new Policy without the rule; PolicyError if there is no such rule."""
        for rs in self.rulesets:
            if rs.source is source and any(r.id == rule_id for r in rs.rules):
                rules = tuple(r for r in rs.rules if r.id != rule_id)
                return self.update(put=[replace(rs, rules=rules)])
        raise PolicyError((), f"there is no {source.value} rule {rule_id!r}")

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(rs.origin for rs in self.rulesets)

    def ruleset(self, origin: str) -> RuleSet | None:
        return next((rs for rs in self.rulesets if rs.origin == origin), None)

    def find(self, source: Source, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.source is source and r.id == rule_id), None)

    def matching(self, flow: FlowDescriptor) -> tuple[Rule, ...]:
        """Every rule whose match holds for the flow, in evaluation order."""
        mask = self._index.lookup(flow)
        return tuple(r for i, r in enumerate(self.rules) if mask >> i & 1)

    def chain(self, flow: FlowDescriptor) -> tuple[_Behaviour, ...]:
        """What can decide this flow, in order, whatever the uplinks' state: the matching rules
        up to the first that never steps aside, then the default. Two policies with equal chains
        for a flow decide it alike in every uplink state."""
        out: list[_Behaviour] = []
        for r in self.matching(flow):
            out.append((r.qualified_id, r.action, r.mode, r.dedicated_hoa, r.fallback))
            if r.fallback is Fallback.NONE:
                return tuple(out)
        out.append((DEFAULT_KEY, self.default))
        return tuple(out)

    def __repr__(self) -> str:
        return f"Policy({len(self.rulesets)} rule sets, {len(self.rules)} rules)"


EMPTY_POLICY = Policy.build()


def affected_flows(
    old: Policy, new: Policy, flows: Iterable[FlowDescriptor]
) -> list[FlowDescriptor]:
    """The flows whose decision may change from `old` to `new` (pure).

    A flow is affected when the rules that can decide it differ: a matching rule added, removed,
    reordered, or with another action, mode, dedicated HoA or fallback. Unaffected flows keep
    whatever uplink they have, including one an operator moved them to by hand.
    """
    return [flow for flow in flows if old.chain(flow) != new.chain(flow)]


@dataclass(frozen=True, slots=True)
class Resteer:
    """A live flow the new policy sends elsewhere (`RuleEngine.apply`)."""

    flow: FlowDescriptor
    old: Decision
    new: Decision


def is_held(decision: Decision, uplinks: Mapping[str, UplinkView]) -> bool:
    """True when the decision names an uplink that cannot carry the flow now: no uplink the
    policy allows is usable (a `fallback: none` rule, or no usable uplink at all). The
    controller must not send the flow then; it re-decides when an uplink comes up."""
    view = uplinks.get(decision.uplink)
    return view is None or not view.usable


class RuleEngine:
    """Decides new flows with the running Policy (implements policy_api.PolicyEngine)."""

    __slots__ = ("_defaults", "_policy", "_split")

    def __init__(self, policy: Policy = EMPTY_POLICY) -> None:
        self._policy = policy
        self._split: dict[str, SmoothWeighted] = {}
        self._defaults: dict[str, Decision] = {}

    @property
    def policy(self) -> Policy:
        return self._policy

    def install(self, policy: Policy) -> None:
        """Make `policy` the running one. A weighted rule that is unchanged (same source, id
        and action) keeps its credit, so a reload does not restart its split."""
        keep: dict[str, SmoothWeighted] = {}
        old_actions = {c.key: c.action for c in self._policy._compiled}
        old_actions[DEFAULT_KEY] = self._policy.default
        new_actions = {c.key: c.action for c in policy._compiled}
        new_actions[DEFAULT_KEY] = policy.default
        for key, split in self._split.items():
            if key in new_actions and new_actions[key] == old_actions.get(key):
                keep[key] = split
        self._policy = policy
        self._split = keep

    def apply(
        self,
        policy: Policy,
        live: Iterable[tuple[FlowDescriptor, Decision]],
        uplinks: Mapping[str, UplinkView],
        now: float,
    ) -> list[Resteer]:
        """Install `policy` and re-decide the live flows it affects (each with its current
        Decision). Returns those whose Decision changes, for the controller to hand over.

        Affected flows go through weighted splits again, so a changed split re-spreads them.
        """
        flows = list(live)
        old = self._policy
        current = {f.key: d for f, d in flows}
        self.install(policy)
        moves: list[Resteer] = []
        for flow in affected_flows(old, policy, (f for f, _ in flows)):
            decision = self.decide(flow, uplinks, now)
            if decision != current[flow.key]:
                moves.append(Resteer(flow, current[flow.key], decision))
        return moves

    def decide(
        self, flow: FlowDescriptor, uplinks: Mapping[str, UplinkView], now: float
    ) -> Decision:
        """The Decision for one new flow. `now` is unused today: strategies read the measured
        values in `uplinks`, which the caller refreshes."""
        policy = self._policy
        compiled = policy._compiled
        mask = policy._index.lookup(flow)
        while mask:
            low = mask & -mask  # the first matching rule left, in evaluation order
            c = compiled[low.bit_length() - 1]
            name = self._choose(c.key, c.action, uplinks)
            if name is not None:
                return c.decision(name)
            if c.fallback is Fallback.NONE:
                return c.decision(self._held(c.action, uplinks))
            mask ^= low
        name = self._choose(DEFAULT_KEY, policy.default, uplinks)
        if name is None:
            name = self._choose(DEFAULT_KEY, BUILTIN_DEFAULT, uplinks)
        if name is None:
            name = self._held(policy.default, uplinks)
        found = self._defaults.get(name)
        if found is None:
            found = self._defaults[name] = Decision(name, Mode.ANCHORED, None, None)
        return found

    def _choose(self, key: str, action: Action, uplinks: Mapping[str, UplinkView]) -> str | None:
        if action.strategy is not Strategy.WEIGHTED:
            return choose_stateless(action, uplinks)
        split = self._split.get(key)
        if split is None:
            assert action.uplinks is not None  # the validator requires weighted uplinks
            split = self._split[key] = SmoothWeighted(action.uplinks, action.weights)
        return split.pick(uplinks, action.max_cost)

    @staticmethod
    def _held(action: Action, uplinks: Mapping[str, UplinkView]) -> str:
        names = candidates(action, uplinks)
        if not names:
            raise ValueError("no uplinks: the controller must know at least one uplink")
        return names[0]


__all__ = [
    "BUILTIN_DEFAULT",
    "EMPTY_POLICY",
    "Policy",
    "PolicyError",
    "Resteer",
    "RuleEngine",
    "affected_flows",
    "is_held",
]
