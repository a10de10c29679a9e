#!/bin/sh
# scripts/run.sh (make run): the demo installation in <repo>/run, started under runit.
#
# `make` has built the programs already. This installs them into ./run with
# scripts/install.sh (smtpd on 127.0.0.1:2525, pop3d on 127.0.0.1:2110), sets up the demo domain example.test with
# the accounts alice and bob (random passwords, printed once, kept in run/demo-passwords),
# starts runsvdir on run/service (or, when it runs already, restarts the services onto the
# fresh programs), and waits until smtpd answers and deliver is up. Running it twice is
# harmless. `make stop` (scripts/stop.sh) stops it all.
set -eu
umask 022

repo=$(cd "$(dirname "$0")/.." && pwd -P)
prefix=$repo/run
pidfile=$prefix/runsvdir.pid
LISTEN_IP=127.0.0.1
PORT_SMTP=2525
PORT_POP3=2110
# Later services join the same tree (their issues add them to install.sh):
# PORT_SUBMISSION=2587   submission (SMTP AUTH)
# PORT_SMTPS=2465        SMTP over TLS
# PORT_POP3S=2995        POP3 over TLS
DOMAIN=example.test
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

# --- install ------------------------------------------------------------------------------
new_me=
[ -e "$prefix/control/me" ] || new_me=1
LISTEN_IP=$LISTEN_IP PORT_SMTP=$PORT_SMTP PORT_POP3=$PORT_POP3 sh "$repo/scripts/install.sh" "$prefix" >/dev/null

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

# --- wait until smtpd answers and deliver is up (about 10 s at most) ----------------------
smtp_ready() {
  python3 - "$LISTEN_IP" "$PORT_SMTP" "$PORT_POP3" <<'EOF'
import socket, sys
ok = True
for port, greeting, quit in ((sys.argv[2], b"220", b"QUIT\r\n"), (sys.argv[3], b"+OK", b"QUIT\r\n")):
    try:
        with socket.create_connection((sys.argv[1], int(port)), timeout=1) as s:
            s.settimeout(2)
            ok = ok and s.recv(100).startswith(greeting)
            s.sendall(quit)
    except OSError:
        ok = False
sys.exit(0 if ok else 1)
EOF
}
# deliver_up: sv says run, for a second at least (a crashing service shows 0s).
deliver_up() {
  sv status "$prefix/service/deliver" 2>/dev/null | grep -q '^run: [^(]*(pid [0-9]*) [1-9][0-9]*s'
}
ready=
i=0
while [ $i -lt 50 ]; do
  if smtp_ready && deliver_up; then ready=1; break; fi
  sleep 0.2
  i=$((i + 1))
done
sv status "$prefix"/service/* || true
if [ -z "$ready" ]; then
  say "services did not come up within 10 s; see $prefix/log/smtpd/current," >&2
  say "$prefix/log/deliver/current and $prefix/log/runsvdir.log" >&2
  exit 1
fi

# --- what runs where ----------------------------------------------------------------------
if [ -n "$created" ]; then
  echo
  say "demo accounts (passwords shown once; kept in run/demo-passwords, mode 600):"
  for address in $created; do grep "^$address " demo-passwords | sed 's/^/  /'; done
fi
cat <<EOF

tikimail demo is running under runit in $prefix:
  smtpd     $LISTEN_IP:$PORT_SMTP (tcpserver; 127.0.0.1 may relay, see control/tcp.smtp)
  pop3d     $LISTEN_IP:$PORT_POP3 (POP3; a login opens POP before SMTP on $PORT_SMTP for 20 minutes)
  deliver   queue runner, local delivery into run/mail/<domain>/<user>/Maildir
  relaypurge  drops expired POP-before-SMTP entries every 5 minutes (bin/relayctl list)
  domain    $DOMAIN, accounts: $ACCOUNTS (passwords in run/demo-passwords)
  logs      run/log/<service>/current
  status    sv status run/service/*

Send a first mail:
  swaks --server $LISTEN_IP --port $PORT_SMTP --from you@$DOMAIN --to alice@$DOMAIN
and find it in:
  ls run/mail/$DOMAIN/alice/Maildir/new/
or read it over POP3 (alice's password is in run/demo-passwords):
  curl pop3://$LISTEN_IP:$PORT_POP3/1 -u alice@$DOMAIN:PASSWORD

Stop everything with: make stop
EOF
