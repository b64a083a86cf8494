"""Spike: drive the kx1 topology's HA side through sdnmip.kernel instead of ip/nft commands.

ip netns exec kx1-ha python scripts/spike/kx1_lib.py ha-load <coa>=<hoa> ...
ip netns exec kx1-ha python scripts/spike/kx1_lib.py ha-bind <hoa> <coa>
ip netns exec kx1-mn python scripts/spike/kx1_lib.py mn-load <coa> ...
"""

from __future__ import annotations

import asyncio
import sys
import time

from sdnmip.kernel import nft
from sdnmip.kernel.netlink import AsyncIPRoute
from sdnmip.kernel.tunnel import Seg6Tunnel

HA = "2001:db8:100::1"


async def main(cmd: str, args: list[str]) -> None:
    if cmd == "ha-load":
        pairs = [tuple(a.split("=")) for a in args]
        await nft.load(nft.FilterSpec.for_ha([HA]), bindings=[(c, h) for c, h in pairs])
    elif cmd == "mn-load":
        await nft.load(nft.FilterSpec.for_mn(args))
    elif cmd in ("ha-bind", "ha-bind-grace"):
        hoa, coa = args
        async with AsyncIPRoute() as ipr:
            t = Seg6Tunnel(ipr)
            old = [
                r.endpoint for r in await t.list_encaps() if str(r.prefix.network_address) == hoa
            ]
            t0 = time.perf_counter()
            # order matters: allow the new CoA's reverse tunnel first, then move the route
            # ha-bind-grace keeps the old CoA element (a grace period; removed later by hand)
            drop_old = old[0] if old and cmd == "ha-bind" else None
            await nft.set_binding("sdnmip_ha", hoa, coa, old_coa=drop_old)
            t1 = time.perf_counter()
            await t.set_encap(f"{hoa}/128", coa, "home0")
            t2 = time.perf_counter()
        print(f"bound {hoa} -> {coa}: nft {1e3 * (t1 - t0):.1f} ms, route {1e3 * (t2 - t1):.2f} ms")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
