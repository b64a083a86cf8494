"""nft tables: atomic load/replace/unload and set updates, on the real nftables."""

from __future__ import annotations

import pytest

from sdnmip.kernel import nft
from sdnmip.kernel.errors import KernelConfigError, KernelRequestError
from tests.integration.kernel.kernel_lab import Lab, Netns

NS_TAG = "5"
HA = "2001:db8:100::1"
COA1, COA2, HOA = "2001:db8:1::100", "2001:db8:2::100", "2001:db8:100::2001"


@pytest.fixture(scope="module")
def ns(lab: Lab) -> Netns:
    return lab.ns("ha")


def ruleset(ns: Netns) -> str:
    return ns.run("nft", "list", "ruleset").stdout


def elements(ns: Netns, setname: str) -> str:
    return " ".join(ns.run("nft", "list", "set", "inet", "sdnmip_ha", setname).stdout.split())


def test_load_replace_unload(ns: Netns) -> None:
    spec = nft.FilterSpec.for_ha([HA])
    ns.arun(lambda: nft.load(spec, bindings=[(COA1, HOA)]))
    ns.arun(lambda: nft.load(spec, bindings=[(COA1, HOA)]))  # replace, not duplicate
    text = ruleset(ns)
    assert text.count("table inet sdnmip_ha") == 1
    assert text.count('comment "pp-hao"') == 1
    assert f"{COA1} . 0x20010db8010000000000000000002001" in elements(ns, "bindings")
    # a replace with another spec swaps everything in one go
    other = nft.FilterSpec(spec.table, frozenset(), drop_redirects=True)
    ns.arun(lambda: nft.load(other))
    text = ruleset(ns)
    assert "pp-hao" not in text and "bindings" not in text and "redirect" in text
    ns.arun(lambda: nft.unload(spec.table))
    ns.arun(lambda: nft.unload(spec.table))  # absent: still fine
    assert "sdnmip_ha" not in ruleset(ns)


def test_a_failing_transaction_changes_nothing(ns: Netns) -> None:
    spec = nft.FilterSpec.for_ha([HA])
    ns.arun(lambda: nft.load(spec))
    before = ruleset(ns)
    bad = nft.render(spec).replace("type ipv6_addr", "type no_such_type")
    script = f"delete table inet {spec.table}\n{bad}"
    with pytest.raises(KernelRequestError, match=r"nft -f - \(delete table inet sdnmip_ha"):
        ns.arun(lambda: nft.run_nft(script))
    assert ruleset(ns) == before  # the delete in the same transaction did not happen
    ns.arun(lambda: nft.unload(spec.table))


def test_set_updates_are_atomic_and_idempotent(ns: Netns) -> None:
    spec = nft.FilterSpec.for_ha([HA])
    ns.arun(lambda: nft.load(spec))
    try:
        ns.arun(lambda: nft.set_binding(spec.table, HOA, COA1))
        ns.arun(lambda: nft.set_binding(spec.table, HOA, COA1))
        ns.arun(lambda: nft.set_binding(spec.table, HOA, COA2, old_coa=COA1))
        got = elements(ns, "bindings")
        assert COA2 in got and COA1 not in got
        ns.arun(lambda: nft.set_binding(spec.table, HOA, None, old_coa=COA2))
        ns.arun(lambda: nft.set_binding(spec.table, HOA, None, old_coa=COA2))
        assert "elements" not in elements(ns, "bindings")
        ns.arun(lambda: nft.set_own(spec.table, add=[COA1], remove=[HA]))
        ns.arun(lambda: nft.set_own(spec.table, remove=[HA]))
        own = elements(ns, "own")
        assert COA1 in own and HA not in own
        with pytest.raises(KernelConfigError, match="table="):
            ns.arun(lambda: nft.unload("bad name;"))
        with pytest.raises(KernelConfigError, match="bindings"):
            ns.arun(lambda: nft.load(nft.FilterSpec.for_mn([COA1]), bindings=[(COA1, HOA)]))
    finally:
        ns.arun(lambda: nft.unload(spec.table))
