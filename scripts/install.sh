#!/bin/sh
# scripts/install.sh PREFIX: lay out a tikimail installation (DESIGN section 5) under PREFIX.
#
#   bin/ control/ control/tls/ users/ queue/{tmp,todo,pool,done,info,bounce,lock} queue/trigger socket/
#   mail/ relay/ service/ log/
#
# Idempotent: a second run updates the programs and the service run files, rebuilds
# control/tcp.smtp.cdb, and never overwrites an existing control file, certificate or the
# accounts. The certificate (control/tls/cert.pem, key.pem) is the administrator's (INSTALL).
#
# Environment:
#   SRC_BIN          directory of the built programs (default: <repo>/build/bin)
#   LISTEN_IP        address every service listens on (default 0: every address)
#   PORT_SMTP        SMTP, the MX port: STARTTLS offered, POP before SMTP (default 25)
#   PORT_SUBMISSION  submission: STARTTLS, then SMTP AUTH (default 587)
#   PORT_SMTPS       submission over implicit TLS (default 465)
#   PORT_POP3        POP3 with STLS (default 110)
#   PORT_POP3S       POP3 over implicit TLS (default 995)
#
# The implicit-TLS services run as tcpserver -> tlsd -> smtpd or pop3d; the plaintext ones as
# tcpserver -> smtpd or pop3d, which start tlsd -s on STARTTLS or STLS (tlsd/README.md).
# Run as root, it also creates the system users of DESIGN section 4 (tiki-smtpd, tiki-pop3,
# tiki-queue, vmail, tiki-log, tiki-tls) and the group tiki-auth (the groups that may run
# checkpassword: smtpd and pop3d), and sets owners and modes (INSTALL lists them). Run as an
# ordinary user, everything belongs to and runs as that user.
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
PORT_SUBMISSION=${PORT_SUBMISSION:-587}
PORT_SMTPS=${PORT_SMTPS:-465}
PORT_POP3S=${PORT_POP3S:-995}

# Every value below lands in a run script and in sed: accept only plain characters.
case $1 in
  /*) ;;
  *) mkdir -p "$1"; set -- "$(cd "$1" && pwd -P)" ;;
esac
PREFIX=$1
case $PREFIX in *[!A-Za-z0-9._/+-]*) die "PREFIX may contain only letters, digits and . _ / + -: $PREFIX" ;; esac
case $LISTEN_IP in ''|*[!0-9a-fA-F.:]*) die "bad LISTEN_IP: $LISTEN_IP" ;; esac
for port in "PORT_SMTP=$PORT_SMTP" "PORT_SUBMISSION=$PORT_SUBMISSION" "PORT_SMTPS=$PORT_SMTPS" \
    "PORT_POP3=$PORT_POP3" "PORT_POP3S=$PORT_POP3S"; do
  case ${port#*=} in ''|*[!0-9]*) die "bad $port" ;; esac
done
[ -d "$SRC_BIN" ] || die "no built programs in $SRC_BIN (run make first)"

if [ "$(id -u)" -eq 0 ]; then root=1; else root=; fi

# --- system users (root only) -------------------------------------------------------------
if [ -n "$root" ]; then
  for name in tiki-smtpd tiki-pop3 tiki-queue vmail tiki-log tiki-tls tiki-remote; do
    getent group "$name" >/dev/null || groupadd --system "$name"
    id -u "$name" >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --gid "$name" "$name"
  done
  # tiki-auth: a group only. smtpd (SMTP AUTH) and pop3d run with it (tlsd -g), so that they
  # and nobody else may run checkpassword, and smtpd reads relay/ through it.
  getent group tiki-auth >/dev/null || groupadd --system tiki-auth
  # tiki-send: a group only, deliver's: the one group that may run bin/deliver-remote (vmail
  # alone is not enough: pop3d-session runs as vmail too).
  getent group tiki-send >/dev/null || groupadd --system tiki-send
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
# No queue/mess: an entry is one file in todo/. One left by an older layout is not touched (queue/README.md).
dir "$PREFIX/queue/todo" 2770 tiki-queue:tiki-queue
# Spare entry files: deliver (group tiki-queue) moves finished ones in, queue takes them back
# instead of creating a file per message (queue/README.md, "The pool").
dir "$PREFIX/queue/pool" 2770 tiki-queue:tiki-queue
dir "$PREFIX/queue/done" 2750 vmail:tiki-queue
# deliver's own records (retry state, pending notices, connection slots). Set-gid, like
# done/: the files deliver writes (mode 0640) belong to group tiki-queue, through which mailq
# reads them.
dir "$PREFIX/queue/info" 2750 vmail:tiki-queue
dir "$PREFIX/queue/bounce" 2750 vmail:tiki-queue
dir "$PREFIX/queue/lock" 0700 vmail:tiki-queue
if [ ! -p "$PREFIX/queue/trigger" ]; then
  [ ! -e "$PREFIX/queue/trigger" ] || die "$PREFIX/queue/trigger exists and is not a fifo"
  mkfifo "$PREFIX/queue/trigger"
fi
own "$PREFIX/queue/trigger" 0660 tiki-queue:tiki-queue
# The queue server's socket (service/queue, queue/README.md "The server"): tiki-queue creates
# it; group tiki-auth (smtpd) may reach it, nobody else.
dir "$PREFIX/socket" 0750 tiki-queue:tiki-auth
dir "$PREFIX/mail" 0750 vmail:vmail
# The relay db (relayctl/README.md): only root (checkpassword, relayctl) writes entries;
# smtpd reads them through its group tiki-auth (tlsd -g). Set-gid, so that every entry root
# writes belongs to group tiki-auth and its mode 0640 lets smtpd read it.
if [ -n "$root" ]; then
  dir "$PREFIX/relay" 2750 root:tiki-auth
  # Entries written before tiki-auth existed belong to tiki-smtpd: hand them over one by one
  # (only root writes relay/, so every name here is an entry or its temporary file).
  for entry in "$PREFIX"/relay/*; do
    if [ -f "$entry" ] && [ ! -L "$entry" ]; then chgrp tiki-auth "$entry"; fi
  done
else
  dir "$PREFIX/relay" 0750
fi
# TLS certificates and keys (tlsd/README.md): only tlsd reads them, as root before it drops
# to tiki-tls, or as `tlsd -s` through its file capability, so the directory is root's alone.
# The files are the administrator's (INSTALL); `make run` makes a self-signed pair.
dir "$PREFIX/control/tls" 0700
[ ! -f "$PREFIX/control/tls/key.pem" ] || own "$PREFIX/control/tls/key.pem" 0600
dir "$PREFIX/service" 0755
dir "$PREFIX/log" 0755

[ ! -e "$PREFIX/users/accounts" ] || own "$PREFIX/users/accounts" 0600
[ ! -e "$PREFIX/users/recipients" ] || own "$PREFIX/users/recipients" 0644
# checkpassword's hash slots (pop3d/README.md): empty, locked a byte a slot; it would create it.
[ -f "$PREFIX/users/hashslots" ] || : > "$PREFIX/users/hashslots"
own "$PREFIX/users/hashslots" 0600

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
    # Set-uid root, runnable only by group tiki-auth (pop3d, and smtpd for SMTP AUTH): it
    # reads users/accounts and control/apopkey, writes relay/, then becomes vmail
    # (pop3d/README.md).
    install -o root -g tiki-auth -m 4750 "$src" "$tmp"
  elif [ "$name" = deliver-remote ] && [ -n "$root" ]; then
    # Set-uid tiki-remote, runnable only by group tiki-send (deliver): the SMTP client that talks
    # to other hosts holds no mailbox, no queue and no key, and outgoing port 25 can be
    # limited to this one uid (deliver-remote/README.md).
    install -o tiki-remote -g tiki-send -m 4710 "$src" "$tmp"
    # CAP_SETGID lets it drop deliver's groups (vmail, tiki-queue) before it does anything
    # else; it gives the capability up at once (deliver-remote/README.md "Privileges").
    setcap cap_setgid=ep "$tmp" || die "setcap failed on $tmp (package libcap2-bin; a filesystem with extended attributes)"
    chmod 4710 "$tmp"  # setcap may clear the set-uid bit
  elif [ "$name" = tlsd ] && [ -n "$root" ]; then
    # Runnable by root (tcpserver on 465 and 995) and by group tiki-auth: smtpd and pop3d start
    # `tlsd -s` themselves when a client asks for STARTTLS or STLS. The file capability lets
    # that tlsd read control/tls/ (root's) for the handshake; it gives every capability up
    # before it relays a byte (tlsd/README.md "Privileges").
    install -o root -g tiki-auth -m 750 "$src" "$tmp"
    setcap cap_dac_read_search=ep "$tmp" || die "setcap failed on $tmp (package libcap2-bin; a filesystem with extended attributes)"
  elif [ -n "$root" ]; then
    install -o root -g root -m 755 "$src" "$tmp"
  else
    install -m 755 "$src" "$tmp"
  fi
  mv -f "$tmp" "$PREFIX/bin/$name"
  found="$found $name"
done
for name in smtpd queue sendmail mailq deliver deliver-remote mailpasswd relayctl pop3d checkpassword pop3d-session tlsd; do
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
  # tcpserver binds as root and runs tlsd as root, which reads the key, then runs the protocol
  # program under -u/-g and drops to tiki-tls itself (-U/-G). Numeric: no lookup per connection.
  auth_gid=$(getent group tiki-auth | cut -d: -f3)
  [ -n "$auth_gid" ] || die "no group tiki-auth"
  tlsd_self="-U $(id -u tiki-tls) -G $(id -g tiki-tls) "
  # smtpd runs as tiki-smtpd with group tiki-auth: it may run checkpassword (SMTP AUTH) and
  # tlsd -s, and read relay/, but not users/accounts, keys or mailboxes.
  smtpd_ids="-u $(id -u tiki-smtpd) -g $auth_gid $tlsd_self"
  # pop3d before login runs as tiki-pop3 with group tiki-auth: it may run checkpassword and
  # tlsd -s only.
  pop3d_ids="-u $(id -u tiki-pop3) -g $auth_gid $tlsd_self"
  # The plaintext ports (25, 587, 110) have no tlsd above the protocol program: tcpserver
  # itself switches to these ids after binding, for itself and every connection.
  smtpd_tcp_ids="-u $(id -u tiki-smtpd) -g $auth_gid "
  pop3d_tcp_ids="-u $(id -u tiki-pop3) -g $auth_gid "
  # deliver: vmail owns the mailboxes; group tiki-queue opens the queue.
  deliver_chpst="chpst -u vmail:vmail:tiki-queue:tiki-send "
  log_chpst="chpst -u tiki-log "
  # The queue server runs as the queue's owner, as the set-uid bin/queue does.
  queue_chpst="chpst -u tiki-queue:tiki-queue "
else
  smtpd_ids='' pop3d_ids='' smtpd_tcp_ids='' pop3d_tcp_ids='' deliver_chpst='' log_chpst='' queue_chpst=''
fi

# template SRC DST: substitute the placeholders, replace DST atomically (mode 755).
template() {
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LISTEN_IP@|$LISTEN_IP|g" -e "s|@PORT_SMTP@|$PORT_SMTP|g" \
      -e "s|@PORT_SUBMISSION@|$PORT_SUBMISSION|g" -e "s|@PORT_SMTPS@|$PORT_SMTPS|g" \
      -e "s|@PORT_POP3@|$PORT_POP3|g" -e "s|@PORT_POP3S@|$PORT_POP3S|g" \
      -e "s|@SMTPD_IDS@|$smtpd_ids|g" -e "s|@POP3D_IDS@|$pop3d_ids|g" \
      -e "s|@SMTPD_TCP_IDS@|$smtpd_tcp_ids|g" -e "s|@POP3D_TCP_IDS@|$pop3d_tcp_ids|g" \
      -e "s|@DELIVER_CHPST@|$deliver_chpst|g" -e "s|@LOG_CHPST@|$log_chpst|g" \
      -e "s|@QUEUE_CHPST@|$queue_chpst|g" "$1" > "$2.tmp"
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

echo "tikimail installed in $PREFIX on $LISTEN_IP: smtp $PORT_SMTP, submission $PORT_SUBMISSION," \
  "smtps $PORT_SMTPS, pop3 $PORT_POP3, pop3s $PORT_POP3S"
if [ ! -f "$PREFIX/control/tls/cert.pem" ] || [ ! -f "$PREFIX/control/tls/key.pem" ]; then
  echo "install.sh: note: no certificate yet: until control/tls/cert.pem and key.pem exist," \
    "TLS handshakes fail (INSTALL, step 4)" >&2
fi
