"""Random streams of BUs, DAD results and clock ticks: the routes, proxy entries and persisted
rows that the cache's actions produce always equal its bindings, a refused BU never changes
anything, and no binding outlives its lifetime."""

from __future__ import annotations

from ipaddress import IPv6Address

from hypothesis import given, settings
from hypothesis import strategies as st

from sdnmip.home_agent.cache import (
    BindingCache,
    CancelDad,
    ForgetBinding,
    InstallBinding,
    Log,
    PersistBinding,
    RemoveBinding,
    SendBindingAck,
    StartDad,
)
from tests.unit.home_agent.ha_helpers import (
    COA1,
    COA2,
    HOA,
    HOA2,
    KEY,
    KEY2,
    NAI,
    NAI2,
    WALL0,
    bu_event,
    bu_packet,
    config,
)

COA3 = IPv6Address("2001:db8:3::10")
MNS = [(NAI, KEY), (NAI2, KEY2)]

bu_op = st.fixed_dictionaries(
    {
        "kind": st.just("bu"),
        "hoa": st.sampled_from([HOA, HOA2]),
        "coa": st.sampled_from([COA1, COA2, COA3]),
        "mn": st.sampled_from([0, 0, 0, 1]),
        # Mostly the next number, sometimes a repeat, an old one or a far jump (mod 2**16).
        "step": st.sampled_from([1, 1, 1, 1, 0, -1, 32768, 40000]),
        "lifetime": st.sampled_from([0, 1, 5, 100]),
        "ack": st.booleans(),
        "skew": st.sampled_from([0.0, 0.0, 0.0, -9.0, 9.0]),
        "link_local": st.booleans(),
    }
)
dad_op = st.fixed_dictionaries(
    {"kind": st.just("dad"), "hoa": st.sampled_from([HOA, HOA2]), "dup": st.booleans()}
)
tick_op = st.fixed_dictionaries({"kind": st.just("tick"), "dt": st.sampled_from([0.5, 3, 30])})


class World:
    """The kernel and the store as the shell would leave them after each batch of actions."""

    def __init__(self) -> None:
        self.routes: dict[IPv6Address, IPv6Address] = {}
        self.proxied: set[IPv6Address] = set()
        self.rows: dict[IPv6Address, IPv6Address] = {}
        self.dads: set[IPv6Address] = set()

    def apply(self, actions: list[object]) -> None:
        for a in actions:
            if isinstance(a, InstallBinding):
                if a.new:
                    assert a.home_address not in self.routes
                    self.proxied |= set(a.proxied)
                else:
                    assert self.routes[a.home_address] == a.old_careof
                self.routes[a.home_address] = a.careof
            elif isinstance(a, RemoveBinding):
                assert self.routes.pop(a.home_address) == a.careof
                self.proxied -= set(a.proxied)
            elif isinstance(a, PersistBinding):
                self.rows[a.record.home_address] = a.record.careof
            elif isinstance(a, ForgetBinding):
                self.rows.pop(a.home_address, None)
            elif isinstance(a, StartDad):
                assert a.home_address not in self.dads  # never a second DAD for one HoA
                self.dads.add(a.home_address)
            elif isinstance(a, CancelDad):
                self.dads.discard(a.home_address)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(bu_op, bu_op, bu_op, dad_op, tick_op), max_size=40))
def test_actions_keep_kernel_and_store_equal_to_the_cache(ops: list[dict]) -> None:  # type: ignore[type-arg]
    cache = BindingCache(config())
    world = World()
    t = 0.0
    stamp = 0
    seqs = [65530, 0]
    for op in ops:
        before = {k: (b.careof, b.sequence, b.expires, b.nai) for k, b in cache.bindings.items()}
        if op["kind"] == "bu":
            stamp += 1
            nai, key = MNS[op["mn"]]
            seqs[op["mn"]] = (seqs[op["mn"]] + op["step"]) % 65536
            wall = WALL0 + t
            packet = bu_packet(
                hoa=op["hoa"], coa=op["coa"], seq=seqs[op["mn"]], lifetime=op["lifetime"],
                ack=op["ack"], nai=nai, key=key, ts_wall=wall + op["skew"] + stamp * 1e-3,
                link_local=op["link_local"],
            )  # fmt: skip
            actions = cache.on_binding_update(t, bu_event(packet, wall))
            bas = [a for a in actions if isinstance(a, SendBindingAck)]
            if any(a.ba.status >= 128 for a in bas):
                after = {
                    k: (b.careof, b.sequence, b.expires, b.nai) for k, b in cache.bindings.items()
                }
                assert after == before  # a refusal changes no binding ...
                # ... and touches neither kernel nor store (a deregistration during DAD may
                # only cancel that DAD).
                assert all(isinstance(a, SendBindingAck | Log | CancelDad) for a in actions)
        elif op["kind"] == "dad":
            if op["hoa"] not in world.dads:
                continue
            world.dads.discard(op["hoa"])
            actions = cache.on_dad_result(t, op["hoa"], op["dup"])
        else:
            t += op["dt"]
            actions = cache.tick(t)
            assert all(b.expires > t for b in cache.bindings.values())
        world.apply(list(actions))
        assert world.routes == {k: b.careof for k, b in cache.bindings.items()}
        assert world.rows == world.routes
        assert world.proxied == {a for b in cache.bindings.values() for a in b.proxied}
        assert world.dads == set(cache.pending)
        deadline = cache.next_deadline()
        if cache.bindings:
            assert deadline is not None
            assert deadline <= min(b.expires for b in cache.bindings.values())
