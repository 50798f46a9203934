#!/usr/bin/env bash
# One command: set everything up and run the whole service (Temporal dev server, worker, API).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/postmortem dev "$@"
