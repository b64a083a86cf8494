"""Which Home Address claims at the agent disagree with the controller's live flows.

Owns: `plan()`, the comparison of the HoAs the agent counts as claimed (its snapshot, sent on
every subscription) with the HoAs the controller's live flows use, after a restart of either:
- a HoA that a live flow uses (persisted or adopted from the switch) and that the agent does
  not count as claimed (a spare, held for deregistration, or unknown) is claimed again, so the
  agent neither hands it to another flow nor deregisters it under the flow;
- a HoA the agent counts as claimed, or the controller holds, that no live flow uses, that is
  not the Primary and that no policy rule dedicates, is released (the agent's normal release:
  hold time, then back to the pool or deregistered). This is how the claims of a controller
  that died after claiming them, before its snapshot, and whose flows ended meanwhile, come
  back instead of staying "in use" for ever.
Must not: change any table or build requests (the logic applies the plan), or know the RPC.

Requests the plan yields may repeat ones still on their way to the agent (a claim or release
in its queue when the snapshot was taken); both are idempotent there, and they reach it in the
order the logic emitted them, so the last one wins, and it reflects the live flows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.core.flows import FlowTable
from sdnmip.core.redirector import ControllerHoaTable


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    claim: tuple[IPv6Address, ...] = ()  # used by live flows, not claimed at the agent
    release: tuple[IPv6Address, ...] = ()  # claimed or held, used by no live flow

    def __bool__(self) -> bool:
        return bool(self.claim or self.release)


def plan(
    hoas: ControllerHoaTable,
    flows: FlowTable,
    agent_claimed: Collection[IPv6Address],
    dedicated: Collection[IPv6Address] = (),
) -> ClaimPlan:
    """Claims and releases that make the agent's claims equal the HoAs live flows use.

    Every HoA a live flow uses is held in `hoas` (the logic holds a HoA before a flow uses
    it), so scanning the held HoAs and the agent's claims covers both sides.
    """
    claim: list[IPv6Address] = []
    release: list[IPv6Address] = []
    seen: set[IPv6Address] = set()
    for rec in hoas.held():
        seen.add(rec.addr)
        if rec.primary:
            continue
        if flows.hoa_flow_count(rec.addr) > 0:
            if rec.addr not in agent_claimed:
                claim.append(rec.addr)
        elif rec.addr not in dedicated:
            release.append(rec.addr)
    for hoa in sorted(agent_claimed):
        if hoa in seen or hoa == hoas.primary or hoa in dedicated:
            continue
        if flows.hoa_flow_count(hoa) == 0:
            release.append(hoa)
    return ClaimPlan(tuple(claim), tuple(release))
