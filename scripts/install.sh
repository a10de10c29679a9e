#!/bin/sh
# scripts/install.sh PREFIX: lay out a tikimail installation (DESIGN section 5) under PREFIX.
#
#   bin/ control/ users/ queue/{tmp,mess,todo,done} queue/trigger mail/ relay/ service/ log/
#
# Idempotent: a second run updates the programs and the service run files, rebuilds
# control/tcp.smtp.cdb, and never overwrites an existing control file or the accounts.
#
# Environment:
#   SRC_BIN     directory of the built programs (default: <repo>/build/bin)
#   LISTEN_IP   address smtpd listens on (default 0: every address)
#   PORT_SMTP   port smtpd listens on (default 25)
#   PORT_POP3   port pop3d listens on (default 110)
#
# Run as root, it also creates the system users of DESIGN section 4 (tiki-smtpd,
# tiki-pop3, tiki-queue, vmail, tiki-log) and sets owners and modes (INSTALL lists them). Run as
# an ordinary user, everything belongs to and runs as that user.
set -eu
umask 022

die() { echo "install.sh: $*" >&2; exit 111; }

[ $# -eq 1 ] || { echo "usage: $0 PREFIX" >&2; exit 100; }
repo=$(cd "$(dirname "$0")/.." && pwd -P)
templates=$repo/conf-templates
SRC_BIN=${SRC_BIN:-$repo/build/bin}
LISTEN_IP=${LISTEN_IP:-0}
PORT_SMTP=${PORT_SMTP:-25}
PORT_POP3=${PORT_POP3:-110}

# Every value below lands in a run script and in sed: accept only plain characters.
case $1 in
  /*) ;;
  *) mkdir -p "$1"; set -- "$(cd "$1" && pwd -P)" ;;
esac
PREFIX=$1
case $PREFIX in *[!A-Za-z0-9._/+-]*) die "PREFIX may contain only letters, digits and . _ / + -: $PREFIX" ;; esac
case $LISTEN_IP in ''|*[!0-9a-fA-F.:]*) die "bad LISTEN_IP: $LISTEN_IP" ;; esac
case $PORT_SMTP in ''|*[!0-9]*) die "bad PORT_SMTP: $PORT_SMTP" ;; esac
case $PORT_POP3 in ''|*[!0-9]*) die "bad PORT_POP3: $PORT_POP3" ;; esac
[ -d "$SRC_BIN" ] || die "no built programs in $SRC_BIN (run make first)"

if [ "$(id -u)" -eq 0 ]; then root=1; else root=; fi

# --- system users (root only) -------------------------------------------------------------
if [ -n "$root" ]; then
  for name in tiki-smtpd tiki-pop3 tiki-queue vmail tiki-log; do
    getent group "$name" >/dev/null || groupadd --system "$name"
    id -u "$name" >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --gid "$name" "$name"
  done
fi

# own PATH MODE [USER:GROUP]: set the mode, and as root the owner (default root:root).
# One path at a time, by name: never recursive.
own() {
  if [ -n "$root" ]; then chown "${3:-root:root}" "$1"; fi
  chmod "$2" "$1"
}
# dir PATH MODE [USER:GROUP]: create the directory if missing, then own it.
dir() {
  [ -d "$1" ] || mkdir "$1"
  own "$@"
}

# --- directories --------------------------------------------------------------------------
# Only the queue program (set-uid tiki-queue) writes entries. The directories that receive
# them are set-gid, so that every entry belongs to group tiki-queue whatever the caller's
# group (smtpd's, a CGI user's through sendmail): deliver, running as vmail with the
# supplementary group tiki-queue, reads them, removes finished ones, and removes stale
# files from tmp/ (queue/README.md); it writes its own records into done/.
[ -d "$PREFIX" ] || mkdir -p "$PREFIX"
dir "$PREFIX" 0755
dir "$PREFIX/bin" 0755
dir "$PREFIX/control" 0755
dir "$PREFIX/users" 0755
dir "$PREFIX/queue" 0750 tiki-queue:tiki-queue
dir "$PREFIX/queue/tmp" 2770 tiki-queue:tiki-queue
dir "$PREFIX/queue/mess" 2770 tiki-queue:tiki-queue
dir "$PREFIX/queue/todo" 2770 tiki-queue:tiki-queue
dir "$PREFIX/queue/done" 0750 vmail:tiki-queue
if [ ! -p "$PREFIX/queue/trigger" ]; then
  [ ! -e "$PREFIX/queue/trigger" ] || die "$PREFIX/queue/trigger exists and is not a fifo"
  mkfifo "$PREFIX/queue/trigger"
fi
own "$PREFIX/queue/trigger" 0660 tiki-queue:tiki-queue
dir "$PREFIX/mail" 0750 vmail:vmail
# The relay db (relayctl/README.md): only root (checkpassword, relayctl) writes entries;
# smtpd reads them through its group. Set-gid, so that every entry root writes belongs to
# group tiki-smtpd and its mode 0640 lets smtpd read it.
if [ -n "$root" ]; then
  dir "$PREFIX/relay" 2750 root:tiki-smtpd
else
  dir "$PREFIX/relay" 0750
fi
dir "$PREFIX/service" 0755
dir "$PREFIX/log" 0755

[ ! -e "$PREFIX/users/accounts" ] || own "$PREFIX/users/accounts" 0600
[ ! -e "$PREFIX/users/recipients" ] || own "$PREFIX/users/recipients" 0644

# --- programs -----------------------------------------------------------------------------
# Each is copied under a temporary name and renamed over the old one, so a running service
# keeps its (unlinked) binary and the next exec finds the new one whole.
found=
for src in "$SRC_BIN"/*; do
  if [ ! -f "$src" ] || [ ! -x "$src" ]; then continue; fi
  name=${src##*/}
  case $name in .*|*.o|*.a|*.d) continue ;; esac
  tmp=$PREFIX/bin/.$name.new
  if [ "$name" = queue ] && [ -n "$root" ]; then
    # Set-uid tiki-queue: only the queue program writes the queue (DESIGN section 4).
    install -o tiki-queue -g tiki-queue -m 4711 "$src" "$tmp"
  elif [ "$name" = checkpassword ] && [ -n "$root" ]; then
    # Set-uid root, runnable only by group tiki-pop3 (pop3d): it reads users/accounts and
    # control/apopkey, writes relay/, then becomes vmail (pop3d/README.md).
    install -o root -g tiki-pop3 -m 4750 "$src" "$tmp"
  elif [ -n "$root" ]; then
    install -o root -g root -m 755 "$src" "$tmp"
  else
    install -m 755 "$src" "$tmp"
  fi
  mv -f "$tmp" "$PREFIX/bin/$name"
  found="$found $name"
done
for name in smtpd queue sendmail mailq deliver mailpasswd relayctl pop3d checkpassword pop3d-session; do
  case " $found " in *" $name "*) ;; *) echo "install.sh: warning: $SRC_BIN/$name not built" >&2 ;; esac
done

# --- control files (only those missing) ---------------------------------------------------
me=$(hostname -f 2>/dev/null || true)
[ -n "$me" ] || me=$(hostname)
case $me in ''|*[!A-Za-z0-9.-]*) me=localhost ;; esac
for src in "$templates"/control/*; do
  name=${src##*/}
  dst=$PREFIX/control/$name
  [ -e "$dst" ] && continue
  sed "s/@ME@/$me/" "$src" > "$dst.tmp"
  own "$dst.tmp" 0644
  mv -f "$dst.tmp" "$dst"
done
# Rebuilt every time, so that edits of control/tcp.smtp take effect.
(cd "$PREFIX" && tcprules control/tcp.smtp.cdb control/tcp.smtp.tmp < control/tcp.smtp) ||
  die "tcprules failed on $PREFIX/control/tcp.smtp"
own "$PREFIX/control/tcp.smtp.cdb" 0644

# --- service directories ------------------------------------------------------------------
if [ -n "$root" ]; then
  # tcpserver binds as root, then runs smtpd as tiki-smtpd (numeric: no lookup per connection).
  tcpserver_user="-u $(id -u tiki-smtpd) -g $(id -g tiki-smtpd) "
  # pop3d before login runs as tiki-pop3: it cannot read accounts, keys or mailboxes.
  pop3_user="-u $(id -u tiki-pop3) -g $(id -g tiki-pop3) "
  # deliver: vmail owns the mailboxes; group tiki-queue opens the queue.
  deliver_chpst="chpst -u vmail:vmail:tiki-queue "
  log_chpst="chpst -u tiki-log "
else
  tcpserver_user='' pop3_user='' deliver_chpst='' log_chpst=''
fi

# template SRC DST: substitute the placeholders, replace DST atomically (mode 755).
template() {
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LISTEN_IP@|$LISTEN_IP|g" -e "s|@PORT_SMTP@|$PORT_SMTP|g" \
      -e "s|@PORT_POP3@|$PORT_POP3|g" -e "s|@POP3_USER@|$pop3_user|g" \
      -e "s|@TCPSERVER_USER@|$tcpserver_user|g" -e "s|@DELIVER_CHPST@|$deliver_chpst|g" \
      -e "s|@LOG_CHPST@|$log_chpst|g" "$1" > "$2.tmp"
  own "$2.tmp" 0755
  mv -f "$2.tmp" "$2"
}

for src in "$templates"/runit/*/; do
  name=${src%/}
  name=${name##*/}
  dir "$PREFIX/service/$name" 0755
  dir "$PREFIX/service/$name/log" 0755
  dir "$PREFIX/log/$name" 0755 tiki-log:tiki-log
  # supervise/ (runsv's state) is left alone.
  template "$templates/runit/$name/log/run" "$PREFIX/service/$name/log/run"
  template "$templates/runit/$name/run" "$PREFIX/service/$name/run"
done

echo "tikimail installed in $PREFIX (smtpd on $LISTEN_IP:$PORT_SMTP, pop3d on $LISTEN_IP:$PORT_POP3)"
