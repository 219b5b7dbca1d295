#!/usr/bin/env bash
# Runs the apps benchmark (create -> first answer, rosti's memory) against
# a freshly built rosti, as root. Usage: bench/runtime/run.sh [-apps 20] [-total 100]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh serve
make build >/dev/null
go run ./bench/runtime -rosti bin/rosti "$@"
