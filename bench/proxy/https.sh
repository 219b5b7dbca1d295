#!/usr/bin/env bash
# HTTPS proxy benchmark: rosti's proxy, nginx and Caddy side by side in one
# run, in front of the same upstream, with the same ECDSA certificate:
#
#   keep-alive        wrk, CONNS connections kept open
#   new-connection    wrk with "Connection: close", NEWCONN_CONNS connections:
#                     a TLS handshake per request
#   h2                h2load (nghttp2-client), H2_CONNS connections of
#                     H2_STREAMS concurrent streams each
#
# rosti's certificate comes through its normal ACME path from Pebble (built
# from the Go module proxy, validating HTTP-01 against rosti's HTTP port);
# nginx and Caddy are given that very certificate and key (ECDSA P-256).
# The name HOST (bench.rosti.test) points at 127.0.0.1 through a line in
# /etc/hosts that is removed at exit: nothing leaves the machine.
#
#   bench/proxy/https.sh                 against an app container (as root;
#                                        starts rosti serve through
#                                        bench/proxy/appcontainer)
#   LOCAL=1 bench/proxy/https.sh         against bench/proxy/upstream
#   UPSTREAM=ip:port bench/proxy/https.sh
#
# Knobs: DURATION (s, default 10), ROUNDS (3), THREADS (2), CONNS (64),
# NEWCONN_CONNS (32), H2_CONNS (16), H2_STREAMS (8), BASE_PORT (18440),
# MODES ("keepalive newconn h2"), ROSTI_PROCS (GOMAXPROCS of rosti's proxy;
# default as rosti serve: half the CPUs), ROSTI_FLAGS (more rostiproxy
# flags, such as -cpuprofile FILE), KEEP (keep the work directory).
set -euo pipefail

cd "$(dirname "$0")/../.."
if [ -z "${UPSTREAM:-}" ] && [ -z "${LOCAL:-}" ]; then
	scripts/deps.sh serve
	make build >/dev/null
	exec go run ./bench/proxy/appcontainer -rosti bin/rosti -run bench/proxy/https.sh
fi

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
NEWCONN_CONNS=${NEWCONN_CONNS:-32}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-8}
BASE_PORT=${BASE_PORT:-18440}
MODES=${MODES:-keepalive newconn h2}
HOST=bench.rosti.test

. bench/proxy/lib.sh
need_tools wrk nginx caddy h2load:nghttp2-client openssl curl

work=$(mktemp -d /tmp/rosti-bench-https.XXXXXX)
pids=()
hosts_mark="# rosti-bench-https $$"
cleanup() {
	stop_started
	# /etc/hosts may be a bind mount: rewrite it in place.
	if grep -q "$hosts_mark" /etc/hosts; then
		grep -v "$hosts_mark" /etc/hosts >"$work/hosts" && cat "$work/hosts" >/etc/hosts
	fi
	if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
echo "127.0.0.1 $HOST $hosts_mark" >>/etc/hosts

build_proxies
CGO_ENABLED=0 go build -o "$work/pebble" github.com/letsencrypt/pebble/v2/cmd/pebble

up_port=$BASE_PORT
rosti_http_port=$((BASE_PORT + 1))
rosti_port=$((BASE_PORT + 2))
nginx_port=$((BASE_PORT + 3))
caddy_port=$((BASE_PORT + 4))
pebble_port=$((BASE_PORT + 5))

start_upstream "$up_port"

# Pebble: its own HTTPS endpoint gets a throwaway certificate; it validates
# HTTP-01 on rosti's HTTP port, finding HOST through /etc/hosts.
mkdir -p "$work/pebble-ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$work/pebble-ca/key.pem" -out "$work/pebble-ca/cert.pem" 2>/dev/null
cat >"$work/pebble-ca/config.json" <<EOF
{"pebble": {
	"listenAddress": "127.0.0.1:$pebble_port",
	"managementListenAddress": "127.0.0.1:$((pebble_port + 1))",
	"certificate": "$work/pebble-ca/cert.pem",
	"privateKey": "$work/pebble-ca/key.pem",
	"httpPort": $rosti_http_port,
	"tlsPort": $((pebble_port + 2)),
	"ocspResponderURL": "",
	"externalAccountBindingRequired": false
}}
EOF
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 "$work/pebble" -config "$work/pebble-ca/config.json" \
	>"$work/pebble.log" 2>&1 & pids+=($!)

# rosti as `rosti serve` runs it: the access log on, GOMAXPROCS half the
# CPUs unless ROSTI_PROCS says otherwise.
rosti_env=()
if [ -n "${ROSTI_PROCS:-}" ]; then rosti_env=(GOMAXPROCS="$ROSTI_PROCS"); fi
env "${rosti_env[@]}" "$work/rostiproxy" ${ROSTI_FLAGS:-} -addr "127.0.0.1:$rosti_http_port" -https "127.0.0.1:$rosti_port" \
	-host "$HOST" -upstream "$upstream" -data "$work/rosti-data" \
	-acme-ca "https://127.0.0.1:$pebble_port/dir" -acme-roots "$work/pebble-ca/cert.pem" \
	2>"$work/rosti.log" & pids+=($!)
rosti_pid=$!

echo "waiting for rosti's certificate from Pebble"
for i in $(seq 600); do
	if curl -ksf -o /dev/null "https://$HOST:$rosti_port/"; then break; fi
	if [ "$i" = 600 ]; then
		echo "rosti got no certificate; its log:" >&2
		tail -20 "$work/rosti.log" >&2
		exit 1
	fi
	sleep 0.2
done
crt=$(find "$work/rosti-data/certmagic/certificates" -name "$HOST.crt" | head -1)
key=${crt%.crt}.key
echo "certificate: $(openssl x509 -in "$crt" -noout -issuer | sed 's/^issuer=//'); key: $(openssl pkey -in "$key" -noout -text 2>/dev/null | head -1)"

# What an operator would set: TLS 1.3 (nginx 1.22 leaves it out by
# default), a session cache, and no cap of 1000 requests per connection
# (rosti and Caddy have none; with it, h2load's streams fail at each GOAWAY
# and wrk pays for new handshakes); this one covers HTTP/2 too.
start_nginx "127.0.0.1:$nginx_port ssl http2" \
	"	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache shared:SSL:10m;
	ssl_session_timeout 1h;
	keepalive_requests 1000000;" \
	"		server_name $HOST;
		ssl_certificate $crt;
		ssl_certificate_key $key;" \
	"			proxy_set_header X-Forwarded-Proto https;"
start_caddy "https://$HOST:$caddy_port" "	tls $crt $key"

for port in "$nginx_port" "$caddy_port"; do
	wait_url "https://$HOST:$port/" -k
done

targets=(rosti nginx caddy)
declare -A port=([rosti]=$rosti_port [nginx]=$nginx_port [caddy]=$caddy_port)
for n in "${targets[@]}"; do
	served=$(curl -ks "https://$HOST:${port[$n]}/" | wc -c)
	proto=$(curl -ks --http2 -o /dev/null -w '%{http_version}' "https://$HOST:${port[$n]}/")
	echo "$n: $served bytes, HTTP/$proto with ALPN h2"
done

declare -A pid=([rosti]=$rosti_pid [nginx]=$nginx_pid [caddy]=$caddy_pid)
# cpu_ticks TARGET: user+system clock ticks of the target's processes
# (nginx: the master and its workers) so far.
cpu_ticks() {
	local p t=0
	for p in ${pid[$1]} $(pgrep -P "${pid[$1]}" || true); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo "$t"
}
# run MODE TARGET -> rps, p99 (ms; "-" for h2load), cpu (µs of the
# target's CPU per request)
run() {
	local url="https://$HOST:${port[$2]}/" out t0
	t0=$(cpu_ticks "$2")
	case $1 in
	keepalive) out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url") ;;
	newconn) out=$(wrk -t"$THREADS" -c"$NEWCONN_CONNS" -d"${DURATION}s" --latency -H "Connection: close" "$url") ;;
	h2) out=$(h2load -t"$THREADS" -c"$H2_CONNS" -m"$H2_STREAMS" -D"$DURATION" "$url") ;;
	esac
	echo "$out" >"$work/$1-$2.txt"
	local ticks=$(($(cpu_ticks "$2") - t0))
	case $1 in
	h2)
		rps=$(awk '/^finished in/ { print $4 }' <<<"$out")
		reqs=$(awk '/^requests:/ { print $8 }' <<<"$out")
		p99=-
		if ! grep -q "^status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" <<<"$out" || ! grep -q " 0 failed, 0 errored" <<<"$out"; then
			echo "warning: $1 $2 had errors:" >&2
			grep "^requests:\|^status codes:" <<<"$out" >&2
		fi
		;;
	*)
		rps=$(wrk_rps "$out")
		reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
		p99=$(wrk_p99 "$out")
		if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
			echo "warning: $1 $2 had errors: $(grep "Non-2xx\|Socket errors" <<<"$out" | tr '\n' ' ')" >&2
		fi
		;;
	esac
	cpu=$(awk -v t="$ticks" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", (n > 0) ? t * 1e6 / hz / n : 0 }')
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; upstream $upstream; ${DURATION}s per run, $ROUNDS rounds"
echo "keepalive: wrk -t$THREADS -c$CONNS; newconn: wrk -t$THREADS -c$NEWCONN_CONNS with Connection: close; h2: h2load -t$THREADS -c$H2_CONNS -m$H2_STREAMS"
for n in "${targets[@]}"; do # warm-up
	wrk -t"$THREADS" -c"$CONNS" -d2s "https://$HOST:${port[$n]}/" >/dev/null
done
declare -A all_rps all_p99 all_cpu ratios_nginx ratios_caddy
printf '%-6s %-10s %-7s %12s %10s %8s\n' round mode target req/s p99_ms cpu_us
for round in $(seq "$ROUNDS"); do
	for mode in $MODES; do
		declare -A r=()
		for n in "${targets[@]}"; do
			run "$mode" "$n"
			r[$n]=$rps
			printf '%-6s %-10s %-7s %12s %10s %8s\n' "$round" "$mode" "$n" "$rps" "$p99" "$cpu"
			all_cpu[$mode.$n]+="$cpu "
			all_rps[$mode.$n]+="$rps "
			all_p99[$mode.$n]+="$p99 "
		done
		ratios_nginx[$mode]+="$(ratio "${r[rosti]}" "${r[nginx]}") "
		ratios_caddy[$mode]+="$(ratio "${r[rosti]}" "${r[caddy]}") "
		echo "       round $round $mode: rosti/nginx $(ratio "${r[rosti]}" "${r[nginx]}"), rosti/caddy $(ratio "${r[rosti]}" "${r[caddy]}")"
	done
done
echo
echo "medians of $ROUNDS rounds:"
printf '%-10s %-7s %12s %10s %8s\n' mode target req/s p99_ms cpu_us
for mode in $MODES; do
	for n in "${targets[@]}"; do
		p99=-
		if [ "$mode" != h2 ]; then p99=$(median <<<"${all_p99[$mode.$n]}"); fi
		printf '%-10s %-7s %12s %10s %8s\n' "$mode" "$n" "$(median <<<"${all_rps[$mode.$n]}")" "$p99" "$(median <<<"${all_cpu[$mode.$n]}")"
	done
done
declare -A budget=([keepalive]=1.0 [newconn]=0.9 [h2]=1.0)
for mode in $MODES; do
	echo "$mode: rosti/nginx $(median <<<"${ratios_nginx[$mode]}") (budget >= ${budget[$mode]}; rounds: ${ratios_nginx[$mode]}), rosti/caddy $(median <<<"${ratios_caddy[$mode]}") (rounds: ${ratios_caddy[$mode]})"
done
