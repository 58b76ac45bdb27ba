#!/usr/bin/env bash
# The test command: set up everything a fresh machine needs, then run every test layer.
# Integration tests start their own real Kafka and Redis through `tessera services` on ports of
# their own, so a running local stack is left alone. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$(date +%s)
bash scripts/setup.sh
echo "[test] setup took $(( $(date +%s) - started )) s" >&2
.venv/bin/python -m pytest tests "$@"
echo "[test] total $(( $(date +%s) - started )) s" >&2
