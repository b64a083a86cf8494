#!/usr/bin/env bash
# The README's demo command: install everything (deploy/install.sh), then run `sdnmip demo`.
# Extra arguments go to `sdnmip demo` (see `.venv/bin/sdnmip demo --help`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/deploy/install.sh"
exec "$ROOT/.venv/bin/sdnmip" demo "$@"
