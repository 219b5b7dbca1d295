#!/usr/bin/env bash
# Measures what rosti adds to each of 100 running static apps (shims, log
# processes, init: PSS) and the host's used memory per app, against the
# shim-only floor, with a freshly built rosti, as root.
# Usage: bench/footprint/run.sh [-apps 100] [-rosti BIN] [-floor=false]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh serve
command -v busybox >/dev/null || apt-get install -y busybox-static >/dev/null
make build >/dev/null
go run ./bench/footprint -rosti bin/rosti "$@"
