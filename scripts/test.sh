#!/usr/bin/env bash
# One command: set everything up and run the test suite (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
# The Alertmanager end-to-end test runs the real binary (Debian's prometheus-alertmanager). As root
# with apt we install it; otherwise that one test is skipped (and fails in CI, where CI is set).
# The same for hitch, the TLS terminator the Temporal TLS/mTLS tests put in front of the dev server.
missing=()
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v hitch >/dev/null 2>&1 || [ -x /usr/sbin/hitch ] || missing+=(hitch)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} for the end-to-end tests…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >/dev/null
fi
# The browser tests (tests/browser) drive Debian's Chromium through Playwright's Python package (never a
# downloaded browser): installed the same way, skipped when it cannot be (and failing in CI).
if ! [ -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (and a Chinese font for its screenshots) for the browser tests…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei) >/dev/null
fi
# npm (the live editor's bundle and axe-core for the accessibility tests, tests/browser/test_accessibility.py:
# test-only JavaScript from the committed, integrity-checked package-lock.json) is installed and used by
# bootstrap.sh; without it those tests skip — and fail in CI.
exec .venv/bin/python -m pytest "$@"
