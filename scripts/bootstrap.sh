#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the service into it from the hashed lock files, with the extras
# given as $1: none (scripts/run.sh) installs requirements.txt; "test" (scripts/test.sh) or "dev"
# (scripts/check.sh, scripts/lock.sh) installs requirements-dev.txt, which holds both extras.
# Every package comes pinned and hash-checked from the lock (--no-deps: the lock is the whole set, nothing
# is resolved here), then the project itself, editable, with the lock's setuptools (--no-build-isolation).
# Re-installs only when the lock file or pyproject.toml is newer than the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
case "$extras" in
  "") lock=requirements.txt ;;
  test | dev | test,dev | dev,test) lock=requirements-dev.txt ;;
  *) echo "error: unknown extras '$extras' (none, test or dev)" >&2; exit 2 ;;
esac
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python="$candidate"; break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "error: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-${lock%.txt}"
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" --require-hashes --no-deps -r "$lock"
  "${pip[@]}" --no-deps --no-build-isolation -e .
  touch "$stamp"
fi
