"""Builders for the HA unit tests: real BU packets built and decoded by the codec, so that the
cache sees exactly what the daemon would hand it."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

from sdnmip.home_agent.authn import authenticate
from sdnmip.home_agent.cache import (
    BindingCache,
    BindingUpdateIn,
    CacheConfig,
    SendBindingAck,
    ServedPrefix,
)
from sdnmip.home_agent.keys import KeyStore
from sdnmip.mipv6 import (
    AlternateCareofAddress,
    BindingUpdate,
    MnHaKey,
    MobileNodeIdentifier,
    build_mh_packet,
    decode_ipv6_packet,
    replay_protection,
)
from sdnmip.mipv6.options import MobilityOption

HA = IPv6Address("2001:db8:100::1")
PREFIX = IPv6Network("2001:db8:100::/64")
HOA = IPv6Address("2001:db8:100::1000")
HOA2 = IPv6Address("2001:db8:100::2000")
COA1 = IPv6Address("2001:db8:1::10")
COA2 = IPv6Address("2001:db8:2::10")
NAI = "mn1@sdnmip.example"
NAI2 = "mn2@sdnmip.example"
KEY = MnHaKey(spi=4096, key=bytes(range(16)))
KEY2 = MnHaKey(spi=4097, key=bytes(range(16, 32)))
KEYS = KeyStore({NAI: KEY, NAI2: KEY2})
WALL0 = 1_800_000_000.0  # the HA's Unix time at mock time 0


def config(**kw: object) -> CacheConfig:
    base: dict[str, object] = {
        "ha_address": HA,
        "prefixes": (ServedPrefix(PREFIX),),
        "max_lifetime": 3600.0,
        "refresh_advice": 0.8,
        "replay_window": 7.0,
        "dad": True,
    }
    base.update(kw)
    return CacheConfig(**base)  # type: ignore[arg-type]


def bu_packet(
    *,
    hoa: IPv6Address = HOA,
    coa: IPv6Address = COA1,
    seq: int = 1,
    lifetime: int = 100,
    ack: bool = True,
    home: bool = True,
    link_local: bool = False,
    nai: str | None = NAI,
    key: MnHaKey | None = KEY,
    ts_wall: float | None = WALL0,
    alt_coa: IPv6Address | None = None,
    hao: bool = True,
) -> bytes:
    opts: list[MobilityOption] = []
    if alt_coa is not None:
        opts.append(AlternateCareofAddress(alt_coa))
    if nai is not None:
        opts.append(MobileNodeIdentifier.from_nai(nai))
    if ts_wall is not None:
        opts.append(replay_protection(ts_wall))
    bu = BindingUpdate(
        sequence=seq,
        lifetime=lifetime,
        ack=ack,
        home_registration=home,
        link_local=link_local,
        key_management=False,
        options=tuple(opts),
    )
    return build_mh_packet(coa, HA, bu, home_address=hoa if hao else None, auth=key)


def bu_event(packet: bytes, wall: float, keys: KeyStore = KEYS) -> BindingUpdateIn:
    """What the daemon derives from a received packet."""
    d = decode_ipv6_packet(packet)
    assert isinstance(d.message, BindingUpdate)
    alt = next((o for o in d.message.options if isinstance(o, AlternateCareofAddress)), None)
    return BindingUpdateIn(
        src=d.src,
        careof=alt.alternate_careof_address if alt else d.src,
        home_address=d.home_address or d.src,
        has_home_address_option=d.home_address is not None,
        bu=d.message,
        auth=authenticate(d, keys),
        wall=wall,
    )


class Harness:
    """A cache on a mock clock: `t` is monotonic seconds, the wall clock is WALL0 + t."""

    def __init__(self, **cfg: object) -> None:
        self.cache = BindingCache(config(**cfg))
        self.t = 0.0
        self._stamps = 0

    @property
    def wall(self) -> float:
        return WALL0 + self.t

    def send(self, **kw: object) -> list[object]:
        # The MN stamps each BU with its clock: successive BUs get increasing timestamps even
        # when the mock clock has not moved (1 ms apart, far inside the replay window).
        self._stamps += 1
        kw.setdefault("ts_wall", self.wall + self._stamps * 1e-3)
        return list(self.cache.on_binding_update(self.t, bu_event(bu_packet(**kw), self.wall)))  # type: ignore[arg-type]

    def advance(self, dt: float) -> list[object]:
        self.t += dt
        return list(self.cache.tick(self.t))

    def dad_ok(self, hoa: IPv6Address = HOA) -> list[object]:
        return list(self.cache.on_dad_result(self.t, hoa, duplicate=False))

    def register(self, **kw: object) -> list[object]:
        """A first registration including a successful DAD."""
        self.send(**kw)
        return self.dad_ok(kw.get("hoa", HOA))  # type: ignore[arg-type]


def acks(actions: list[object]) -> list[SendBindingAck]:
    return [a for a in actions if isinstance(a, SendBindingAck)]


def only_ack(actions: list[object]) -> SendBindingAck:
    found = acks(actions)
    assert len(found) == 1, actions
    return found[0]
