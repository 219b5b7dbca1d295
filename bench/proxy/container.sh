#!/usr/bin/env bash
# The proxy benchmark against an app container (what the proxy issue
# measures): a real rosti serve runs a static app on a two-core plan, and
# bench/proxy/run.sh gets UPSTREAM=<container ip>:8080. As root. The
# run.sh knobs (DURATION, CONNS, ...) pass through.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh serve
make build >/dev/null
go run ./bench/proxy/appcontainer -rosti bin/rosti -run bench/proxy/run.sh
