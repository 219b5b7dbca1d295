#!/usr/bin/env bash
# Upload benchmark: rosti's SSH gateway against Debian's OpenSSH sshd on the
# same machine, in one run. Uploads a 200 MB file and a tree of 5,000 small
# files with sftp and with rsync to each server and prints seconds, MB/s and
# rosti/OpenSSH throughput ratios (budget: >= 0.8).
# The system's sshd (config, port 22) is never touched: a private sshd runs
# on a free loopback port with its own config and host key.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/sbin/sshd ]; then
	echo "installing openssh-server (its service is not started by this script)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
fi

work=$(mktemp -d /tmp/rosti-ssh-bench.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"

echo "preparing data in $work"
mkdir -p "$work/data/tree"
head -c 200M /dev/urandom >"$work/data/big.bin"
for d in $(seq 0 49); do
	mkdir -p "$work/data/tree/d$d"
	for f in $(seq 0 99); do head -c $(( (d * 100 + f) % 4096 + 512 )) /dev/urandom >"$work/data/tree/d$d/f$f"; done
done
tree_mb=$(du -sm --apparent-size "$work/data/tree" | cut -f1)
ssh-keygen -q -t ed25519 -N '' -f "$work/client_key"

# Debian's OpenSSH sshd on a free port, logging in as root to a scratch dir.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		(echo >/dev/tcp/127.0.0.1/"$p") 2>/dev/null || { echo "$p"; return; }
	done
}
ossh_port=$(free_port)
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd_host_key"
mkdir -p "$work/ossh-home/.ssh" /run/sshd
cp "$work/client_key.pub" "$work/ossh-home/.ssh/authorized_keys"
cat >"$work/sshd_config" <<CONF
Port $ossh_port
ListenAddress 127.0.0.1
HostKey $work/sshd_host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/ossh-home/.ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
/usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" &
pids+=($!)

# rosti's gateway with one app on a scratch volume.
mkdir -p "$work/volume"
CGO_ENABLED=0 go build -o "$work/gateway" ./bench/ssh
"$work/gateway" -host-key "$work/gateway_host_key" -authorized-key "$work/client_key.pub" \
	-volume "$work/volume" >"$work/gateway.port" 2>"$work/gateway.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/gateway.port" ] && break; sleep 0.1; done
rosti_port=$(cat "$work/gateway.port")
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$ossh_port") 2>/dev/null && break; sleep 0.1; done

ssh_opts=(-i "$work/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR)

# target NAME -> "user port remote-dir"
target() {
	case $1 in
	rosti) echo "bench $rosti_port up" ;;
	openssh) echo "root $ossh_port $work/ossh-dest" ;;
	esac
}
reset_dest() {
	rm -rf "$work/volume/up" "$work/ossh-dest"
	mkdir -p "$work/volume/up" "$work/ossh-dest"
	chown 210000:210000 "$work/volume/up"
}
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }

declare -A secs
measure() { # server tool what
	local server=$1 tool=$2 what=$3 user port dir start
	read -r user port dir <<<"$(target "$server")"
	reset_dest
	start=$(now)
	case $tool/$what in
	sftp/file) sftp -q -P "$port" "${ssh_opts[@]}" -b - "$user@127.0.0.1" >/dev/null <<<"put $work/data/big.bin $dir/big.bin" ;;
	sftp/tree) sftp -q -P "$port" "${ssh_opts[@]}" -b - "$user@127.0.0.1" >/dev/null <<<"put -r $work/data/tree $dir/tree" ;;
	rsync/file) rsync -a -e "ssh -p $port ${ssh_opts[*]}" "$work/data/big.bin" "$user@127.0.0.1:$dir/" ;;
	rsync/tree) rsync -a -e "ssh -p $port ${ssh_opts[*]}" "$work/data/tree/" "$user@127.0.0.1:$dir/tree/" ;;
	esac
	secs[$server/$tool/$what]=$(calc "$(now) - $start")
}

# Warm both servers (page cache, first exec) once, then measure.
measure rosti sftp file
measure openssh sftp file
for tool in sftp rsync; do
	for what in file tree; do
		for server in rosti openssh; do measure "$server" "$tool" "$what"; done
	done
done

printf '\n%-6s %-5s %-26s %10s %10s %10s %10s %7s\n' tool what payload "rosti s" "rosti MB/s" "ossh s" "ossh MB/s" ratio
for tool in sftp rsync; do
	for what in file tree; do
		if [ "$what" = file ]; then mb=200; payload="1 file, 200 MB"; else mb=$tree_mb; payload="5000 files, $tree_mb MB"; fi
		r=${secs[rosti/$tool/$what]}
		o=${secs[openssh/$tool/$what]}
		printf '%-6s %-5s %-26s %10.2f %10.1f %10.2f %10.1f %7.2f\n' "$tool" "$what" "$payload" \
			"$r" "$(calc "$mb / $r")" "$o" "$(calc "$mb / $o")" "$(calc "$o / $r")"
	done
done
echo "ratio = rosti throughput / OpenSSH throughput (budget >= 0.80)"
