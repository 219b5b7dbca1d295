#!/usr/bin/env bash
# Proxy benchmark: wrk against one upstream directly, through rosti's proxy,
# through nginx and through Caddy (plain reverse proxies with upstream
# keep-alive), all in one run on this machine; then the p99 added by rosti
# at about half of its peak rate.
#
#   bench/proxy/run.sh                      static Go upstream built from here
#   UPSTREAM=10.88.0.5:8080 bench/proxy/run.sh   an app container instead
#
# Knobs: DURATION (wrk seconds, default 10), CONNS (default 64),
# THREADS (default 2), BASE_PORT (default 18080), ROUNDS (throughput
# rounds, default 3), PACE_MS (default 4), PACED_ROUNDS (default 5).
set -euo pipefail

cd "$(dirname "$0")/../.."
. bench/proxy/lib.sh
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
BASE_PORT=${BASE_PORT:-18080}
ROUNDS=${ROUNDS:-3}

need_tools wrk nginx caddy

work=$(mktemp -d /tmp/rosti-bench-proxy.XXXXXX)
pids=()
cleanup() {
	stop_started
	rm -rf "$work"
}
trap cleanup EXIT

build_proxies

up_port=$BASE_PORT
rosti_port=$((BASE_PORT + 1))
nginx_port=$((BASE_PORT + 2))
caddy_port=$((BASE_PORT + 3))

start_upstream "$up_port"

# rosti as `rosti serve` runs it: an access log line per request, as text
# on stderr (a file here).
"$work/rostiproxy" -addr "127.0.0.1:$rosti_port" -upstream "$upstream" -host 127.0.0.1 2>"$work/rosti.log" & pids+=($!)
# The same proxy without the access log, to show what the log costs.
rosti_nolog_port=$((BASE_PORT + 4))
"$work/rostiproxy" -addr "127.0.0.1:$rosti_nolog_port" -upstream "$upstream" -host 127.0.0.1 -accesslog=false 2>"$work/rosti-nolog.log" & pids+=($!)

start_nginx "127.0.0.1:$nginx_port"
start_caddy "http://:$caddy_port"

for a in "$upstream" "127.0.0.1:$rosti_port" "127.0.0.1:$rosti_nolog_port" "127.0.0.1:$nginx_port" "127.0.0.1:$caddy_port"; do
	wait_url "http://$a/"
done

# run_wrk NAME ADDR -> sets rps[NAME], p99[NAME] (ms)
declare -A rps p99
run_wrk() {
	local out
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "http://$2/")
	echo "$out" >"$work/wrk-$1.txt"
	rps[$1]=$(wrk_rps "$out")
	p99[$1]=$(wrk_p99 "$out")
	if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
		echo "warning: $1 had errors:" >&2
		grep "Non-2xx\|Socket errors" <<<"$out" >&2
	fi
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $THREADS threads, $CONNS connections, ${DURATION}s each; upstream $upstream; $(nproc) cores"
# A short warm-up so every proxy has its upstream connections open.
for a in "127.0.0.1:$rosti_port" "127.0.0.1:$rosti_nolog_port" "127.0.0.1:$nginx_port" "127.0.0.1:$caddy_port"; do
	wrk -t"$THREADS" -c"$CONNS" -d2s "http://$a/" >/dev/null
done
# The throughput runs go in ROUNDS rounds, each target in turn, and the
# medians are the figures: the machine is shared, and a burst of other
# work during one 10 s run would otherwise decide a ratio.
targets=(direct rosti nginx caddy rosti-nolog)
declare -A addr=([direct]=$upstream [rosti]=127.0.0.1:$rosti_port [nginx]=127.0.0.1:$nginx_port [caddy]=127.0.0.1:$caddy_port [rosti-nolog]=127.0.0.1:$rosti_nolog_port)
declare -A all_rps all_p99
ratios_nginx=() ratios_caddy=()
printf '%-6s %-12s %12s %10s\n' round target req/s p99_ms
for round in $(seq "$ROUNDS"); do
	for n in "${targets[@]}"; do
		run_wrk "$n" "${addr[$n]}"
		printf '%-6s %-12s %12s %10s\n' "$round" "$n" "${rps[$n]}" "${p99[$n]}"
		all_rps[$n]+="${rps[$n]} "
		all_p99[$n]+="${p99[$n]} "
	done
	ratios_nginx+=("$(ratio "${rps[rosti]}" "${rps[nginx]}")")
	ratios_caddy+=("$(ratio "${rps[rosti]}" "${rps[caddy]}")")
	echo "       round $round: rosti/nginx ${ratios_nginx[-1]}, rosti/caddy ${ratios_caddy[-1]}"
done
echo "median of $ROUNDS rounds:"
printf '%-12s %12s %10s\n' target req/s p99_ms
for n in "${targets[@]}"; do
	rps[$n]=$(median <<<"${all_rps[$n]}")
	p99[$n]=$(median <<<"${all_p99[$n]}")
	printf '%-12s %12s %10s\n' "$n" "${rps[$n]}" "${p99[$n]}"
done
echo "rosti/nginx $(median <<<"${ratios_nginx[*]}") (budget >= 0.80; rounds: ${ratios_nginx[*]})"
echo "rosti/caddy $(median <<<"${ratios_caddy[*]}") (budget >= 1.20; rounds: ${ratios_caddy[*]})"
echo "without the access log: rosti/nginx $(ratio "${rps[rosti-nolog]}" "${rps[nginx]}"), rosti/caddy $(ratio "${rps[rosti-nolog]}" "${rps[caddy]}")"

# Added latency at half of rosti's peak: wrk2 is not packaged in Debian, so
# wrk paces itself with a Lua delay() of PACE_MS between the requests of each
# connection; with rate/2 * PACE_MS / 1000 connections that is about half of
# rosti's peak. The same paced load runs directly, through rosti and (for
# reference) through nginx, PACED_ROUNDS times in turn; the difference of
# the p99s in each round is what the proxy adds, and the median of the
# rounds is the figure, so one burst of other work on the machine does not
# decide it.
PACE_MS=${PACE_MS:-4}
PACED_ROUNDS=${PACED_ROUNDS:-5}
half=$(awk -v r="${rps[rosti]}" 'BEGIN { printf "%d", r / 2 }')
paced_conns=$(awk -v h="$half" -v d="$PACE_MS" 'BEGIN { c = int(h * d / 1000 + 0.5); if (c < 2) c = 2; print c }')
echo "function delay() return $PACE_MS end" >"$work/pace.lua"
run_paced() {
	local out
	out=$(wrk -t"$THREADS" -c"$paced_conns" -d"${DURATION}s" --latency -s "$work/pace.lua" "http://$2/")
	echo "$out" >"$work/paced-$1.txt"
	rps[paced_$1]=$(wrk_rps "$out")
	p99[paced_$1]=$(wrk_p99 "$out")
}
echo "paced load, target $half req/s (half of rosti's peak): $paced_conns connections, ${PACE_MS} ms between requests, $PACED_ROUNDS rounds"
printf '%-6s %-8s %12s %10s %10s\n' round target req/s p99_ms added_ms
added_rosti=() added_nginx=()
for round in $(seq "$PACED_ROUNDS"); do
	run_paced direct "$upstream"
	run_paced rosti "127.0.0.1:$rosti_port"
	run_paced nginx "127.0.0.1:$nginx_port"
	for n in direct rosti nginx; do
		add=$(awk -v d="${p99[paced_direct]}" -v r="${p99[paced_$n]}" 'BEGIN { printf "%.3f", r - d }')
		printf '%-6s %-8s %12s %10s %10s\n' "$round" "$n" "${rps[paced_$n]}" "${p99[paced_$n]}" "$add"
		case $n in rosti) added_rosti+=("$add") ;; nginx) added_nginx+=("$add") ;; esac
	done
done
echo "added p99, median of $PACED_ROUNDS rounds: rosti $(median <<<"${added_rosti[*]}") ms (budget <= 1.000), nginx $(median <<<"${added_nginx[*]}") ms"
