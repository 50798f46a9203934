#!/bin/sh
# The default namespace and the search attribute the post-mortem workflow records its status in.
set -eu
temporal operator namespace describe -n default >/dev/null 2>&1 || temporal operator namespace create -n default
temporal operator search-attribute create --namespace default --name PostmortemStatus --type Keyword || true
