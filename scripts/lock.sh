#!/usr/bin/env bash
# Regenerates both hashed lock files from the ranges in pyproject.toml:
#   requirements.txt      the service's own dependencies (scripts/run.sh, the Dockerfile)
#   requirements-dev.txt  those plus the `test` and `dev` extras (scripts/test.sh, scripts/check.sh)
# Both also pin the build backend (setuptools), so the project installs with --no-build-isolation.
# Pins already in the files are kept while they satisfy the ranges; arguments go to pip-compile, e.g.
# `bash scripts/lock.sh --upgrade-package fastapi` or `bash scripts/lock.sh --upgrade`. Commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pip-compile ] || bash scripts/bootstrap.sh dev
export CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh"

compile() {
  # Against the public index only, whatever this machine's pip configuration adds (config files, find-links,
  # extra indexes, constraints): the lock must hold no local path, no file:// URL and no index host.
  env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT -u PIP_NO_INDEX \
    PIP_CONFIG_FILE=/dev/null \
    .venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
    --no-emit-index-url --no-emit-find-links --no-emit-trusted-host "$@" pyproject.toml
}
compile --output-file requirements.txt "$@"
compile --extra test --extra dev --output-file requirements-dev.txt "$@"
