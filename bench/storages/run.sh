#!/usr/bin/env bash
# Runs the storages benchmark (create -> first connection, rosti's memory
# with 100 storages) against a freshly built rosti, as root.
# Usage: bench/storages/run.sh [-timed 20] [-total 100]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh serve
make build >/dev/null
go run ./bench/storages -rosti bin/rosti "$@"
