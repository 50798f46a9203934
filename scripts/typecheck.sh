#!/usr/bin/env bash
# The type check (mypy, configured in pyproject.toml) over the whole tree, or over the files and folders given
# (e.g. `bash scripts/typecheck.sh workflows/ tests/unit`). Needs the dev venv (scripts/check.sh sets it up).
#
# Why a wrapper: workflows/, activities/, webhooks/ and integrations/ are installed as postmortem.workflows, …
# (package-dir in pyproject.toml). At run time setuptools' editable finder maps them; mypy cannot follow that
# finder, and with the real paths it would name them `workflows.…` and not find `postmortem.workflows` at all.
# So we keep a tree of symlinks, build/mypy-tree/postmortem/{__init__.py,workflows,activities,webhooks,
# integrations}, put it on MYPYPATH (explicit_package_bases makes it a root that module names are taken from),
# and give mypy those four folders through the tree and everything else at its real path. The rest of the
# `postmortem` package resolves from the repository root. mypy reports the four folders at their tree paths;
# sed writes those back to the real ones (workflows/x.py:12: error: …), so editors and CI logs point at real files.
# The tree stays at one place (build/ is ignored by git and ruff): mypy's cache replays a module's errors with
# the path it had when it was checked, so a fresh temporary tree each run would leak stale paths.
set -euo pipefail
cd "$(dirname "$0")/.."
remapped=(workflows activities webhooks integrations)
tree=build/mypy-tree
mkdir -p "$tree/postmortem"
# Relative links, made afresh each run (-n: replace a link to a folder, not create one inside it).
ln -sfn ../../../postmortem/__init__.py "$tree/postmortem/__init__.py"
for folder in "${remapped[@]}"; do
  ln -sfn "../../../$folder" "$tree/postmortem/$folder"
done

# A path inside a remapped folder is handed over through the tree; anything else as given. Without a path
# (only options such as --disallow-untyped-defs, or nothing), the whole tree.
args=()
targets=0
for arg in "$@"; do
  case "$arg" in
    workflows | workflows/* | activities | activities/* | webhooks | webhooks/* | integrations | integrations/*)
      args+=("$tree/postmortem/${arg%/}"); targets=1 ;;
    -*) args+=("$arg") ;;
    *) args+=("$arg"); targets=1 ;;
  esac
done
if [ "$targets" -eq 0 ]; then
  args+=(postmortem tests bench)
  for folder in "${remapped[@]}"; do args+=("$tree/postmortem/$folder"); done
fi

MYPYPATH="$tree${MYPYPATH:+:$MYPYPATH}" .venv/bin/mypy "${args[@]}" 2>&1 | sed -e "s#$tree/postmortem/##g"
