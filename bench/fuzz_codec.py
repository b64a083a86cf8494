"""Long fuzz run of every codec decoder: >= 1,000,000 inputs per decoder (default).

Run from the repository root:  python bench/fuzz_codec.py [--inputs N] [--seed S]
Inputs: 80% mutations of valid packets (truncation, bit flips, edge values in length fields,
insertions, deletions; half with checksum and Payload Length repaired), 20% random bytes.
The property: every input yields a message or a DecodeError; anything else is a crash, and a
decoder that takes longer than --hang-seconds on one batch is a hang. Crashes are written to
bench/fuzz-crashes/ with their target and hex, and the exit status is 1.
The same targets, seeds and mutator run in CI as hypothesis tests (tests/unit/mipv6/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdnmip.mipv6.errors import DecodeError  # noqa: E402
from tests.unit.mipv6.fuzzing import COA, HA, TARGETS, mutate, seeds_for  # noqa: E402

BATCH = 1000


class Hang(Exception):
    """Raised by the interval timer when one batch of inputs takes too long."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


def fuzz_target(
    name: str, inputs: int, seed: int, hang_seconds: float, crash_dir: Path
) -> tuple[Counter[str], int]:
    """Run `inputs` inputs on one target; returns (outcome counts, crash count)."""
    target = TARGETS[name]
    seeds = seeds_for(name)
    rng = random.Random(f"{seed}:{name}")
    outcomes: Counter[str] = Counter()
    crashes = 0
    done = 0
    while done < inputs:
        batch = min(BATCH, inputs - done)
        signal.setitimer(signal.ITIMER_REAL, hang_seconds)
        data = b""
        try:
            for _ in range(batch):
                if rng.random() < 0.2:
                    data = rng.randbytes(rng.randrange(0, 200))
                    src, dst = COA, HA
                else:
                    s = seeds[rng.randrange(len(seeds))]
                    data = mutate(rng, s)
                    src, dst = s.src, s.dst
                try:
                    target(data, src, dst)
                    outcomes["decoded"] += 1
                except DecodeError as exc:
                    outcomes[type(exc).__name__] += 1
                except Hang:
                    raise
                except Exception:  # noqa: BLE001 - any other exception is the finding
                    crashes += 1
                    crash_dir.mkdir(parents=True, exist_ok=True)
                    (crash_dir / f"{name}-{crashes}.txt").write_text(
                        f"target: {name}\ninput: {data.hex()}\n\n{traceback.format_exc()}"
                    )
                    outcomes["CRASH"] += 1
        except Hang:
            crash_dir.mkdir(parents=True, exist_ok=True)
            (crash_dir / f"{name}-hang.txt").write_text(f"target: {name}\ninput: {data.hex()}\n")
            outcomes["HANG"] += 1
            crashes += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        done += batch
    return outcomes, crashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per decoder")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--hang-seconds", type=float, default=10.0, help="per 1000 inputs")
    parser.add_argument("--target", action="append", help="only these targets")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _on_alarm)
    crash_dir = ROOT / "bench" / "fuzz-crashes"
    names = args.target or sorted(TARGETS)
    total_crashes = 0
    print(f"inputs per decoder: {args.inputs:,}; seed {args.seed}")
    print(f"{'decoder':<22} {'inputs':>10} {'decoded':>9} {'errors':>9} {'crashes':>8} {'s':>6}")
    for name in names:
        t0 = time.perf_counter()
        outcomes, crashes = fuzz_target(name, args.inputs, args.seed, args.hang_seconds, crash_dir)
        elapsed = time.perf_counter() - t0
        total_crashes += crashes
        errors = sum(v for k, v in outcomes.items() if k not in ("decoded", "CRASH", "HANG"))
        print(
            f"{name:<22} {args.inputs:>10,} {outcomes['decoded']:>9,} {errors:>9,} "
            f"{crashes:>8} {elapsed:>6.1f}",
            flush=True,
        )
        kinds = ", ".join(
            f"{k} {v:,}" for k, v in sorted(outcomes.items()) if k not in ("decoded",)
        )
        print(f"{'':<22} {kinds}", flush=True)
    print(f"total crashes/hangs: {total_crashes}")
    return 1 if total_crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
