#!/bin/sh
# scripts/deps.sh [build|all]: make sure the Debian packages tikimail needs are installed.
#   build  what `make` and the unit tests need
#   all    build + what `make run` and `make test` need (the default)
# Quiet when everything is present. As root, installs what is missing with apt-get;
# otherwise prints the exact apt-get command to run and exits 1.
set -eu

BUILD_PKGS="g++ make pkg-config libssl-dev libsodium-dev catch2 libfmt-dev"
RUN_PKGS="ucspi-tcp runit swaks curl fetchmail python3 openssl libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl"

case "${1:-all}" in
  build) want=$BUILD_PKGS ;;
  all) want="$BUILD_PKGS $RUN_PKGS" ;;
  *) echo "usage: $0 [build|all]" >&2; exit 100 ;;
esac

missing=
for pkg in $want; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
missing=${missing# }

if [ "$(id -u)" -ne 0 ]; then
  echo "tikimail: missing Debian packages: $missing" >&2
  echo "tikimail: run as root:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing" >&2
  exit 1
fi

echo "tikimail: installing missing packages: $missing"
apt-get update
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
