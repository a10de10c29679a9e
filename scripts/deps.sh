#!/bin/sh
# scripts/deps.sh [build|all|test|bench]: make sure the Debian packages tikimail needs are installed.
#   build  what `make` and the unit tests need
#   all    build + what `make run` needs (the default)
#   test   all + what `make test` needs: Postfix's smtp-sink plays the remote MX in the
#          remote-delivery tests (preseeded "No configuration": nothing is started)
#   bench  all + what `make bench` needs: Postfix (with smtp-source) and Dovecot's POP3 server
#          as the comparison, strace for the fsync count, a C compiler for bench/pop3_drain.c.
#          Postfix is preseeded with "No configuration" and nothing is started: the benchmark
#          runs private instances (bench/README.md) and never touches /etc/postfix or /etc/dovecot.
# Quiet when everything is present. As root, installs what is missing with apt-get;
# otherwise prints the exact apt-get command to run and exits 1.
set -eu

BUILD_PKGS="g++ make pkg-config libssl-dev libsodium-dev catch2 libfmt-dev"
RUN_PKGS="libcap2-bin ucspi-tcp runit swaks curl fetchmail python3 openssl libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl"
TEST_PKGS="postfix"
BENCH_PKGS="postfix dovecot-pop3d strace gcc"

case "${1:-all}" in
  build) want=$BUILD_PKGS ;;
  all) want="$BUILD_PKGS $RUN_PKGS" ;;
  test) want="$BUILD_PKGS $RUN_PKGS $TEST_PKGS" ;;
  bench) want="$BUILD_PKGS $RUN_PKGS $BENCH_PKGS" ;;
  *) echo "usage: $0 [build|all|test|bench]" >&2; exit 100 ;;
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
case " $missing " in
  *" postfix "*)
    # Without this, postfix's postinst asks (or configures a system mailer and starts it).
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections ;;
esac
apt-get update
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
