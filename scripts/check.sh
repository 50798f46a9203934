#!/usr/bin/env bash
# The checks CI runs before the tests: lint (ruff check), formatting (ruff format --check) and types (mypy over
# the packages, tests and bench, see scripts/typecheck.sh). Sets up the dev venv from requirements-dev.txt first.
# Stops at the first check that fails, with a line saying which one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev

check() {
  local name="$1"
  shift
  echo "--- check: $name ($*)"
  if ! "$@"; then
    echo "FAILED check: $name — fix the problems above, then re-run bash scripts/check.sh" >&2
    exit 1
  fi
}
check lint .venv/bin/ruff check .
check format .venv/bin/ruff format --check .
check types bash scripts/typecheck.sh
echo "all checks passed: lint, format, types"
