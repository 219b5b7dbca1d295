#!/usr/bin/env bash
# Times apps-status (one client, then many at once) against a freshly built
# rosti, as root. Usage: bench/status/run.sh [-files 20000] [-calls 100] [-clients 20]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh serve
make build >/dev/null
go run ./bench/status -rosti bin/rosti "$@"
