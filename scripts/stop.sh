#!/bin/sh
# scripts/stop.sh (make stop): stop the demo started by scripts/run.sh.
# Sends HUP to the runsvdir named in run/runsvdir.pid (runsvdir then stops every runsv,
# and each runsv its service and logger), waits until runsvdir and its runsv children are
# gone, and removes the pid file. Only that pid is signalled; nothing is killed by name.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd -P)
pidfile=$repo/run/runsvdir.pid

say() { echo "make stop: $*"; }

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
  state=$(sed -e 's/.*) //' -e 's/ .*//' "/proc/$1/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ]
}

if [ ! -e "$pidfile" ]; then
  say "not running (no $pidfile)"
  exit 0
fi
pid=$(cat "$pidfile")
case $pid in
  ''|*[!0-9]*) say "ignoring bad pid file"; rm -f "$pidfile"; exit 0 ;;
esac
if ! alive "$pid" || [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" != runsvdir ]; then
  say "not running (stale pid $pid)"
  rm -f "$pidfile"
  exit 0
fi

children=$(ps -o pid= --ppid "$pid" || true)
kill -HUP "$pid"
i=0
while [ $i -lt 50 ]; do
  left=
  for p in $pid $children; do
    if alive "$p"; then left="$left $p"; fi
  done
  [ -n "$left" ] || break
  sleep 0.1
  i=$((i + 1))
done
if [ -n "$left" ]; then
  say "still running after 5 s, pids:$left" >&2
  exit 1
fi
rm -f "$pidfile"
say "stopped runsvdir (pid $pid) and its services"
