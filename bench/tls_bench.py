#!/usr/bin/env python3
"""bench/tls_bench.py: tlsd's handshakes per second and memory per idle TLS connection.

A benchmark, not a test: it asserts nothing and its numbers depend on the machine. It builds a
throwaway prefix with a self-signed certificate, runs
    tcpserver -R -H -l 0 -c LIMIT 127.0.0.1 PORT tlsd -i [-u 65534 -g 65534] -- /bin/cat
(and the same without tlsd as a plaintext baseline), then measures:
  - connections per second, each a TCP connect, full handshake, one echoed line and close,
    N in a row and N spread over M threads;
  - RSS and PSS of the tlsd processes (/proc/<pid>/smaps_rollup) with K idle TLS
    connections open, divided by K.
It prints a table and writes it to bench/out/tls.txt. About 20 seconds on 2 cores.

    python3 bench/tls_bench.py [--tlsd build/bin/tlsd] [-n 300] [-m 4] [-k 100] [--key rsa|ec]
"""
import argparse
import datetime
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from run import proc_table  # bench/run.py: the one reader of /proc/<pid>/stat

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(tls_dir, kind):
    os.makedirs(tls_dir)
    key = ["-newkey", "rsa:2048"] if kind == "rsa" else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    subprocess.run(["openssl", "req", "-x509", *key, "-nodes", "-days", "2", "-subj", "/CN=mx.test",
                    "-keyout", os.path.join(tls_dir, "key.pem"), "-out", os.path.join(tls_dir, "cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_listening(port, proc):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit("tcpserver exited: %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit("tcpserver did not start listening")


class Server:
    def __init__(self, prefix, argv, limit):
        self.port = free_port()
        env = dict(os.environ, TIKIMAIL_HOME=prefix)
        self.log = open(os.path.join(prefix, "server.log"), "ab")
        self.proc = subprocess.Popen(["tcpserver", "-R", "-H", "-l", "0", "-c", str(limit), "127.0.0.1",
                                      str(self.port), *argv], env=env, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        wait_listening(self.port, self.proc)
        time.sleep(0.2)  # let the probe connection's children finish

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)  # only tcpserver; its children end with their clients
        self.proc.wait()
        self.log.close()


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def one_connection(port, ctx):
    """Connect, handshake (when ctx), echo one line through /bin/cat, close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    # Without it the client's Nagle holds its line until the server's delayed ACK of the
    # client Finished (about 40 ms): that would measure the kernel's timer, not tlsd.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ctx is not None:
        s = ctx.wrap_socket(s, server_hostname="mx.test")
    s.sendall(b"ping\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(64)
        if not chunk:
            raise RuntimeError("connection closed early")
        got += chunk
    s.close()


def rate(port, ctx, total, threads):
    per = total // threads
    errors = []

    def worker():
        try:
            for _ in range(per):
                one_connection(port, ctx)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    start = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - start
    if errors:
        sys.exit("connection failed: %r" % errors[0])
    return per * threads / elapsed


def children_named(parent, name):
    return [pid for pid, (ppid, comm, _) in proc_table().items() if ppid == parent and comm == name]


def rollup(pid):
    fields = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    return fields


def idle_memory(server, ctx, k):
    conns = []
    for _ in range(k):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10), server_hostname="mx.test")
        s.sendall(b"ping\n")
        s.recv(64)
        conns.append(s)
    time.sleep(0.5)
    pids = children_named(server.proc.pid, "tlsd")
    totals = {"Rss": 0, "Pss": 0, "Private": 0}
    for pid in pids:
        r = rollup(pid)
        totals["Rss"] += r.get("Rss", 0)
        totals["Pss"] += r.get("Pss", 0)
        totals["Private"] += r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)
    for s in conns:
        s.close()
    n = max(len(pids), 1)
    return len(pids), {key: value / n for key, value in totals.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tlsd", default=os.path.join(ROOT, "build/bin/tlsd"))
    ap.add_argument("-n", type=int, default=300, help="connections per rate measurement")
    ap.add_argument("-m", type=int, default=4, help="parallel client threads")
    ap.add_argument("-k", type=int, default=100, help="idle TLS connections for the memory figure")
    ap.add_argument("--key", choices=["rsa", "ec"], default="rsa", help="rsa = RSA 2048, ec = P-256")
    ap.add_argument("--out", default=os.path.join(HERE, "out/tls.txt"))
    args = ap.parse_args()
    tlsd = os.path.abspath(args.tlsd)
    if not os.access(tlsd, os.X_OK):
        sys.exit("no tlsd at %s (make, or --tlsd PATH)" % tlsd)
    for tool in ("tcpserver", "openssl"):
        if shutil.which(tool) is None:
            sys.exit("%s is needed (scripts/deps.sh)" % tool)

    prefix = tempfile.mkdtemp(prefix="tikimail-bench-")
    make_cert(os.path.join(prefix, "control/tls"), args.key)
    ids = ["-u", "65534", "-g", "65534"] if os.geteuid() == 0 else []
    limit = args.k + args.m + 10
    ctx = client_context()
    rows = []

    plain = Server(prefix, ["/bin/cat"], limit)
    try:
        rows.append(("plain TCP + /bin/cat, sequential", "%.0f conn/s" % rate(plain.port, None, args.n, 1)))
        rows.append(("plain TCP + /bin/cat, %d threads" % args.m, "%.0f conn/s" % rate(plain.port, None, args.n, args.m)))
    finally:
        plain.stop()

    tls = Server(prefix, [tlsd, "-i", *ids, "--", "/bin/cat"], limit)
    try:
        seq = rate(tls.port, ctx, args.n, 1)
        par = rate(tls.port, ctx, args.n, args.m)
        count, mem = idle_memory(tls, ctx, args.k)
    finally:
        tls.stop()
    shutil.rmtree(prefix, ignore_errors=True)

    rows.append(("tlsd -i + /bin/cat, sequential", "%.0f handshakes/s" % seq))
    rows.append(("tlsd -i + /bin/cat, %d threads" % args.m, "%.0f handshakes/s" % par))
    rows.append(("idle TLS connections measured", "%d tlsd processes" % count))
    rows.append(("RSS per idle tlsd", "%.0f KiB" % mem["Rss"]))
    rows.append(("PSS per idle tlsd", "%.0f KiB" % mem["Pss"]))
    rows.append(("private (clean+dirty) per idle tlsd", "%.0f KiB" % mem["Private"]))

    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    header = [
        "tikimail TLS benchmark, %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "host: %s, %d CPUs (%s), kernel %s, %s" % (platform.node(), os.cpu_count() or 0, cpu, platform.release(), version),
        "key: %s; client: Python %s ssl, TLS 1.3, one echoed line per connection; n=%d m=%d k=%d" % (
            "RSA 2048" if args.key == "rsa" else "EC P-256", platform.python_version(), args.n, args.m, args.k),
        "command: python3 bench/tls_bench.py %s" % " ".join(sys.argv[1:]),
        "",
    ]
    width = max(len(r[0]) for r in rows)
    text = "\n".join(header + ["%-*s  %s" % (width, name, value) for name, value in rows]) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
