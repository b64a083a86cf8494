#!/usr/bin/env bash
# The README's test command: install everything (deploy/install.sh), then run the unit and the
# integration tiers (root, network namespaces, real Open vSwitch). Extra arguments go to pytest.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/deploy/install.sh"
cd "$ROOT"
set +e
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}" "$ROOT/.venv/bin/python" -m pytest -m "unit or integration" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "deploy/test.sh: pytest collected no tests: that is a failure, not a pass" >&2
    exit 1
fi
exit "$rc"
