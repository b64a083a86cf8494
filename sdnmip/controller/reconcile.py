"""The diff between the rules the controller expects and the rules the switch reports.

Owns: `plan()`, which compares expected flow-mods with a flow-stats dump by (table, priority,
canonical match) - the identity OpenFlow itself uses, so nothing can be duplicated - and
returns the adds, in-place modifies and strict deletes that make the switch exact.
Must not: know flows or build expected rules (sdnmip/controller/logic.py does), or send anything.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sdnmip.controller import ofmsg
from sdnmip.controller import pipeline as pl

RuleKey = tuple[int, int, frozenset[tuple[str, Any]]]  # table, priority, canonical match


def rule_key(msg: Any) -> RuleKey:
    return (msg.table_id, msg.priority, ofmsg.match_key(ofmsg.match_items(msg.match)))


@dataclass
class Plan:
    changes: list[Any] = field(default_factory=list)  # adds and modifies: ours first
    deletes: list[Any] = field(default_factory=list)  # then the sweep, so forwarding has no gap
    intact: list[tuple[RuleKey, ofmsg.FlowStat]] = field(default_factory=list)  # as expected
    kept: list[ofmsg.FlowStat] = field(default_factory=list)  # unexpected but in `keep`

    @property
    def messages(self) -> list[Any]:
        return self.changes + self.deletes


def plan(
    expected: Mapping[RuleKey, Any], dump: Iterable[ofmsg.FlowStat], keep: Container[int] = ()
) -> Plan:
    """What to send so the switch holds `expected` (and the rules whose cookie is in `keep`).

    A rule present with another cookie is replaced by an add (same match and priority: OpenFlow
    replaces it); one with our cookie but other actions is modified in place (counters kept);
    one nobody expects is deleted strictly, by its exact match, priority and cookie.
    """
    p = Plan()
    seen: set[RuleKey] = set()
    for stat in dump:
        k = (stat.table_id, stat.priority, ofmsg.match_key(stat.match))
        want = expected.get(k)
        if want is None:
            if stat.cookie in keep:
                p.kept.append(stat)
            else:
                p.deletes.append(
                    pl.delete_rule(stat.table_id, stat.priority, stat.cookie, stat.match)
                )
            continue
        seen.add(k)
        if stat.cookie != want.cookie:
            p.changes.append(want)
        elif stat.instructions != ofmsg.instructions_key(want.instructions):
            p.changes.append(_as_modify(want))
        else:
            p.intact.append((k, stat))
    p.changes.extend(msg for k, msg in expected.items() if k not in seen)
    return p


def _as_modify(msg: Any) -> Any:
    return pl.TABLES[pl.TableId(msg.table_id)].modify_strict(
        msg.priority,
        msg.cookie,
        ofmsg.match_items(msg.match),
        msg.instructions,
        idle_timeout=msg.idle_timeout,
        flags=msg.flags,
    )
