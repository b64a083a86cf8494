"""A command that writes more than any pipe holds (test_cli's broken-pipe test)."""

import sys


def main(argv: list[str]) -> int:
    for _ in range(100_000):
        sys.stdout.write("x" * 100 + "\n")
    sys.stdout.flush()
    return 0
