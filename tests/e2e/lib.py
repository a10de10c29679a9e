"""tests/e2e/lib.py: a real tikimail installation in a temporary prefix for end-to-end tests.

An Installation is laid out by scripts/install.sh (the same service templates as production
and `make run`), supervised by its own runsvdir, and stopped by PID. Clients talk to it over
loopback; 127.0.0.1 is a relay client (tcprules), 127.0.0.2 plays an outside client.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("TIKIMAIL_BIN") or REPO / "build" / "bin")  # TIKIMAIL_BIN: another build
OUTSIDE_IP = "127.0.0.2"
RELAY_IP = "127.0.0.1"
IS_ROOT = os.geteuid() == 0


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(cert, key, cn="localhost", names=("DNS:localhost", "IP:127.0.0.1"), days=30):
    """Writes a self-signed certificate and its key (mode 0600) with openssl, key first, each
    through a temporary name, so that tlsd (which re-reads them per connection) never sees half."""
    cert, key = Path(cert), Path(key)
    tmp_cert, tmp_key = cert.with_name(cert.name + ".tmp"), key.with_name(key.name + ".tmp")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
                    "-subj", f"/CN={cn}", "-addext", "subjectAltName=" + ",".join(names),
                    "-keyout", str(tmp_key), "-out", str(tmp_cert)],
                   check=True, capture_output=True)
    os.chmod(tmp_key, 0o600)
    os.chmod(tmp_cert, 0o644)
    os.replace(tmp_key, key)
    os.replace(tmp_cert, cert)
    return cert


def make_ca_issued_certificate(cert, key, ca, cn="localhost", names=("DNS:localhost", "IP:127.0.0.1"), days=30):
    """Writes a throwaway CA's certificate to `ca`, and to `cert` a certificate for `cn` and
    `names` that this CA signed (SHA-256) followed by the CA's own, the chain a public CA hands
    out, with its key (mode 0600) to `key`. A self-signed certificate is not enough to test
    with: OpenSSL checks the strength of a CA's signature, never of a self-signature."""
    cert, key = Path(cert), Path(key)
    work = Path(tempfile.mkdtemp(prefix="tikimail-ca-"))
    try:
        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-subj", "/CN=tikimail test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout", str(work / "ca.key"), "-out", str(work / "ca.pem"))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", str(work / "leaf.key"),
                "-out", str(work / "leaf.csr"))
        (work / "ext").write_text("subjectAltName=" + ",".join(names) + "\nbasicConstraints=CA:FALSE\n"
                                  "extendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", str(work / "leaf.csr"), "-CA", str(work / "ca.pem"), "-CAkey",
                str(work / "ca.key"), "-set_serial", "2", "-days", str(days), "-sha256", "-extfile", str(work / "ext"),
                "-out", str(work / "leaf.pem"))
        ca_pem = (work / "ca.pem").read_text()
        (work / "chain.pem").write_text((work / "leaf.pem").read_text() + ca_pem)
        os.chmod(work / "leaf.key", 0o600)
        os.chmod(work / "chain.pem", 0o644)
        shutil.move(str(work / "leaf.key"), str(key))   # key first: tlsd reads the pair per connection
        shutil.move(str(work / "chain.pem"), str(cert))
        Path(ca).write_text(ca_pem)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cert


def stop_process(proc, grace=5):
    """Ends a process a test started (SIGTERM, then SIGKILL after `grace` seconds) and reaps it.
    None is nothing to stop."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parse_queue_entry(data):
    """(message, envelope) of a queue entry file, queue/todo/<id> (queue/README.md "Layout"):
    the message, the envelope, then `\\nTQ1` and the message length in 16 lowercase hex digits.
    Raises AssertionError when the trailer is not valid."""
    assert len(data) >= 20 and data[-20:-16] == b"\nTQ1", f"no trailer: {data[-20:]!r}"
    digits = data[-16:]
    assert re.fullmatch(rb"[0-9a-f]{16}", digits), f"bad trailer digits: {digits!r}"
    length = int(digits, 16)
    assert length + 20 <= len(data), f"message length {length} in a file of {len(data)} bytes"
    return data[:length], data[length:-20]


def process_table():
    """{pid: (comm, ppid, state)} of every process now, from /proc/PID/stat."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        head, tail = stat.rsplit(")", 1)  # the name may hold spaces and parentheses
        fields = tail.split()
        table[int(entry)] = (head.split("(", 1)[1], int(fields[1]), fields[0])
    return table


def rss_kib(pid):
    """VmRSS of a process in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pipeline_without_reading(sock, pid, first, chunk, seconds=4.0, pause=0.001):
    """A client that pipelines and never reads: `first`, then `chunk` again and again for up to
    `seconds` (each chunk ends inside a command, so the server always has input pending), until
    the server stops taking input (our send blocks). Returns the peak VmRSS of `pid` in KiB."""
    sock.settimeout(0.5)
    peak = rss_kib(pid)
    end = time.monotonic() + seconds
    try:
        sock.sendall(first)
        while time.monotonic() < end:
            sock.sendall(chunk)
            peak = max(peak, rss_kib(pid))
            time.sleep(pause)
    except (socket.timeout, BlockingIOError):
        pass  # the server waits for us to read: it holds no more replies
    except OSError:
        pass  # the server gave up on us
    return max(peak, rss_kib(pid))


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Polls predicate() until it is true; raises AssertionError after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Installation:
    """A prefix under /tmp with its own runsvdir. Use as a context manager or call
    setup()/teardown() from setUpClass/tearDownClass."""

    def __init__(self, domains=("example.test",), accounts=("alice@example.test", "bob@example.test"),
                 control=None, start_services=True):
        self.port = free_port()             # SMTP, the MX port (STARTTLS on request)
        self.submission_port = free_port()  # STARTTLS, then AUTH
        self.smtps_port = free_port()       # implicit TLS
        self.pop3_port = free_port()        # POP3 (STLS on request)
        self.pop3s_port = free_port()       # implicit TLS
        self.cert = None                    # control/tls/cert.pem once set up: the CA file clients trust
        self.domains = domains
        self.accounts = {a: f"pw-{a.split('@')[0]}-{os.getpid()}" for a in accounts}
        self.control = dict(control or {})
        self.start_services = start_services
        self.prefix = None
        self.runsvdir = None

    # -- lifecycle --------------------------------------------------------------

    def install(self):
        """Runs scripts/install.sh on the prefix (again, for a test of a second run)."""
        env = dict(os.environ, LISTEN_IP="127.0.0.1", PORT_SMTP=str(self.port), PORT_POP3=str(self.pop3_port),
                   PORT_SUBMISSION=str(self.submission_port), PORT_SMTPS=str(self.smtps_port),
                   PORT_POP3S=str(self.pop3s_port), SRC_BIN=str(BIN))
        # stderr is kept for a failure only: the note that no certificate exists yet is expected.
        installed = subprocess.run(["sh", str(REPO / "scripts" / "install.sh"), str(self.prefix)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if installed.returncode != 0:
            raise RuntimeError(f"install.sh failed ({installed.returncode}): {installed.stderr}")

    def setup(self):
        self.prefix = Path(tempfile.mkdtemp(prefix="tikimail-e2e-"))
        os.chmod(self.prefix, 0o755)  # the service users must be able to enter it
        self.install()
        # The administrator's step (INSTALL): a certificate for localhost and 127.0.0.1.
        tls = self.prefix / "control" / "tls"
        self.cert = make_certificate(tls / "cert.pem", tls / "key.pem")
        self.write_control("me", "mx.example.test")
        self.write_control("rcpthosts", "\n".join(self.domains))
        self.write_control("postmaster", next(iter(self.accounts), "postmaster@example.test"))
        for name, value in self.control.items():
            self.write_control(name, value)
        for address, password in self.accounts.items():
            self.mailpasswd("add", address, stdin=password + "\n")
        if self.start_services:
            try:
                self.start()
            except BaseException:
                self.teardown()  # a half-started installation must not outlive the test
                raise
        return self

    def teardown(self):
        self.stop()
        if self.prefix and os.environ.get("TIKIMAIL_KEEP") is None:
            shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self):
        return self.setup()

    def __exit__(self, *exc):
        self.teardown()

    def start(self):
        """Starts runsvdir on the prefix's service/ and waits for every port, deliver and the queue server."""
        self.runsvdir = subprocess.Popen(["runsvdir", "-P", str(self.prefix / "service")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        wait_until(self._port_open, timeout=15, what=f"smtpd on port {self.port}")
        wait_until(lambda: self._answers(self.submission_port, b"220"), timeout=15,
                   what=f"submission on {self.submission_port}")
        wait_until(lambda: self._answers(self.pop3_port, b"+OK"), timeout=15, what=f"pop3d on {self.pop3_port}")
        for name, port in (("smtps", self.smtps_port), ("pop3s", self.pop3s_port)):
            # TLS first: a TCP connect is enough (tcpserver accepts only when the service runs).
            wait_until(lambda: self._connects(port), timeout=15, what=f"{name} on {port}")
        wait_until(lambda: self.service_pid("deliver"), timeout=15, what="deliver running")
        # smtpd hands messages to the queue server: its socket is there once it listens.
        wait_until(lambda: (self.prefix / "socket" / "queue").is_socket(), timeout=15, what="the queue server")

    def stop(self):
        if self.runsvdir is None:
            return
        self.runsvdir.send_signal(signal.SIGHUP)  # runsvdir stops every runsv and service
        try:
            self.runsvdir.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.runsvdir.kill()
            self.runsvdir.wait()
        self.runsvdir = None
        # runsv processes exit on their own after the HUP; give them a moment.
        for name in self.services():
            pidfile = self.prefix / "service" / name / "supervise" / "pid"
            try:
                wait_until(lambda: not pidfile.exists() or not pidfile.read_text().strip(), timeout=5,
                           what=f"{name} stopped")
            except AssertionError:
                pass

    def _port_open(self):
        return self._answers(self.port, b"220")

    @staticmethod
    def _connects(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    @staticmethod
    def _answers(port, greeting):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(2)
                return s.recv(100).startswith(greeting)
        except OSError:
            return False

    # -- inspection -------------------------------------------------------------

    def services(self):
        return sorted(p.name for p in (self.prefix / "service").iterdir() if p.is_dir())

    def service_pid(self, name):
        """The pid of a supervised service, or None when it is not running."""
        out = subprocess.run(["sv", "status", str(self.prefix / "service" / name)], capture_output=True,
                             text=True).stdout
        m = re.search(r"^run: [^(]*\(pid (\d+)\)", out)
        return int(m.group(1)) if m else None

    def sv(self, *args):
        return subprocess.run(["sv", *args], capture_output=True, text=True)

    def log(self, name):
        """The service's log so far (svlogd's current file)."""
        path = self.prefix / "log" / name / "current"
        return path.read_text(errors="replace") if path.exists() else ""

    def write_control(self, name, value):
        path = self.prefix / "control" / name
        path.write_text(value if value.endswith("\n") or not value else value + "\n")
        os.chmod(path, 0o644)

    def mailpasswd(self, *args, stdin=None, check=True):
        return subprocess.run([str(self.prefix / "bin" / "mailpasswd"), *args], input=stdin, text=True,
                              capture_output=True, check=check)

    def maildir(self, address):
        local, domain = address.split("@")
        return self.prefix / "mail" / domain / local / "Maildir"

    def messages(self, address):
        """The files in the account's Maildir new/ (and cur/), oldest first, as bytes."""
        md = self.maildir(address)
        files = [p for sub in ("new", "cur") for p in (md / sub).iterdir()] if md.exists() else []
        return [p.read_bytes() for p in sorted(files, key=lambda p: p.name)]

    def wait_for_messages(self, address, count, timeout=15):
        wait_until(lambda: len(self.messages(address)) >= count, timeout=timeout,
                   what=f"{count} messages for {address}")
        return self.messages(address)

    def queue_ids(self):
        return sorted(os.listdir(self.prefix / "queue" / "todo"))

    def inject(self, message, sender, rcpts, msgid=None):
        """Queues `message` (bytes, exactly as given: no line end is added) by running bin/queue
        itself, message on fd 0 and envelope on fd 1; returns queue's exit status."""
        envelope = (b"F" + sender.encode() + b"\0" + b"".join(b"T" + r.encode() + b"\0" for r in rcpts) + b"\0")
        env = dict(os.environ, TIKIMAIL_HOME=str(self.prefix), **({"MSGID": msgid} if msgid else {}))
        env_read, env_write = os.pipe()
        proc = subprocess.Popen([self.bin("queue")], stdin=subprocess.PIPE, stdout=env_read,
                                stderr=subprocess.DEVNULL, env=env)
        os.close(env_read)
        try:
            proc.stdin.write(message)
            proc.stdin.close()
            os.write(env_write, envelope)
        finally:
            os.close(env_write)
        return proc.wait(timeout=30)

    def bin(self, name):
        return str(self.prefix / "bin" / name)


class SmtpClient:
    """A raw SMTP connection for byte-exact dialogues, from a chosen source address."""

    def __init__(self, port, source=OUTSIDE_IP, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def reply(self):
        """One whole reply: (code, [text lines])."""
        lines = []
        while True:
            line = self.line()
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server has closed the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SmtpSink:
    """Postfix's smtp-sink as a remote MX on a loopback port (tests reach it through
    control/smtproutes). Each transaction it takes is dumped to a file of its own in `dump`:
    smtp-sink's X-Mail-Args/X-Rcpt-Args lines and its Received header, then the message.
    `options` are smtp-sink's (e.g. ["-r", "RCPT"] for 4xx to every RCPT)."""

    def __init__(self, options=(), port=None):
        self.options = list(options)
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tikimail-sink-"))
        self.dump = self.dir / "dump"
        self.dump.mkdir()
        os.chmod(self.dir, 0o755)
        os.chmod(self.dump, 0o777)  # smtp-sink writes as nobody (-u) when started as root
        self.proc = None

    def start(self):
        user = ["-u", "nobody"] if IS_ROOT else []
        self.proc = subprocess.Popen(["smtp-sink", *user, *self.options, "-d", str(self.dump) + "/%Y%m%d%H%M%S.",
                                      f"127.0.0.1:{self.port}", "20"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: Installation._answers(self.port, b"220"), timeout=10, what=f"smtp-sink on {self.port}")
        return self

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def restart(self, options=()):
        self.stop()
        self.options = list(options)
        return self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def transactions(self):
        """Each dumped transaction as (mail args, [rcpt args], message bytes), oldest first."""
        out = []
        for path in sorted(self.dump.iterdir()):
            data = path.read_bytes()
            mail, rcpts = None, []
            rest = data
            while True:
                line, _, tail = rest.partition(b"\n")
                if line.startswith(b"X-Mail-Args: "):
                    mail = line[len(b"X-Mail-Args: "):].decode()
                elif line.startswith(b"X-Rcpt-Args: "):
                    rcpts.append(line[len(b"X-Rcpt-Args: "):].decode())
                elif line.startswith(b"X-"):
                    pass
                else:
                    break
                rest = tail
            out.append((mail, rcpts, rest))
        return out

    def wait_for(self, count, timeout=20):
        wait_until(lambda: len(list(self.dump.iterdir())) >= count, timeout=timeout,
                   what=f"{count} transactions at smtp-sink")
        return self.transactions()
