#!/usr/bin/env bash
# Runs the hardening benchmark (proxy latency quiet, under a flood of silent
# connections, and under a flood of wrong passwords) against a freshly
# built rosti, as root. Usage: bench/hardening/run.sh [-idle 20000] [-requests 3000]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh serve
make build >/dev/null
go run ./bench/hardening -rosti bin/rosti "$@"
