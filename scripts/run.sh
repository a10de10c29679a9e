#!/bin/sh
# scripts/run.sh (make run): the demo installation in <repo>/run, started under runit.
#
# `make` has built the programs already. This makes a self-signed certificate for the demo
# host once (run/control/tls/), installs the programs into ./run with scripts/install.sh
# (on 127.0.0.1: SMTP 2525 with STARTTLS, submission 2587, SMTPS 2465, POP3 2110 with STLS,
# POP3S 2995), sets up the demo domain example.test with the accounts alice and bob (random
# passwords, printed once, kept in run/demo-passwords), starts runsvdir on run/service (or,
# when it runs already, restarts the services onto the fresh programs), and waits until
# every port answers and deliver is up. Running it twice is harmless. `make stop`
# (scripts/stop.sh) stops it all.
set -eu
umask 022

repo=$(cd "$(dirname "$0")/.." && pwd -P)
prefix=$repo/run
pidfile=$prefix/runsvdir.pid
LISTEN_IP=127.0.0.1
PORT_SMTP=2525
PORT_SUBMISSION=2587
PORT_SMTPS=2465
PORT_POP3=2110
PORT_POP3S=2995
DOMAIN=example.test
# The demo certificate's names: what clients may check it against (curl --resolve, s_client).
CERT_SUBJECT=/CN=localhost
CERT_NAMES=DNS:localhost,DNS:mail.$DOMAIN,IP:127.0.0.1
ACCOUNTS="alice@$DOMAIN bob@$DOMAIN"

say() { echo "make run: $*"; }

# meaningful FILE: the lines of a control file without comments and blanks.
meaningful() {
  sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1" 2>/dev/null || true
}
# append FILE LINE: add a line to a control file, replacing it atomically.
append() {
  cp -p "$1" "$1.tmp"
  printf '%s\n' "$2" >> "$1.tmp"
  mv -f "$1.tmp" "$1"
}
# running: true when the pid file names a live runsvdir.
running() {
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = runsvdir ] || return 1
  state=$(sed -e 's/.*) //' -e 's/ .*//' "/proc/$pid/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ]
}

# --- the demo certificate (once; a real host gets its own, see INSTALL) -------------------
tls=$prefix/control/tls
if [ ! -f "$tls/cert.pem" ]; then
  mkdir -p "$tls"
  chmod 700 "$tls"
  # Key first, both under temporary names, so that tlsd never sees a cert without its key.
  (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "$CERT_SUBJECT" \
    -addext "subjectAltName=$CERT_NAMES" -keyout "$tls/key.pem.tmp" -out "$tls/cert.pem.tmp" 2>/dev/null) ||
    { say "openssl could not make the demo certificate" >&2; exit 1; }
  chmod 600 "$tls/key.pem.tmp"
  chmod 644 "$tls/cert.pem.tmp"
  mv -f "$tls/key.pem.tmp" "$tls/key.pem"
  mv -f "$tls/cert.pem.tmp" "$tls/cert.pem"
  say "made a self-signed certificate for localhost, mail.$DOMAIN and 127.0.0.1 in run/control/tls/"
fi

# --- install ------------------------------------------------------------------------------
new_me=
[ -e "$prefix/control/me" ] || new_me=1
LISTEN_IP=$LISTEN_IP PORT_SMTP=$PORT_SMTP PORT_SUBMISSION=$PORT_SUBMISSION PORT_SMTPS=$PORT_SMTPS \
  PORT_POP3=$PORT_POP3 PORT_POP3S=$PORT_POP3S sh "$repo/scripts/install.sh" "$prefix" >/dev/null

# --- demo configuration (only what is not set yet) ----------------------------------------
cd "$prefix"
if [ -n "$new_me" ]; then
  sed 's/^[^#].*/localhost/' control/me > control/me.tmp
  mv -f control/me.tmp control/me
fi
meaningful control/rcpthosts | grep -qxF "$DOMAIN" || append control/rcpthosts "$DOMAIN"
[ -n "$(meaningful control/postmaster)" ] || append control/postmaster "alice@$DOMAIN"

created=
for address in $ACCOUNTS; do
  grep -qxF "$address" users/recipients 2>/dev/null && continue
  password=$(LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 16)
  printf '%s\n' "$password" | bin/mailpasswd add "$address"
  (umask 077 && printf '%s %s\n' "$address" "$password" >> demo-passwords)
  chmod 600 demo-passwords
  created="$created $address"
done

# --- supervisor ---------------------------------------------------------------------------
if running; then
  # install.sh may have put new programs in run/bin: restart the services onto them.
  say "runsvdir already running (pid $(cat "$pidfile")); restarting the services"
  for service in "$prefix"/service/*/; do
    # A service new in this install has no runsv yet: runsvdir starts it within 5 s.
    [ -e "${service}supervise/ok" ] || continue
    sv -w 10 restart "${service%/}" >/dev/null || say "warning: sv restart ${service%/} failed" >&2
  done
else
  # Its own session, so that it outlives make; stdio away from the terminal.
  setsid runsvdir -P "$prefix/service" 'log: ..........................................................' \
    < /dev/null >> "$prefix/log/runsvdir.log" 2>&1 &
  echo $! > "$pidfile"
  say "started runsvdir (pid $!) on $prefix/service"
fi

# --- wait until every port answers and deliver is up (about 10 s at most) -----------------
# SMTPS and POP3S speak TLS first: the check shakes hands without verifying the certificate
# (it is only asking whether the service is up) and reads the greeting through TLS.
services_ready() {
  python3 - "$LISTEN_IP" "$PORT_SMTP:220" "$PORT_SUBMISSION:220" "$PORT_SMTPS:220:tls" \
    "$PORT_POP3:+OK" "$PORT_POP3S:+OK:tls" <<'EOF'
import socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ok = True
for spec in sys.argv[2:]:
    port, greeting, *tls = spec.split(":")
    try:
        with socket.create_connection((sys.argv[1], int(port)), timeout=1) as raw:
            raw.settimeout(2)
            s = ctx.wrap_socket(raw) if tls else raw
            ok = ok and s.recv(100).startswith(greeting.encode())
            s.sendall(b"QUIT\r\n")
    except (OSError, ssl.SSLError):
        ok = False
sys.exit(0 if ok else 1)
EOF
}
# deliver_up: sv says run, for a second at least (a crashing service shows 0s); the same for
# the queue server, whose socket must be there too.
deliver_up() {
  sv status "$prefix/service/deliver" 2>/dev/null | grep -q '^run: [^(]*(pid [0-9]*) [1-9][0-9]*s' &&
    sv status "$prefix/service/queue" 2>/dev/null | grep -q '^run: [^(]*(pid [0-9]*) [1-9][0-9]*s' &&
    [ -S "$prefix/socket/queue" ]
}
ready=
i=0
while [ $i -lt 50 ]; do
  if services_ready && deliver_up; then ready=1; break; fi
  sleep 0.2
  i=$((i + 1))
done
sv status "$prefix"/service/* || true
if [ -z "$ready" ]; then
  say "services did not come up within 10 s; see $prefix/log/<service>/current" >&2
  say "(smtpd submission smtps pop3d pop3s queue deliver) and $prefix/log/runsvdir.log" >&2
  exit 1
fi

# --- what runs where ----------------------------------------------------------------------
if [ -n "$created" ]; then
  echo
  say "demo accounts (passwords shown once; kept in run/demo-passwords, mode 600):"
  for address in $created; do grep "^$address " demo-passwords | sed 's/^/  /'; done
fi
cat <<EOF

tikimail demo is running under runit in $prefix (every port on $LISTEN_IP):
  smtpd       $PORT_SMTP  SMTP, STARTTLS offered; 127.0.0.1 may relay (control/tcp.smtp), other
                    IPs for 20 minutes after a POP3 login (POP before SMTP)
  submission  $PORT_SUBMISSION  STARTTLS, then SMTP AUTH (PLAIN, LOGIN) before MAIL
  smtps       $PORT_SMTPS  SMTP over TLS (implicit), SMTP AUTH before MAIL
  pop3d       $PORT_POP3  POP3, STLS offered; a login opens POP before SMTP on $PORT_SMTP
  pop3s       $PORT_POP3S  POP3 over TLS (implicit); a login does not open the relay
  queue       queue server: smtpd hands every accepted message to it (run/socket/queue)
  deliver     queue runner, local delivery into run/mail/<domain>/<user>/Maildir
  relaypurge  drops expired POP-before-SMTP entries every 5 minutes (bin/relayctl list)
  domain      $DOMAIN, accounts: $ACCOUNTS (passwords in run/demo-passwords)
  TLS         self-signed certificate run/control/tls/cert.pem for localhost,
              mail.$DOMAIN and 127.0.0.1 (-k, or --cacert that file)
  logs        run/log/<service>/current
  status      sv status run/service/*

Send a first mail:
  swaks --server $LISTEN_IP --port $PORT_SMTP --from you@$DOMAIN --to alice@$DOMAIN
and find it in:
  ls run/mail/$DOMAIN/alice/Maildir/new/
or read it over POP3 (alice's password is in run/demo-passwords):
  curl pop3://$LISTEN_IP:$PORT_POP3/1 -u alice@$DOMAIN:PASSWORD

Try TLS (PASSWORD from run/demo-passwords):
  swaks --server $LISTEN_IP --port $PORT_SMTP --tls --from you@$DOMAIN --to alice@$DOMAIN
  swaks --server $LISTEN_IP --port $PORT_SUBMISSION --tls --auth PLAIN --auth-user alice@$DOMAIN \\
        --auth-password PASSWORD --from alice@$DOMAIN --to bob@$DOMAIN
  swaks --server $LISTEN_IP --port $PORT_SMTPS --tlsc --auth LOGIN --auth-user alice@$DOMAIN \\
        --auth-password PASSWORD --from alice@$DOMAIN --to bob@$DOMAIN
  curl -k --ssl-reqd pop3://$LISTEN_IP:$PORT_POP3/ -u alice@$DOMAIN:PASSWORD
  curl -k pop3s://$LISTEN_IP:$PORT_POP3S/1 -u alice@$DOMAIN:PASSWORD
  curl --cacert run/control/tls/cert.pem pop3s://localhost:$PORT_POP3S/ -u alice@$DOMAIN:PASSWORD
  openssl s_client -starttls pop3 -connect $LISTEN_IP:$PORT_POP3 -CAfile run/control/tls/cert.pem

Stop everything with: make stop
EOF
