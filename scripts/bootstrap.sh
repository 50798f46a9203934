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
# The report page's live editor (web-src/editor.js → postmortem/web/static/editor/, gitignored): npm packages
# from the committed lock, bundled by esbuild. npm is installed from Debian when run as root with apt;
# without npm the page keeps its plain forms (and the co-editing tests fail in CI).
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing npm to build the live editor…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm) >/dev/null
fi
if command -v npm >/dev/null 2>&1; then
  if ! cmp -s package-lock.json node_modules/.installed-lock.json; then
    if npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null; then
      cp package-lock.json node_modules/.installed-lock.json
    else
      echo "warning: npm ci failed: no live editor (and the accessibility tests skip, failing in CI)" >&2
    fi
  fi
  bundle=postmortem/web/static/editor/editor.js
  if [ -x node_modules/.bin/esbuild ] && { [ ! -f "$bundle" ] || [ -n "$(find web-src package-lock.json -newer "$bundle" 2>/dev/null)" ]; }; then
    node_modules/.bin/esbuild web-src/editor.js --bundle --minify --format=iife --target=es2020 \
      --outfile="$bundle" --log-level=warning || echo "warning: the live editor's bundle did not build" >&2
  fi
fi
