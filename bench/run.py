#!/usr/bin/env python3
"""bench/run.py: the body of `make bench` (bench/README.md). tikimail against Postfix + Dovecot.

A benchmark, not a test: it asserts no speed. Run as root (it installs tikimail with its system
users, and runs private Postfix and Dovecot instances). Everything lives under one fixed folder,
/tmp/tikimail-makebench, rebuilt at every run; nothing under /etc is read or written except the
packages' own defaults. Every process it starts it stops, by recorded PID, also on error and ^C.

    python3 bench/run.py [--bin build/bin] [--rounds 3] [--quick] [--note TEXT] [--no-readme]

Per round: a small loop measures the machine's fsync ceiling; then for each system in turn (the
order alternates from round to round): start it, measure the idle memory, the SMTP burst (accept
and end-to-end), the POP3 drain, the large messages and the TLS handshakes, stop it. After the
rounds, one traced run per system counts fsync calls per message. The table goes to stdout,
bench/out/results.md, and (unless --no-readme) the marked section of bench/README.md;
--readme-only copies the last results.md there again.
"""
import argparse
import datetime
import itertools
import multiprocessing
import os
import platform
import pwd
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
BASE = "/tmp/tikimail-makebench"          # fixed: the only folder this script removes
DOMAIN = "bench.test"
ACCOUNTS = ["user%02d@%s" % (i, DOMAIN) for i in range(1, 21)]
SENDER = "sender@" + DOMAIN
HOST = "127.0.0.1"
# Ports of their own: `make run` uses 2525/2587/2465/2110/2995, the tests those and random high ones.
TIKI_PORTS = {"smtp": 3525, "submission": 3587, "smtps": 3465, "pop3": 3110, "pop3s": 3995}
PF_PORTS = {"smtp": 4525, "smtps": 4465, "pop3": 4110, "pop3s": 4995}
FLOOR_PORT = 5525  # tcpserver with bench/smtp_floor.c
TIKI = "tikimail"
PFD = "postfix-dovecot"

README_BEGIN = "<!-- bench:results begin (written by make bench: bench/run.py) -->"
README_END = "<!-- bench:results end -->"


def log(msg):
    sys.stdout.write("bench: %s\n" % msg)
    sys.stdout.flush()


class BenchError(Exception):
    pass


# --- processes ------------------------------------------------------------------------------

def proc_table():
    """pid -> (ppid, comm, state) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2:].split()
        table[int(entry)] = (int(rest[1]), comm, rest[0])
    return table


def descendants(roots, table=None):
    """The roots (those alive) and all their descendants."""
    table = table if table is not None else proc_table()
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def comm_of(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def kill_left(pids, what):
    """Last resort for processes we started and that did not stop: SIGKILL by pid."""
    names = ["%d(%s)" % (pid, comm_of(pid)) for pid in pids]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if pids:
        log("warning: %s: killed %s after they did not stop" % (what, " ".join(names)))


def rollup_kib(pid, dirty=False):
    """(Pss, private = Private_Clean + Private_Dirty) of a process, in KiB; with dirty=True
    also Private_Dirty alone: the memory the process really has to itself (written pages),
    whereas Private_Clean also counts program text that no other process maps right now."""
    pss = private = private_dirty = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Private_"):
                    private += int(line.split()[1])
                    if line.startswith("Private_Dirty:"):
                        private_dirty = int(line.split()[1])
    except OSError:
        pass
    return (pss, private, private_dirty) if dirty else (pss, private)


def pss_kib(pid):
    return rollup_kib(pid)[0]


class CpuGroup:
    """A cgroup-v1 cpuacct group per system: its usage counts every process the system runs,
    short-lived ones included, and none of the load generators' or the other users' of a
    shared machine. Without cgroup v1 cpuacct the CPU rows stay empty."""
    ROOT = "/sys/fs/cgroup/cpuacct"

    def __init__(self, name):
        self.path = "%s/tikimail-bench-%s" % (self.ROOT, name)
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError:
            self.path = None

    def join(self):
        """In a child before exec (preexec_fn): everything it starts is counted."""
        if self.path:
            with open(self.path + "/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    def usage(self):
        """CPU seconds used so far, or None."""
        if not self.path:
            return None
        with open(self.path + "/cpuacct.usage") as f:
            return int(f.read()) / 1e9

    def procs(self):
        if not self.path:
            return []
        with open(self.path + "/cgroup.procs") as f:
            return [int(x) for x in f.read().split()]

    def remove(self):
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError as e:
                log("warning: cannot remove %s: %s" % (self.path, e))


def read_pid(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def run(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def listening(port):
    """True when something listens on HOST:port (read from /proc/net/tcp: no connection made,
    so that no server process is spawned before the idle memory is measured)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == want and parts[3] == "0A":
                return True
    return False


def wait_listening(ports, what, seconds=15):
    deadline = time.monotonic() + seconds
    while not all(listening(p) for p in ports):
        if time.monotonic() > deadline:
            raise BenchError("%s: nothing listens on %s" % (what, [p for p in ports if not listening(p)]))
        time.sleep(0.05)


def connection_pids(sock):
    """The server-side processes holding the TCP connection whose client end is sock."""
    cport = sock.getsockname()[1]
    sport = sock.getpeername()[1]
    local, remote = "0100007F:%04X" % sport, "0100007F:%04X" % cport
    inode = None
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == local and parts[2] == remote:
                inode = parts[9]
    if inode is None:
        return []
    target = "socket:[%s]" % inode
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % entry)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (entry, fd)) == target:
                    pids.append(int(entry))
                    break
            except OSError:
                pass
    return pids


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- mailboxes ------------------------------------------------------------------------------

def count_new(maildirs):
    n = 0
    for d in maildirs:
        with os.scandir(d + "/new") as it:
            for _ in it:
                n += 1
    return n


# This machine's ext4 has no journal, and then every create scans the inodes of its block group
# freed in the last 30 seconds (60 while their inode table block is not written yet; measured
# here: a create costs 12 us normally and 180 us in a group with 6000 files removed 31 s before,
# synced, and 12 us again after 41 s). A burst that starts right after the benchmark's own
# deletions (the previous run's folder, the other system's POP3 drain) would pay for those,
# whichever system it measures. So the benchmark deletes nothing between the bursts (emptied
# Maildirs go to trash/, truncated; the fsync loop keeps its files) but the POP3 drains, which
# are a workload, and before each timed SMTP burst it syncs and waits until 45 s have passed
# since the last deletion.
RECENT_DELETE_SECONDS = 45
TRASH = BASE + "/trash"
_deleted_at = [0.0]


def deleted_now():
    _deleted_at[0] = time.monotonic()


def settle():
    os.sync()
    wait = _deleted_at[0] + RECENT_DELETE_SECONDS - time.monotonic()
    if wait > 0:
        log("waiting %.0f s for the last deletions to age (bench/README.md, \"Deletions\")" % wait)
        time.sleep(wait)


def empty_maildirs(maildirs):
    """Moves every message out of the Maildirs into trash/, truncated: no inode is freed."""
    os.makedirs(TRASH, exist_ok=True)
    for d in maildirs:
        for sub in ("new", "cur", "tmp"):
            path = d + "/" + sub
            with os.scandir(path) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        os.truncate(e.path, 0)
                        os.rename(e.path, "%s/%d" % (TRASH, next(_trash_names)))


_trash_names = itertools.count()


def files_under(path):
    n = 0
    for _, _, files in os.walk(path):
        n += len(files)
    return n


# --- the two systems ------------------------------------------------------------------------

class Tikimail:
    name = TIKI

    def __init__(self, src_bin, cert_dir):
        self.prefix = BASE + "/tiki"
        self.ports = TIKI_PORTS
        self.runsvdir = None
        self.cpu = CpuGroup(self.name)
        self.maildirs = ["%s/mail/%s/%s/Maildir" % (self.prefix, DOMAIN, a.split("@")[0]) for a in ACCOUNTS]
        env = dict(os.environ, SRC_BIN=src_bin, LISTEN_IP=HOST, PORT_SMTP=str(self.ports["smtp"]),
                   PORT_SUBMISSION=str(self.ports["submission"]), PORT_SMTPS=str(self.ports["smtps"]),
                   PORT_POP3=str(self.ports["pop3"]), PORT_POP3S=str(self.ports["pop3s"]))
        run(["sh", ROOT + "/scripts/install.sh", self.prefix], env=env, stdout=subprocess.DEVNULL)
        tls = self.prefix + "/control/tls"
        for name, mode in (("key.pem", 0o600), ("cert.pem", 0o644)):
            shutil.copyfile(cert_dir + "/" + name, tls + "/" + name)
            os.chmod(tls + "/" + name, mode)
        with open(self.prefix + "/control/rcpthosts", "a") as f:
            f.write(DOMAIN + "\n")

    def add_accounts(self, passwords):
        for address in ACCOUNTS:
            run([self.prefix + "/bin/mailpasswd", "add", address], input=(passwords[address] + "\n").encode(),
                stdout=subprocess.DEVNULL)
        hashes = {}
        with open(self.prefix + "/users/accounts") as f:
            for line in f:
                if line.startswith("#") or ":" not in line:
                    continue
                fields = line.rstrip("\n").split(":")
                hashes[fields[0]] = fields[1]
        return hashes

    def start(self):
        with open(self.prefix + "/log/runsvdir.log", "ab") as out:
            self.runsvdir = subprocess.Popen(["runsvdir", "-P", self.prefix + "/service", "log: " + "." * 60],
                                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                             start_new_session=True, preexec_fn=self.cpu.join)
        with open(self.prefix + "/runsvdir.pid", "w") as f:
            f.write("%d\n" % self.runsvdir.pid)
        wait_listening(list(self.ports.values()), self.name)
        deadline = time.monotonic() + 10
        while self.service_pid("deliver") is None:
            if time.monotonic() > deadline:
                raise BenchError("tikimail: deliver did not start")
            time.sleep(0.1)

    def service_pid(self, service):
        pid = read_pid("%s/service/%s/supervise/pid" % (self.prefix, service))
        return pid if pid and alive(pid) else None

    def stop(self):
        if self.runsvdir is None:
            return
        tree = descendants([self.runsvdir.pid])
        try:
            os.kill(self.runsvdir.pid, signal.SIGHUP)   # runsvdir TERMs every runsv, each its service and logger
        except OSError:
            pass
        try:
            self.runsvdir.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        kill_left(wait_gone(tree, 10), "tikimail")
        kill_left(wait_gone(self.cpu.procs(), 5), "tikimail (cgroup)")
        self.runsvdir.wait()
        self.runsvdir = None
        try:
            os.unlink(self.prefix + "/runsvdir.pid")
        except OSError:
            pass

    def roots(self):
        return [self.runsvdir.pid]

    def queue_empty(self):
        return all(not os.listdir("%s/queue/%s" % (self.prefix, d)) for d in ("todo", "tmp", "done"))

    def trace_pids(self):
        # The SMTP listener and deliver (strace follows what they start), and the queue server
        # with each of its workers, which are already running when strace attaches.
        return [self.service_pid("smtpd"), self.service_pid("deliver")] + descendants([self.service_pid("queue")])


PF_MASTER_CF = """\
# Postfix's master.cf as Debian ships it (services in use), with chroot off (a private
# instance has no copies of /etc in its queue) and the SMTP ports of the benchmark.
{smtp}      inet  n       -       n       -       -       smtpd
{smtps}      inet  n       -       n       -       -       smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

PF_MAIN_CF = """\
# Private Postfix instance of `make bench`. Only what a virtual-domain Maildir host needs is
# set; everything else, fsync behaviour included, is Postfix's default.
compatibility_level = 3.6
queue_directory = {base}/postfix/spool
data_directory = {base}/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{domain}
mydestination =
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
relay_domains =
biff = no
maillog_file_prefixes = {base}
maillog_file = {base}/postfix/maillog
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {base}/pfmail
virtual_mailbox_maps = texthash:{base}/postfix/etc/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
# tikimail's control/databytes (20 MiB): Postfix's default 10240000 would refuse the 10 MB
# workload, and virtual_mailbox_limit (per Maildir file) must not be below it.
message_size_limit = 20971520
virtual_mailbox_limit = 20971520
# STARTTLS offered on the MX port, as tikimail's does; implicit TLS on the smtps port.
smtpd_tls_cert_file = {base}/tls/cert.pem
smtpd_tls_key_file = {base}/tls/key.pem
smtpd_tls_security_level = may
"""

DOVECOT_CONF = """\
# Private Dovecot instance of `make bench` (POP3 only), reading the Maildirs Postfix delivers
# to. Defaults everywhere else (mail_fsync = optimized, one process per login and per session).
base_dir = {base}/dovecot/run
state_dir = {base}/dovecot/state
instance_name = tikimail-bench-dovecot
protocols = pop3
listen = {host}
ssl = yes
ssl_cert = <{base}/tls/cert.pem
ssl_key = <{base}/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {base}/dovecot/dovecot.log
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID {base}/dovecot/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/pfmail/%d/%n
}}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"""


class PostfixDovecot:
    name = PFD

    def __init__(self):
        self.ports = PF_PORTS
        vmail = pwd.getpwnam("vmail")
        self.uid, self.gid = vmail.pw_uid, vmail.pw_gid
        self.conf = BASE + "/postfix/etc"
        self.spool = BASE + "/postfix/spool"
        self.cpu = CpuGroup(self.name)
        self.maildirs = ["%s/pfmail/%s/%s/Maildir" % (BASE, DOMAIN, a.split("@")[0]) for a in ACCOUNTS]
        self.master = self.dovecot = None
        for d in (self.conf, self.spool, BASE + "/postfix/data", BASE + "/dovecot/run", BASE + "/dovecot/state"):
            os.makedirs(d, exist_ok=True)
        fill = dict(base=BASE, domain=DOMAIN, host=HOST, uid=self.uid, gid=self.gid, **self.ports)
        with open(self.conf + "/main.cf", "w") as f:
            f.write(PF_MAIN_CF.format(**fill))
        with open(self.conf + "/master.cf", "w") as f:
            f.write(PF_MASTER_CF.format(**fill))
        with open(self.conf + "/vmailbox", "w") as f:
            for a in ACCOUNTS:
                f.write("%s %s/%s/Maildir/\n" % (a, DOMAIN, a.split("@")[0]))
        with open(BASE + "/dovecot/dovecot.conf", "w") as f:
            f.write(DOVECOT_CONF.format(**fill))
        # The Maildirs exist before the first message, as tikimail's (mailpasswd add) do.
        os.makedirs(BASE + "/pfmail", exist_ok=True)
        for path in [BASE + "/pfmail", BASE + "/pfmail/" + DOMAIN] + [m.rsplit("/", 1)[0] for m in self.maildirs] + \
                self.maildirs + [m + "/" + s for m in self.maildirs for s in ("new", "cur", "tmp")]:
            os.makedirs(path, exist_ok=True)
            os.chown(path, self.uid, self.gid)
            os.chmod(path, 0o700)
        # Creates the queue's subfolders with Postfix's owners and modes.
        run(["postfix", "-c", self.conf, "set-permissions"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run(["postfix", "-c", self.conf, "check"])

    def set_passwords(self, hashes):
        """Dovecot verifies the very argon2id hashes tikimail stores: the same cost per login."""
        path = BASE + "/dovecot/passwd"
        with open(path, "w") as f:
            for a in ACCOUNTS:
                f.write("%s:{ARGON2ID}%s::::::\n" % (a, hashes[a]))
        # Dovecot's auth process reads it as the user dovecot.
        os.chown(path, 0, pwd.getpwnam("dovecot").pw_gid)
        os.chmod(path, 0o640)

    def start(self):
        run(["postfix", "-c", self.conf, "start"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=self.cpu.join)
        deadline = time.monotonic() + 10
        while True:
            self.master = read_pid(self.spool + "/pid/master.pid")
            if self.master and alive(self.master):
                break
            if time.monotonic() > deadline:
                raise BenchError("postfix master did not start (see %s/postfix/maillog)" % BASE)
            time.sleep(0.05)
        run(["dovecot", "-c", BASE + "/dovecot/dovecot.conf"], preexec_fn=self.cpu.join)
        deadline = time.monotonic() + 10
        while True:
            self.dovecot = read_pid(BASE + "/dovecot/run/master.pid")
            if self.dovecot and alive(self.dovecot):
                break
            if time.monotonic() > deadline:
                raise BenchError("dovecot did not start (see %s/dovecot/dovecot.log)" % BASE)
            time.sleep(0.05)
        wait_listening(list(self.ports.values()), self.name)

    def stop(self):
        # The pid files, read again: a start that failed half-way may not have recorded them.
        master = read_pid(self.spool + "/pid/master.pid")
        master = master if master and alive(master) and comm_of(master) == "master" else None
        dovecot = read_pid(BASE + "/dovecot/run/master.pid")
        dovecot = dovecot if dovecot and alive(dovecot) and comm_of(dovecot) == "dovecot" else None
        tree = descendants([p for p in (master, dovecot) if p])
        if master:
            subprocess.run(["postfix", "-c", self.conf, "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if dovecot:
            try:
                os.kill(dovecot, signal.SIGTERM)
            except OSError:
                pass
        kill_left(wait_gone(tree, 15), "postfix/dovecot")
        kill_left(wait_gone(self.cpu.procs(), 5), "postfix/dovecot (cgroup)")
        self.master = self.dovecot = None

    def roots(self):
        return [self.master, self.dovecot]

    def queue_empty(self):
        return all(files_under("%s/%s" % (self.spool, d)) == 0
                   for d in ("maildrop", "incoming", "active", "deferred", "hold"))

    def trace_pids(self):
        return descendants([self.master])


# --- workloads ------------------------------------------------------------------------------

def wait_queue_empty(system, seconds=300):
    deadline = time.monotonic() + seconds
    while not system.queue_empty():
        if time.monotonic() > deadline:
            raise BenchError("%s: queue not empty after %d s" % (system.name, seconds))
        time.sleep(0.1)


def start_sources(port, per, size, sessions, errlog):
    """`sessions` smtp-source processes, `per` messages each, recipients spread over ACCOUNTS."""
    return [subprocess.Popen(["smtp-source", "-s", "1", "-m", str(per), "-l", str(size), "-M", "client.test",
                              "-f", SENDER, "-t", ACCOUNTS[i % len(ACCOUNTS)], "%s:%d" % (HOST, port)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errlog)
            for i in range(sessions)]


def floor_burst(floor_bin, total, cpu):
    """The SMTP burst against tcpserver and bench/smtp_floor.c, which stores nothing: the cost of
    a process per connection on this machine. Returns (messages/s, CPU ms per message or None)."""
    server = subprocess.Popen(["tcpserver", "-R", "-H", "-l", "bench", "-c", "40", HOST, str(FLOOR_PORT), floor_bin],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=cpu.join)
    errlog = open(BASE + "/smtp-source.err", "ab")
    try:
        deadline = time.monotonic() + 10
        while port_free(FLOOR_PORT):
            if time.monotonic() > deadline or server.poll() is not None:
                raise BenchError("tcpserver for the floor did not start")
            time.sleep(0.05)
        per = total // 20
        used0 = cpu.usage()
        start = time.monotonic()
        procs = start_sources(FLOOR_PORT, per, 4096, 20, errlog)
        bad = [p.wait() for p in procs]
        elapsed = time.monotonic() - start
        if any(bad):
            raise BenchError("smtp-source against the floor failed (%s)" % bad)
        used = cpu.usage() - used0 if used0 is not None else None
        return per * 20 / elapsed, (None if used is None else used / (per * 20) * 1000)
    finally:
        errlog.close()
        server.terminate()
        server.wait()


def smtp_burst(system, total, size, sessions, port=None):
    """`sessions` smtp-source processes in parallel, one per account, one connection per message.
    Returns (accept_seconds, end_to_end_seconds, generator_cpu_seconds, system_cpu_seconds or None,
    messages)."""
    port = port or system.ports["smtp"]
    per = total // sessions
    errlog = open(BASE + "/smtp-source.err", "ab")
    cpu0, sys0 = children_cpu(), system.cpu.usage()
    start = time.monotonic()
    procs = start_sources(port, per, size, sessions, errlog)
    accepted = None
    expected = per * sessions
    deadline = start + 600
    try:
        while True:
            if accepted is None and all(p.poll() is not None for p in procs):
                accepted = time.monotonic() - start
                bad = [p.returncode for p in procs if p.returncode != 0]
                if bad:
                    raise BenchError("%s: smtp-source failed (%s; see %s/smtp-source.err)" % (system.name, bad, BASE))
            if accepted is not None and count_new(system.maildirs) >= expected:
                break
            if time.monotonic() > deadline:
                raise BenchError("%s: only %d of %d messages delivered after 600 s" % (
                    system.name, count_new(system.maildirs), expected))
            time.sleep(0.02 if accepted is None else 0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        errlog.close()
    e2e = time.monotonic() - start
    used = system.cpu.usage() - sys0 if sys0 is not None else None
    return accepted, e2e, children_cpu() - cpu0, used, expected


def pop3_drain(system, drain_bin, expected):
    """Returns (messages, bytes, seconds, generator_cpu_seconds, system_cpu_seconds or None)."""
    sys0 = system.cpu.usage()
    out = subprocess.run([drain_bin, HOST, str(system.ports["pop3"]), BASE + "/accounts"], capture_output=True,
                         text=True)
    deleted_now()  # the server removed every message
    used = system.cpu.usage() - sys0 if sys0 is not None else None
    fields = dict(kv.split("=", 1) for kv in out.stdout.split())
    if out.returncode != 0 or int(fields.get("messages", -1)) != expected:
        raise BenchError("%s: pop3_drain: %s %s" % (system.name, out.stdout.strip(), out.stderr.strip()[-500:]))
    if count_new(system.maildirs) or any(os.listdir(m + "/cur") for m in system.maildirs):
        raise BenchError("%s: mail left after the POP3 drain" % system.name)
    return int(fields["messages"]), int(fields["bytes"]), float(fields["seconds"]), float(fields["client_cpu"]), used


def read_reply(sock):
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise BenchError("connection closed")
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2:
            last = lines[-2]
            if last[:1] in (b"+", b"-") or (len(last) >= 4 and last[3:4] == b" "):
                return data


def session_pss(sock):
    """(PSS, private memory, process names) of the server processes holding the connection."""
    pids = connection_pids(sock)
    mem = [rollup_kib(p) for p in pids]
    return sum(m[0] for m in mem), sum(m[1] for m in mem), sorted(comm_of(p) for p in pids)


def memory(system, passwords):
    """PSS in KiB: the whole idle system (every process under the supervisor or master), and
    the server processes holding one idle SMTP connection (after EHLO), one POP3 connection
    before login and one after. Run right after start, before any other connection."""
    result = {}
    time.sleep(1)
    table = proc_table()
    pids = descendants(system.roots(), table)
    result["idle"] = (sum(pss_kib(p) for p in pids), sorted(table[p][1] for p in pids))

    s = socket.create_connection((HOST, system.ports["smtp"]), timeout=10)
    read_reply(s)
    s.sendall(b"EHLO client.test\r\n")
    read_reply(s)
    time.sleep(0.5)
    result["smtp"] = session_pss(s)
    s.sendall(b"QUIT\r\n")
    read_reply(s)
    s.close()

    # The same with 20 idle sessions open at once, per session: what one more session costs
    # a busy server, where the program text is shared among the sessions.
    socks = []
    try:
        for _ in range(20):
            c = socket.create_connection((HOST, system.ports["smtp"]), timeout=10)
            socks.append(c)
            read_reply(c)
            c.sendall(b"EHLO client.test\r\n")
            read_reply(c)
        time.sleep(0.5)
        pids = set()
        for c in socks:
            pids.update(connection_pids(c))
        mem = [rollup_kib(p, dirty=True) for p in pids]
        result["smtp20"] = (sum(m[0] for m in mem) / len(socks), sum(m[2] for m in mem) / len(socks))
    finally:
        for c in socks:
            try:
                c.sendall(b"QUIT\r\n")
                read_reply(c)
            except (OSError, BenchError):
                pass
            c.close()

    s = socket.create_connection((HOST, system.ports["pop3"]), timeout=10)
    read_reply(s)
    time.sleep(0.5)
    result["pop3_pre"] = session_pss(s)
    s.sendall(b"QUIT\r\n")
    read_reply(s)
    s.close()

    s = socket.create_connection((HOST, system.ports["pop3"]), timeout=10)
    read_reply(s)
    s.sendall(("USER %s\r\n" % ACCOUNTS[0]).encode())
    read_reply(s)
    s.sendall(("PASS %s\r\n" % passwords[ACCOUNTS[0]]).encode())
    if not read_reply(s).startswith(b"+OK"):
        raise BenchError("%s: POP3 login failed" % system.name)
    time.sleep(0.5)
    result["pop3_post"] = session_pss(s)
    s.sendall(b"QUIT\r\n")
    read_reply(s)
    s.close()
    return result


def _default_sigterm():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # the pool ends its workers with SIGTERM


def _tls_worker(args):
    port, count, greeting = args
    ctx = client_ctx()
    t0 = time.process_time()
    for _ in range(count):
        raw = socket.create_connection((HOST, port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = ctx.wrap_socket(raw)
        got = s.recv(200)
        if not got.startswith(greeting):
            raise RuntimeError("bad greeting %r" % got[:40])
        s.sendall(b"QUIT\r\n")
        s.close()
    return time.process_time() - t0


def tls_rate(port, greeting, total, workers):
    """Connections per second, each a TCP connect, TLS 1.3 full handshake, the greeting, QUIT."""
    with multiprocessing.Pool(workers, initializer=_default_sigterm) as pool:
        start = time.monotonic()
        cpu = pool.map(_tls_worker, [(port, total // workers, greeting)] * workers)
        elapsed = time.monotonic() - start
    return (total // workers) * workers / elapsed, sum(cpu) / elapsed


def strace_fsyncs(system, messages):
    """fsync-family calls of the SMTP and delivery processes (followed into every child) per message."""
    pids = [p for p in system.trace_pids() if p]
    out = BASE + "/strace-%s.txt" % system.name
    tracer = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-e", "trace=fsync,fdatasync,syncfs,sync,sync_file_range",
                               *sum([["-p", str(p)] for p in pids], [])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)   # strace attaches to every pid before the load starts
        settle()
        smtp_burst(system, messages, 4096, 20)
        wait_queue_empty(system)
        time.sleep(1)
    finally:
        tracer.send_signal(signal.SIGINT)
        try:
            tracer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()
    calls = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[-1] in ("fsync", "fdatasync", "syncfs", "sync", "sync_file_range"):
                calls[parts[-1]] = int(parts[3])
    empty_maildirs(system.maildirs)
    return sum(calls.values()) / messages, calls


# --- the run --------------------------------------------------------------------------------

# (key, label, unit, better, format)
METRICS = [
    ("accept", "SMTP accept: {n} x 4 KB, 20 sessions, 1 connection per message", "msg/s", "higher", "%.0f"),
    ("e2e", "SMTP end to end: first connection to last message in a Maildir", "msg/s", "higher", "%.0f"),
    ("e2e_cpu", "CPU of the mail system per message, SMTP end to end", "ms", "lower", "%.2f"),
    ("large", "large: {large} x 10 MB end to end, 10 sessions", "MB/s", "higher", "%.1f"),
    ("large_cpu", "CPU of the mail system per MB, large", "ms", "lower", "%.2f"),
    ("pop3_msgs", "POP3: 20 clients log in, RETR + DELE everything", "msg/s", "higher", "%.0f"),
    ("pop3_mb", "POP3: the same in bytes", "MB/s", "higher", "%.1f"),
    ("pop3_cpu", "CPU of the mail system per message, POP3", "ms", "lower", "%.2f"),
    ("mem_idle", "PSS of the whole idle system, after start", "KiB", "lower", "%.0f"),
    ("mem_smtp", "PSS of one idle SMTP session (after EHLO)", "KiB", "lower", "%.0f"),
    ("mem_smtp20", "PSS per idle SMTP session, 20 sessions open", "KiB", "lower", "%.0f"),
    ("dirty_smtp20", "written (Private_Dirty) memory per idle SMTP session, 20 open", "KiB", "lower", "%.0f"),
    ("mem_pop3_pre", "PSS of one POP3 session before login", "KiB", "lower", "%.0f"),
    ("mem_pop3_post", "PSS of one POP3 session after login", "KiB", "lower", "%.0f"),
    ("uss_smtp", "private memory of one idle SMTP session", "KiB", "lower", "%.0f"),
    ("uss_pop3_post", "private memory of one POP3 session after login", "KiB", "lower", "%.0f"),
    ("tls_smtps", "TLS handshakes/s on SMTPS (465), 4 clients", "conn/s", "higher", "%.0f"),
    ("tls_pop3s", "TLS handshakes/s on POP3S (995), 4 clients", "conn/s", "higher", "%.0f"),
    ("tls_cpu", "CPU of the mail system per SMTPS connection", "ms", "lower", "%.2f"),
    ("fsync_per_msg", "fsync calls per accepted message (strace, {fs} messages)", "calls", "-", "%.2f"),
    ("floor", "floor: the SMTP burst against tcpserver and a static do-nothing responder", "msg/s", "-", "%.0f"),
    ("floor_cpu", "floor: its CPU per message (tcpserver and the responder)", "ms", "-", "%.2f"),
    ("fsync_ceiling", "fsync ceiling: 4 KB file, fsync, rename, fsync dir; 1 process", "ops/s", "-", "%.0f"),
    ("fsync_ceiling20", "fsync ceiling: the same loop in 20 processes at once, in all", "ops/s", "-", "%.0f"),
    ("e2e_of_ceiling", "end-to-end rate / 1-process fsync ceiling", "%", "higher", "%.1f"),
    ("e2e_of_ceiling20", "end-to-end rate / 20-process fsync ceiling", "%", "higher", "%.1f"),
    ("fsync_rate_share", "fsyncs/s during end to end / fsyncs/s of the 1-process loop", "%", "-", "%.0f"),
    ("gen_smtp", "generator check: smtp-source CPU / wall time, accept", "cores", "-", "%.2f"),
    ("gen_pop3", "generator check: pop3_drain CPU / wall time", "cores", "-", "%.2f"),
    ("gen_tls", "generator check: TLS client CPU / wall time, SMTPS", "cores", "-", "%.2f"),
]


# Rows measured once per round for the machine, shown in both columns, with no ratio.
MACHINE_KEYS = ("floor", "floor_cpu", "fsync_ceiling", "fsync_ceiling20")


def fsync_ceiling(loop_bin):
    """The loop of bench/fsync_loop.c for 3 s beside the queues, after a sync (so that earlier
    workloads' writeback does not slow it): once in one process, then in 20 processes at once
    (as many as the SMTP sessions; the filesystem's journal commits their fsyncs together).
    Returns (commits/s of one process, its fsyncs/s, commits/s of the 20 together)."""
    settle()
    time.sleep(0.5)
    os.makedirs(BASE + "/fsync", exist_ok=True)
    path = tempfile.mkdtemp(prefix="round", dir=BASE + "/fsync")  # kept until the end (fsync_loop.c)
    out = subprocess.run([loop_bin, path, "3"], capture_output=True, text=True, check=True).stdout
    fields = dict(kv.split("=", 1) for kv in out.split())
    procs = []
    for i in range(20):
        os.makedirs("%s/p%d" % (path, i), exist_ok=True)
        procs.append(subprocess.Popen([loop_bin, "%s/p%d" % (path, i), "3"], stdout=subprocess.PIPE, text=True))
    parallel = 0.0
    for p in procs:
        text = p.communicate()[0]
        parallel += float(dict(kv.split("=", 1) for kv in text.split())["ops_per_s"])
    return float(fields["ops_per_s"]), float(fields["fsync_per_s"]), parallel


def one_round(system, cfg, passwords, drain_bin, results, ceiling):
    def put(key, value):
        if value is not None:
            results[system.name].setdefault(key, []).append(value)

    def per(used, count, scale=1000.0):
        return None if used is None else used / count * scale

    log("%s: start" % system.name)
    try:
        system.start()
        mem = memory(system, passwords)
        put("mem_idle", mem["idle"][0])
        put("mem_smtp", mem["smtp"][0])
        put("mem_smtp20", mem["smtp20"][0])
        put("dirty_smtp20", mem["smtp20"][1])
        put("mem_pop3_pre", mem["pop3_pre"][0])
        put("mem_pop3_post", mem["pop3_post"][0])
        put("uss_smtp", mem["smtp"][1])
        put("uss_pop3_post", mem["pop3_post"][1])
        log("%s: memory (PSS KiB, processes): %s" % (system.name, mem))

        settle()
        accept, e2e, gen_cpu, used, n = smtp_burst(system, cfg.messages, 4096, 20)
        put("accept", n / accept)
        put("e2e", n / e2e)
        put("e2e_cpu", per(used, n))
        put("gen_smtp", gen_cpu / accept)
        put("e2e_of_ceiling", 100 * n / e2e / ceiling[0])
        put("e2e_of_ceiling20", 100 * n / e2e / ceiling[2])
        log("%s: %d messages: accepted after %.2f s, all in Maildirs after %.2f s, system CPU %s s" % (
            system.name, n, accept, e2e, "-" if used is None else "%.2f" % used))
        wait_queue_empty(system)

        msgs, nbytes, secs, cpu, used = pop3_drain(system, drain_bin, n)
        put("pop3_msgs", msgs / secs)
        put("pop3_mb", nbytes / 1e6 / secs)
        put("pop3_cpu", per(used, msgs))
        put("gen_pop3", cpu / secs)
        log("%s: POP3 drained %d messages (%.1f MB) in %.2f s" % (system.name, msgs, nbytes / 1e6, secs))

        # No settle: 50 creates after the drain's deletions cost milliseconds, not seconds.
        _, e2e, _, used, n = smtp_burst(system, cfg.large, 10 * 1000 * 1000, 10)
        put("large", n * 10.0 / e2e)
        put("large_cpu", per(used, n * 10.0))
        log("%s: %d x 10 MB in Maildirs after %.2f s" % (system.name, n, e2e))
        wait_queue_empty(system)
        empty_maildirs(system.maildirs)

        sys0 = system.cpu.usage()
        rate, cpu = tls_rate(system.ports["smtps"], b"220", cfg.tls, 4)
        if sys0 is not None:
            put("tls_cpu", (system.cpu.usage() - sys0) / cfg.tls * 1000)
        put("tls_smtps", rate)
        put("gen_tls", cpu)
        rate, cpu = tls_rate(system.ports["pop3s"], b"+OK", cfg.tls, 4)
        put("tls_pop3s", rate)
        log("%s: TLS smtps %.0f/s, pop3s %.0f/s" % (system.name, results[system.name]["tls_smtps"][-1], rate))
    finally:
        log("%s: stop" % system.name)
        system.stop()


def fmt_stats(values, form):
    if not values:
        return "-"
    lo, med, hi = min(values), statistics.median(values), max(values)
    if len(values) == 1:
        return form % med
    return "%s / **%s** / %s" % (form % lo, form % med, form % hi)


def machine_lines():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    src = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "-T", BASE], capture_output=True, text=True).stdout.split()
    disk = "?"
    if src:
        dev = os.path.basename(src[0])
        rot = "/sys/class/block/%s/queue/rotational" % dev
        kind = "?"
        if os.path.exists(rot):
            kind = "rotational" if open(rot).read().strip() == "1" else "non-rotational"
        size = subprocess.run(["lsblk", "-dno", "SIZE", src[0]], capture_output=True, text=True).stdout.strip()
        disk = "%s (%s, %s, %s)" % (src[0], src[1] if len(src) > 1 else "?", size or "?", kind)
    versions = []
    for argv in (["postconf", "-dh", "mail_version"], ["dovecot", "--version"]):
        v = subprocess.run(argv, capture_output=True, text=True).stdout.strip().split()
        versions.append(v[0] if v else "?")
    return cpu, mem_kib, disk, versions


def report(cfg, results, argv, started):
    cpu, mem_kib, disk, (pf_ver, dv_ver) = machine_lines()
    lines = [
        "### Run of %s" % started.strftime("%Y-%m-%d %H:%M"),
        "",
        "- command: `%s`" % argv,
        "- machine: %s, %d cores (%s), %.1f GiB RAM, kernel %s; disk %s" % (
            platform.node(), os.cpu_count() or 0, cpu, mem_kib / 1048576, platform.release(), disk),
        "- compared with Postfix %s and Dovecot %s (private instances, default fsync behaviour)" % (pf_ver, dv_ver),
        "- %d round(s), systems alternating; SMTP: %d messages of 4096 body bytes; large: %d x 10 MB; TLS: %d "
        "connections per port" % (cfg.rounds, cfg.messages, cfg.large, cfg.tls),
    ]
    if cfg.note:
        lines.append("- note: %s" % cfg.note)
    lines += [
        "",
        "| metric | unit | better | tikimail min / **median** / max | Postfix+Dovecot min / **median** / max "
        "| tikimail / Postfix+Dovecot |",
        "|---|---|---|---|---|---|",
    ]
    for key, label, unit, better, form in METRICS:
        t = results[TIKI].get(key, [])
        p = results[PFD].get(key, [])
        if not t and not p:
            continue
        ratio = "-"
        if t and p and statistics.median(p) and key not in MACHINE_KEYS:
            ratio = "%.2f" % (statistics.median(t) / statistics.median(p))
        label = label.format(n=cfg.messages, large=cfg.large, fs=cfg.fsync_messages)
        lines.append("| %s | %s | %s | %s | %s | %s |" % (label, unit, better, fmt_stats(t, form), fmt_stats(p, form),
                                                       ratio))
    return "\n".join(lines) + "\n"


def update_readme(text):
    path = os.path.join(HERE, "README.md")
    with open(path) as f:
        readme = f.read()
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        log("bench/README.md has no results markers: not updated")
        return
    readme = readme[:begin + len(README_BEGIN)] + "\n" + text + readme[end:]
    with open(path + ".tmp", "w") as f:
        f.write(readme)
    os.replace(path + ".tmp", path)
    log("bench/README.md: results section replaced")


def reset_base():
    if os.path.realpath(BASE) != "/tmp/tikimail-makebench":
        raise BenchError("unexpected bench folder %s" % BASE)
    # A previous run that died hard may have left its processes: stop them by their pid files.
    old = read_pid(BASE + "/tiki/runsvdir.pid")
    if old and alive(old) and comm_of(old) == "runsvdir":
        tree = descendants([old])
        os.kill(old, signal.SIGHUP)
        kill_left(wait_gone(tree, 10), "leftover tikimail")
    if os.path.exists(BASE + "/postfix/etc/main.cf"):
        subprocess.run(["postfix", "-c", BASE + "/postfix/etc", "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    old = read_pid(BASE + "/dovecot/run/master.pid")
    if old and alive(old) and comm_of(old) == "dovecot":
        os.kill(old, signal.SIGTERM)
        wait_gone([old], 10)
    if os.path.lexists(BASE):
        shutil.rmtree(BASE)
        deleted_now()
    os.makedirs(BASE)
    os.chmod(BASE, 0o755)


def main():
    ap = argparse.ArgumentParser(description="tikimail against Postfix+Dovecot (bench/README.md)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/bin"), help="built tikimail programs")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="500 messages, 10 large, 1 round")
    ap.add_argument("--note", default="", help="a line for the report (e.g. the machine was shared)")
    ap.add_argument("--no-readme", action="store_true", help="do not replace the table in bench/README.md")
    ap.add_argument("--readme-only", action="store_true",
                    help="only copy bench/out/results.md (the last run's table) into bench/README.md")
    cfg = ap.parse_args()
    if cfg.readme_only:
        with open(OUT + "/results.md") as f:
            update_readme(f.read())
        return
    cfg.messages = 500 if cfg.quick else 5000
    cfg.large = 10 if cfg.quick else 50
    cfg.tls = 100 if cfg.quick else 300
    cfg.fsync_messages = 100 if cfg.quick else 500
    if cfg.rounds is None:
        cfg.rounds = 1 if cfg.quick else 3
    argv = "make bench" + (" QUICK=1" if cfg.quick else "") + (
        " ROUNDS=%d" % cfg.rounds if cfg.rounds != (1 if cfg.quick else 3) else "")

    if os.geteuid() != 0:
        sys.exit("bench: run as root (system users, set-uid programs, Postfix and Dovecot)")
    src_bin = os.path.abspath(cfg.bin)
    for tool in ("smtp-source", "postfix", "dovecot", "strace", "runsvdir", "tcpserver", "cc"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s missing (sh scripts/deps.sh bench)" % tool)
    busy = [p for p in list(TIKI_PORTS.values()) + list(PF_PORTS.values()) + [FLOOR_PORT] if not port_free(p)]
    if busy:
        sys.exit("bench: ports in use: %s (another make bench?)" % " ".join(map(str, busy)))

    started = datetime.datetime.now()
    os.makedirs(OUT, exist_ok=True)
    drain_bin, loop_bin, floor_bin = OUT + "/pop3_drain", OUT + "/fsync_loop", OUT + "/smtp_floor"
    run(["cc", "-O2", "-Wall", "-o", drain_bin, HERE + "/pop3_drain.c"])
    run(["cc", "-O2", "-Wall", "-o", loop_bin, HERE + "/fsync_loop.c"])
    run(["cc", "-O2", "-Wall", "-static", "-o", floor_bin, HERE + "/smtp_floor.c"])

    reset_base()
    log("setting up in %s" % BASE)
    tls = BASE + "/tls"
    os.makedirs(tls)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mx." + DOMAIN,
         "-keyout", tls + "/key.pem", "-out", tls + "/cert.pem"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(tls, 0o700)
    passwords = {a: secrets.token_hex(8) for a in ACCOUNTS}
    with open(BASE + "/accounts", "w") as f:
        os.fchmod(f.fileno(), 0o600)
        for a in ACCOUNTS:
            f.write("%s %s\n" % (a, passwords[a]))
    systems = []
    results = {TIKI: {}, PFD: {}}

    def stop_all(*_):
        for s in systems:
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                log("warning: stopping %s: %s" % (s.name, e))

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    ceilings, floors = [], []
    floor_cpu = CpuGroup("floor")
    try:
        systems.append(Tikimail(src_bin, tls))
        hashes = systems[0].add_accounts(passwords)
        systems.append(PostfixDovecot())
        systems[1].set_passwords(hashes)
        for r in range(cfg.rounds):
            ceiling = fsync_ceiling(loop_bin)
            ceilings.append(ceiling)
            floors.append(floor_burst(floor_bin, cfg.messages, floor_cpu))
            log("round %d of %d: floor %.0f msg/s" % (r + 1, cfg.rounds, floors[-1][0]))
            log("round %d of %d: fsync ceiling %.0f commits/s in 1 process, %.0f in 20" % (
                r + 1, cfg.rounds, ceiling[0], ceiling[2]))
            for system in (systems if r % 2 == 0 else systems[::-1]):
                log("round %d of %d: %s" % (r + 1, cfg.rounds, system.name))
                one_round(system, cfg, passwords, drain_bin, results, ceiling)
        for system in systems:
            log("%s: fsync count over %d messages (strace)" % (system.name, cfg.fsync_messages))
            system.start()
            try:
                per, calls = strace_fsyncs(system, cfg.fsync_messages)
            finally:
                system.stop()
            results[system.name]["fsync_per_msg"] = [per]
            log("%s: %.2f fsync-family calls per message %s" % (system.name, per, calls))
        fsync_rate = statistics.median(c[1] for c in ceilings)
        for system in systems:
            res = results[system.name]
            res["floor"] = [f[0] for f in floors]
            res["floor_cpu"] = [f[1] for f in floors if f[1] is not None]
            res["fsync_ceiling"] = [c[0] for c in ceilings]
            res["fsync_ceiling20"] = [c[2] for c in ceilings]
            res["fsync_rate_share"] = [100 * statistics.median(res["e2e"]) * res["fsync_per_msg"][0] / fsync_rate]
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
        for system in systems:
            system.cpu.remove()
        floor_cpu.remove()
        for kept in (BASE + "/fsync", TRASH):  # the fsync loops' files (some hundred MB), emptied Maildirs
            if os.path.isdir(kept):
                shutil.rmtree(kept, ignore_errors=True)  # an interrupted fsync loop may still write

    text = report(cfg, results, argv, started)
    with open(OUT + "/results.md", "w") as f:
        f.write(text)
    sys.stdout.write("\n" + text)
    if not cfg.no_readme:
        update_readme(text)


if __name__ == "__main__":
    try:
        main()
    except (BenchError, subprocess.CalledProcessError) as e:
        sys.exit("bench: %s" % e)
