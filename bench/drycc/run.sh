#!/usr/bin/env bash
# Runs the Drycc dialect's budgets (config:set -> serving, scale web=10)
# against a freshly built rosti, as root. Usage: bench/drycc/run.sh [-changes 20]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh serve
make build >/dev/null
go run ./bench/drycc -rosti bin/rosti "$@"
