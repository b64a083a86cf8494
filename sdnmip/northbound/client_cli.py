"""`sdnmip flows | hoas | move | rules`: the northbound from the command line.

    sdnmip flows [--uplink NAME] [--app APP] [--json]
    sdnmip hoas [--json]
    sdnmip move FLOW NETWORK
    sdnmip rules [list] [--source SOURCE] | show SOURCE ID | add SOURCE FILE|- |
                 put SOURCE ID FILE|- | delete SOURCE ID | reload

Talks to the REST API (docs/northbound.md): `--url`, else `northbound.listen` of the MN
configuration (`--config`, $SDNMIP_CONFIG or /etc/sdnmip/mn.yaml), else http://127.0.0.1:8181.
The token comes from `--token-file` or the configuration's `northbound.token_file`. Prints
readable tables, or the API's JSON with `--json`. Exit status: 0 done, 1 refused or
unreachable (the message says why), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sdnmip.northbound.client import (
    ClientError,
    Endpoint,
    NorthboundClient,
    default_endpoint,
    endpoint_from_config,
    read_token,
)
from sdnmip.yaml_values import value_error_reason

MULTI_COMMAND = True
SOURCES = ("operator", "network", "application", "user")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="northbound URL (default: from the MN configuration)")
    p.add_argument("--config", type=Path, help="MN configuration to read the URL and token from")
    p.add_argument("--token-file", type=Path, help="file holding the bearer token")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")


def _parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"sdnmip {name}")
    if name == "flows":
        p.description = "List the Mobile Node's live flows."
        p.add_argument("--uplink", help="only flows on this uplink")
        p.add_argument("--app", help="only this application's flows")
        p.add_argument("--remote", help="only flows to this address or prefix")
    elif name == "hoas":
        p.description = "List the Home Addresses, their bindings and the uplinks."
    elif name == "move":
        p.description = "Move one flow (and those sharing its Home Address) to a network."
        p.add_argument("flow", type=int, metavar="FLOW", help="flow id (see `sdnmip flows`)")
        p.add_argument("network", metavar="NETWORK", help="uplink name, e.g. lte")
    elif name == "rules":
        p.description = "List, show, add, replace or delete rules; reload the policy files."
        p.add_argument("action", nargs="?", default="list",
                       choices=["list", "show", "add", "put", "delete", "reload"])  # fmt: skip
        p.add_argument("args", nargs="*", help="SOURCE [ID] [FILE|-], see the usage above")
        p.add_argument("--source", choices=SOURCES, help="list: only this source")
    _common(p)
    return p


def main(argv: list[str]) -> int:
    name, rest = argv[0], argv[1:]
    args = _parser(name).parse_args(rest)
    try:
        ep = _endpoint(args)
        client = NorthboundClient(ep.url, ep.token, args.timeout)
        return {"flows": _flows, "hoas": _hoas, "move": _move, "rules": _rules}[name](client, args)
    except ClientError as exc:
        print(f"sdnmip {name}: {exc}", file=sys.stderr)
        return 1
    except _Usage as exc:
        print(f"sdnmip {name}: {exc}", file=sys.stderr)
        return 2


class _Usage(Exception):
    pass


def _endpoint(args: argparse.Namespace) -> Endpoint:
    if args.config is not None:
        ep = endpoint_from_config(args.config)
    elif args.url is None:
        ep = default_endpoint()
    else:
        ep = Endpoint(args.url)
    url = args.url or ep.url
    token = read_token(args.token_file) if args.token_file else ep.token
    return Endpoint(url, token)


def _out(args: argparse.Namespace, data: Any) -> bool:
    if args.json:
        print(json.dumps(data, indent=2))
    return bool(args.json)


# -- commands -------------------------------------------------------------------------------


def _flows(client: NorthboundClient, args: argparse.Namespace) -> int:
    query = [(k, v) for k, v in (("uplink", args.uplink), ("app_id", args.app),
                                  ("remote", args.remote)) if v]  # fmt: skip
    path = "/v1/flows" + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    data = client.get(path)
    if _out(args, data):
        return 0
    rows = []
    for f in data["flows"]:
        uplink = f["uplink"] + (f"->{f['moving_to']}" if f["moving_to"] else "")
        rows.append([
            f["flow_id"], f["proto"], _ep(f["local"], f["local_port"]),
            _ep(f["remote"], f["remote_port"]), f["hoa"] or f"{f['coa']} (direct)", uplink,
            f["rule_id"] or "-", f["app_id"] or "-", _secs(f["age_s"]),
            f"{_size(f['bytes_up'])}/{_size(f['bytes_down'])}" + (" pinned" if f["pinned"] else ""),
        ])  # fmt: skip
    print(table(["ID", "PROTO", "LOCAL", "REMOTE", "HOA", "UPLINK", "RULE", "APP", "AGE",
                 "UP/DOWN"], rows))  # fmt: skip
    print(f"{len(rows)} flow{'s' if len(rows) != 1 else ''}")
    return 0


def _hoas(client: NorthboundClient, args: argparse.Namespace) -> int:
    data = client.get("/v1/hoas")
    ifaces = client.get("/v1/interfaces")
    if _out(args, {"hoas": data, "interfaces": ifaces["interfaces"]}):
        return 0
    rows = []
    for h in data["hoas"]:
        b = h["binding"] or {}
        uplink = (h["uplink"] or "-") + (f"->{h['moving_to']}" if h["moving_to"] else "")
        rows.append([h["hoa"], h["role"], uplink, b.get("state", "-"), b.get("coa") or "-",
                     _secs(b.get("expires_in")), h["flows"]])  # fmt: skip
    print(table(["HOA", "ROLE", "UPLINK", "BINDING", "COA", "EXPIRES", "FLOWS"], rows))
    if not data["agent_connected"]:
        print("(the agent did not answer: bindings unknown)")
    print()
    rows = [[i["name"], "up" if i["usable"] else "down", i["coa"] or "-", i["flows"],
             _rate(i["rate_bps"]), _size(i["rx_bytes"]), _size(i["tx_bytes"])]
            for i in ifaces["interfaces"]]  # fmt: skip
    print(table(["UPLINK", "STATE", "COA", "FLOWS", "RATE", "RX", "TX"], rows))
    return 0


def _move(client: NorthboundClient, args: argparse.Namespace) -> int:
    data = client.post(f"/v1/flows/{args.flow}/move", {"network": args.network})
    if _out(args, data):
        return 0
    others = [f for f in data["moved"] if f != args.flow]
    state = "waiting for the Binding Acknowledgement" if data["pending"] else "done"
    print(f"flow {args.flow} -> {data['network']} (HoA {data['hoa']}): {state}")
    if others:
        print(f"moving with it (same HoA): {', '.join(map(str, others))}")
    return 0


def _rules(client: NorthboundClient, args: argparse.Namespace) -> int:
    a = args.args
    if args.action == "list":
        _arity(a, 0, "rules list [--source SOURCE]")
        path = "/v1/rules" + (f"?source={args.source}" if args.source else "")
        data = client.get(path)
        if _out(args, data):
            return 0
        if "precedence" in data:
            print(f"precedence: {', '.join(data['precedence'])}")
            if data["default"] is not None:
                print(f"default: {_action(data['default'])} ({data['default_origin']})")
        rows = [[r["rule_id"], r["rule"]["priority"], _match(r["rule"]["match"]),
                 _action(r["rule"]) + ("" if r["rule"]["mode"] == "anchored" else " direct"),
                 r["origin"]] for r in data["rules"]]  # fmt: skip
        print(table(["RULE", "PRIO", "MATCH", "ACTION", "ORIGIN"], rows))
        return 0
    if args.action == "reload":
        _arity(a, 0, "rules reload")
        data = client.post("/v1/policy/reload")
        if not _out(args, data):
            print(f"reloaded; {len(data['resteered'])} flows re-steered"
                  if data["changed"] else "no change")  # fmt: skip
        return 0
    if args.action == "show":
        _arity(a, 2, "rules show SOURCE ID")
        data = client.get(f"/v1/rules/{a[0]}/{a[1]}")
        if not _out(args, data):
            print(f"# {data['rule_id']} from {data['origin']}")
            print(yaml.safe_dump(data["rule"], sort_keys=False).rstrip())
        return 0
    if args.action == "add":
        _arity(a, 2, "rules add SOURCE FILE|-")
        data = client.post(f"/v1/rules/{a[0]}", _load(a[1]))
    elif args.action == "put":
        _arity(a, 3, "rules put SOURCE ID FILE|-")
        data = client.put(f"/v1/rules/{a[0]}/{a[1]}", _load(a[2]))
    else:
        _arity(a, 2, "rules delete SOURCE ID")
        data = client.delete(f"/v1/rules/{a[0]}/{a[1]}")
    if _out(args, data):
        return 0
    done = data.get("deleted") or data["rule"]["rule_id"]
    print(f"{args.action} {done}: ok")
    for m in data["resteered"]:
        print(f"  flow {m['flow_id']}: {m['from']} -> {m['to']}")
    return 0


def _arity(a: Sequence[str], n: int, usage: str) -> None:
    if len(a) != n:
        raise _Usage(f"usage: sdnmip {usage}")


def _load(where: str) -> Any:
    """A rule from a YAML or JSON file ('-': standard input)."""
    try:
        text = sys.stdin.read() if where == "-" else Path(where).read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientError(f"{where}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClientError(f"{where}: not valid YAML/JSON: {exc}") from None
    except ValueError as exc:  # a value PyYAML's constructors refuse (yaml_values.py)
        raise ClientError(f"{where}: not valid YAML/JSON: {value_error_reason(exc)}") from None


# -- formatting -----------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; numbers aligned right."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(isinstance(r[i], int | float) for r in rows) and bool(rows)
               for i in range(len(header))]  # fmt: skip
    lines = []
    for r in cells:
        parts = [
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _ep(addr: str, port: int) -> str:
    return f"[{addr}]:{port}"


def _secs(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 120:
        return f"{v:.0f}s"
    if v < 7200:
        return f"{v / 60:.0f}m"
    return f"{v / 3600:.0f}h"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f}{unit}"
        n = n / 1000  # type: ignore[assignment]
    return f"{n:.0f}TB"


def _rate(bps: float) -> str:
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s"):
        if bps < 1000:
            return f"{bps:.0f} {unit}"
        bps /= 1000
    return f"{bps:.0f} Tbit/s"


def _match(m: dict[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in m.items()) or "*"


def _short(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def _action(r: dict[str, Any]) -> str:
    if "uplink" in r:
        text = str(r["uplink"])
    else:
        s = r["strategy"]
        if isinstance(s, dict):
            ((kind, arg),) = s.items()
            text = f"{kind}:" + (",".join(f"{k}={v}" for k, v in arg.items())
                                 if isinstance(arg, dict) else ",".join(arg))  # fmt: skip
        else:
            text = str(s)
    if r.get("max_cost") is not None:
        text += f" (cost<={r['max_cost']:g})"
    if r.get("fallback") == "none":
        text += " only"
    return text


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
