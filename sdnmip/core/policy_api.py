"""The policy engine as the controller's core sees it: one call on the new-flow path.

This module only declares the contract; `sdnmip.core.policy.RuleEngine` implements it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from sdnmip.core.types import Decision, FlowDescriptor, UplinkView


class PolicyEngine(Protocol):
    def decide(
        self, flow: FlowDescriptor, uplinks: Mapping[str, UplinkView], now: float
    ) -> Decision: ...
