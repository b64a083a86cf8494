"""Table numbers, rule priorities and marks of the kernel data path (docs/datapath.md).

Owns: every number that two components must agree on. Must not: hold per-deployment identities
(interfaces, addresses come from config).
"""

from __future__ import annotations

from typing import Final

RT_TABLE_MAIN: Final = 254
RT_TABLE_LOCAL: Final = 255

# Decapsulation: seg6local End.DT6 routes live in DECAP_TABLE, selected by
# "pref DECAP_RULE_PREF to <addr> ipproto 41 lookup DECAP_TABLE", which must come before `local`.
DECAP_TABLE: Final = 250
DECAP_RULE_PREF: Final = 10
LOCAL_RULE_PREF: Final = 1000

# Tunnelled Mobility Header packets (inner next header 135) are marked by nft (prerouting) and
# delivered locally instead of decapsulated, so that a raw socket on protocol 41 receives them
# whole (outer + inner header): "pref MH_DIVERT_PREF fwmark MH_DIVERT_MARK ipproto 41 lookup local".
MH_DIVERT_PREF: Final = 5
MH_DIVERT_MARK: Final = 0x5D1F0029  # 0x5d1f = sdnmip, 0x29 = 41

IPPROTO_IPV6: Final = 41  # RFC 2473 IPv6-in-IPv6
IPPROTO_ROUTING: Final = 43
IPPROTO_ICMPV6: Final = 58
IPPROTO_DSTOPTS: Final = 60
IPPROTO_MH: Final = 135  # RFC 6275 §6.1
