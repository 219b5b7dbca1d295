# Shared by the proxy benchmarks (run.sh, https.sh): sourced from the
# repository root after `set -euo pipefail`. The functions that start
# processes use the caller's $work (a temporary directory), $upstream
# (host:port of the app) and the array pids (what the caller's cleanup
# stops, see stop_started).

# need_tools COMMAND[:PACKAGE]...: installs from Debian the package of each
# command that is missing (the command's own name unless PACKAGE is given).
need_tools() {
	local t need=()
	for t in "$@"; do
		command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
	done
	if [ "${#need[@]}" -gt 0 ]; then
		echo "installing: ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
}

# stop_started ends every process in pids and waits for them.
stop_started() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}

# build_proxies builds the upstream and rosti's proxy into $work.
build_proxies() {
	CGO_ENABLED=0 go build -o "$work/upstream" ./bench/proxy/upstream
	CGO_ENABLED=0 go build -o "$work/rostiproxy" ./bench/proxy/rostiproxy
}

# start_upstream PORT sets upstream: UPSTREAM if given, otherwise
# bench/proxy/upstream started on 127.0.0.1:PORT.
start_upstream() {
	if [ -n "${UPSTREAM:-}" ]; then
		upstream=$UPSTREAM
	else
		upstream=127.0.0.1:$1
		"$work/upstream" -addr "$upstream" & pids+=($!)
	fi
}

# start_nginx LISTEN [HTTP [SERVER [LOCATION]]] starts nginx as a plain
# reverse proxy to $upstream with upstream keep-alive, listening on LISTEN
# (the rest of the listen directive), with more directives added to its
# http, server and location / blocks; sets nginx_pid.
start_nginx() {
	mkdir -p "$work/nginx"
	cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/nginx/body;
	proxy_temp_path $work/nginx/proxy;
	fastcgi_temp_path $work/nginx/fastcgi;
	uwsgi_temp_path $work/nginx/uwsgi;
	scgi_temp_path $work/nginx/scgi;
${2:-}
	upstream app {
		server $upstream;
		keepalive 256;
	}
	server {
		listen $1;
${3:-}
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$remote_addr;
${4:-}
		}
	}
}
EOF
	nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)
	nginx_pid=$!
}

# start_caddy SITE [DIRECTIVES] starts Caddy as a plain reverse proxy to
# $upstream for the site address SITE on 127.0.0.1, with more directives
# in the site block; sets caddy_pid.
start_caddy() {
	mkdir -p "$work/caddy"
	cat >"$work/caddy/Caddyfile" <<EOF
{
	admin off
	auto_https off
}
$1 {
	bind 127.0.0.1
${2:-}
	reverse_proxy $upstream
}
EOF
	XDG_DATA_HOME=$work/caddy XDG_CONFIG_HOME=$work/caddy \
		caddy run --config "$work/caddy/Caddyfile" --adapter caddyfile 2>"$work/caddy/caddy.log" & pids+=($!)
	caddy_pid=$!
}

# wait_url URL [CURL_FLAGS...]: until something answers URL with a 2xx,
# for 10 s at the most; exits otherwise.
wait_url() {
	local url=$1
	shift
	for _ in $(seq 100); do
		if curl -fsS "$@" -o /dev/null "$url" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing answers at $url" >&2
	exit 1
}

to_ms() { # wrk prints 1.23ms, 456.00us or 1.02s
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
		else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
	}'
}

# wrk_rps OUTPUT and wrk_p99 OUTPUT: requests per second and the 99th
# percentile latency in ms from what wrk --latency printed.
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' <<<"$1"; }
wrk_p99() { to_ms "$(awk '$1 == "99%" {print $2}' <<<"$1")"; }

# median of the numbers on stdin, separated by spaces or newlines.
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# ratio A B: A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
