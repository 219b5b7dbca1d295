#!/usr/bin/env bash
# Installs the Debian packages that `make serve` or `make test` need, only
# when something is missing, so a second run costs nothing.
#   scripts/deps.sh serve   what `rosti serve` drives
#   scripts/deps.sh test    that plus the real clients and servers the tests use
set -euo pipefail

# postgresql and mariadb-server: the database servers rosti runs for storages;
# busybox-static and bash-static: the default runtime's image, built locally.
# chromium: the web UI's browser test. e2fsprogs and mount: the apps' disk
# images (mkfs.ext4, resize2fs, e2fsck; mount -o loop, losetup, findmnt).
serve_pkgs=(containerd runc containernetworking-plugins iptables iproute2 ca-certificates busybox-static bash-static postgresql mariadb-server e2fsprogs mount)
test_pkgs=("${serve_pkgs[@]}" openssh-client rsync git python3-coreapi postgresql-client mariadb-client chromium)

case "${1:-}" in
serve) pkgs=("${serve_pkgs[@]}") ;;
test)
	pkgs=("${test_pkgs[@]}")
	# npm fetches axe-core for the web UI's accessibility check; some
	# nodejs packages bring their own npm, Debian's is a package of its own.
	command -v npm >/dev/null || pkgs+=(npm)
	;;
*) echo "usage: $0 serve|test" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
