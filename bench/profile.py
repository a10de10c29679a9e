#!/usr/bin/env python3
"""bench/profile.py: where tikimail's CPU goes on the SMTP path (bench/README.md, "Profiling").

Not part of `make bench`. Sets up the same tikimail installation as bench/run.py (in
/tmp/tikimail-makebench, rebuilt), sends one SMTP burst while `perf record -a -g` samples the
whole machine, stops everything, and prints perf's report by program and by program and
library. The perf data stays in bench/out/perf.data for `perf report -i`.

    python3 bench/profile.py [--bin build/bin] [--messages 3000] [--port smtp|smtps]
"""
import argparse
import os
import secrets
import signal
import subprocess
import sys
import time

import run as bench


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(bench.ROOT, "build/bin"))
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--port", default="smtp", choices=["smtp", "submission"])
    ap.add_argument("--no-perf", action="store_true", help="only the rate and the CPU per message")
    ap.add_argument("--no-pool", action="store_true",
                    help="remove queue/pool/ after installing: every entry a new file (queue/README.md)")
    cfg = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("profile: run as root")
    os.makedirs(bench.OUT, exist_ok=True)
    bench.reset_base()
    tls = bench.BASE + "/tls"
    os.makedirs(tls)
    bench.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
               "/CN=mx." + bench.DOMAIN, "-keyout", tls + "/key.pem", "-out", tls + "/cert.pem"],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    passwords = {a: secrets.token_hex(8) for a in bench.ACCOUNTS}
    system = bench.Tikimail(os.path.abspath(cfg.bin), tls)
    perf = None
    try:
        system.add_accounts(passwords)
        if cfg.no_pool:
            os.rmdir(system.prefix + "/queue/pool")
        system.start()
        bench.settle()  # the rebuilt folder's deletions age first (bench/README.md, "Deletions")
        data = bench.OUT + "/perf.data"
        if not cfg.no_perf:
            perf = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-F", "999", "-o", data],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        accept, e2e, gen_cpu, used, n = bench.smtp_burst(system, cfg.messages, 4096, 20,
                                                         port=system.ports[cfg.port])
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
            perf = None
        print("%d messages: accept %.0f msg/s, end to end %.0f msg/s, %.2f ms CPU per message, "
              "generators %.2f cores" % (n, n / accept, n / e2e, 1000 * used / n if used else -1, gen_cpu / accept))
    finally:
        if perf:
            perf.kill()
            perf.wait()
        system.stop()
        system.cpu.remove()
    if not cfg.no_perf:
        for keys in ("comm", "comm,dso"):
            out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", keys, "--stdio",
                                  "-g", "none", "--percent-limit", "0.7"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
            print("\n".join(l for l in out.splitlines() if l and not l.startswith("#")))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
