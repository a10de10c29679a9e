"""End-to-end: the real pop3d-session binary on a real Maildir, without the stages before it
(pop3d/README.md, section pop3d-session). As checkpassword would, each test starts it with the
working directory = the Maildir and USER, HOME and TIKIMAIL_HOME set:

- under tcpserver on a loopback port (`tcpserver ... env -C MAILDIR ... pop3d-session`), so that
  Python's poplib is the client: the session's first line (the answer to PASS) is what poplib
  takes for the greeting;
- on one end of a socketpair, to see the exit status (the contract with pop3d: 0 after QUIT,
  3 client gone or timed out, 4 refused).

As root, the session runs as vmail (as checkpassword leaves it) and the Maildir belongs to vmail.
"""

import os
import poplib
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from lib import BIN, IS_ROOT, free_port, pipeline_without_reading, rss_kib, wait_until

SESSION = str(BIN / "pop3d-session")
ACCOUNT = "alice@example.test"

FIRST = b"From: a@example.test\nSubject: first\n\nHello.\n.leading dot\n..two dots\n.\nend\n"
SECOND = b"Subject: second\r\n\r\nCRLF body\r\nno final newline"
THIRD = b"Subject: third\n\n" + b"".join(b"%sline %06d of a big message\n" % (b"." if i % 40 == 0 else b"", i)
                                        for i in range(120000))  # about 3 MB: RETR streams it


def crlf(data):
    """The CRLF form RETR sends (and LIST counts): bare LFs become CRLF, the last line is ended."""
    out = bytearray()
    prev = b"\n"[0]
    for byte in data:
        if byte == 0x0A and prev != 0x0D:
            out += b"\r"
        out.append(byte)
        prev = byte
    if data and not data.endswith(b"\n"):
        out += b"\n" if data.endswith(b"\r") else b"\r\n"
    return bytes(out)


class Mailbox:
    """A prefix with control/ and one Maildir; as root, the Maildir belongs to vmail."""

    def __init__(self, control=None):
        self.prefix = Path(tempfile.mkdtemp(prefix="tikimail-pop3s-"))
        os.chmod(self.prefix, 0o755)
        (self.prefix / "control").mkdir(mode=0o755)
        for name, value in (control or {}).items():
            (self.prefix / "control" / name).write_text(value + "\n")
        self.maildir = self.prefix / "Maildir"
        self.user = pwd.getpwnam("vmail") if IS_ROOT else None
        for sub in ("", "tmp", "new", "cur"):
            d = self.maildir / sub
            d.mkdir(mode=0o700, exist_ok=True)
            if self.user:
                os.chown(d, self.user.pw_uid, self.user.pw_gid)

    def deliver(self, name, data, sub="new"):
        path = self.maildir / sub / name
        path.write_bytes(data)
        if self.user:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def files(self, sub="cur"):
        return sorted(p.name for p in (self.maildir / sub).iterdir())

    def env(self):
        return dict(os.environ, USER=ACCOUNT, HOME=str(self.maildir), TIKIMAIL_HOME=str(self.prefix),
                    TCPREMOTEIP="192.0.2.9")

    def remove(self):
        shutil.rmtree(self.prefix, ignore_errors=True)


class SocketSession:
    """pop3d-session on one end of a socketpair; the test holds the other end."""

    def __init__(self, mailbox, extra_env=None):
        self.sock, server = socket.socketpair()
        env = mailbox.env()
        env.update(extra_env or {})
        ids = {}
        if mailbox.user:
            ids = dict(user=mailbox.user.pw_uid, group=mailbox.user.pw_gid, extra_groups=[])
        self.proc = subprocess.Popen([SESSION], stdin=server, stdout=server, stderr=subprocess.PIPE,
                                     cwd=mailbox.maildir, env=env, **ids)
        server.close()
        self.sock.settimeout(15)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("pop3d-session closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def eof(self):
        """True when the session closes the connection without sending anything more."""
        data = self.buf + self.sock.recv(65536)
        return data == b""

    def finish(self, drop=False):
        """(exit status, stderr) once the process has exited; drop=True closes our end first."""
        if drop:
            self.sock.close()
        _, err = self.proc.communicate(timeout=15)
        self.sock.close()
        return self.proc.returncode, err.decode()


class TcpServer:
    """tcpserver on a loopback port running pop3d-session in the Maildir for every connection."""

    def __init__(self, mailbox):
        self.port = free_port()
        ids = ["-u", str(mailbox.user.pw_uid), "-g", str(mailbox.user.pw_gid)] if mailbox.user else []
        argv = ["tcpserver", "-v", "-R", "-H", "-l", "0", *ids, "127.0.0.1", str(self.port),
                "env", "-C", str(mailbox.maildir), SESSION]
        self.proc = subprocess.Popen(argv, env=mailbox.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.log = []
        first = self.proc.stderr.readline().decode()
        assert first.startswith("tcpserver: status:"), first
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()

    def _read_log(self):
        for raw in self.proc.stderr:
            self.log.append(raw.decode(errors="replace").rstrip("\n"))

    def logged(self, text):
        return any(text in line for line in self.log)

    def pop(self):
        return poplib.POP3("127.0.0.1", self.port, timeout=15)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=5)


class Pop3SessionOverTcpTest(unittest.TestCase):
    def setUp(self):
        self.mailbox = Mailbox()
        self.mailbox.deliver("1700000001.M1P1Q1.mx", FIRST)
        w = len(crlf(SECOND))
        self.mailbox.deliver(f"1700000002.M1P1Q2.mx,S={len(SECOND)},W={w}", SECOND)
        self.mailbox.deliver("1700000003.M1P1Q3.mx:2,", THIRD, sub="cur")
        self.server = TcpServer(self.mailbox)

    def tearDown(self):
        self.server.stop()
        self.mailbox.remove()

    def wait_logged(self, text):
        wait_until(lambda: self.server.logged(text), what=f"log line with {text!r}")

    def test_poplib_list_and_stat_octets_equal_the_bytes_retr_sends(self):
        p = self.server.pop()
        expected = [crlf(FIRST), crlf(SECOND), crlf(THIRD)]
        total = sum(len(m) for m in expected)
        self.assertEqual(p.getwelcome(), f"+OK 3 messages ({total} octets)".encode())
        self.assertEqual(p.stat(), (3, total))
        _, listing, _ = p.list()
        self.assertEqual(listing, [f"{i + 1} {len(m)}".encode() for i, m in enumerate(expected)])
        for i, want in enumerate(expected):
            resp, lines, octets = p.retr(i + 1)
            self.assertEqual(resp, f"+OK {len(want)} octets".encode())
            self.assertEqual(octets, len(want))                      # poplib counts after un-stuffing
            self.assertEqual(b"".join(line + b"\r\n" for line in lines), want)
        self.assertEqual(p.quit(), b"+OK bye")
        self.assertEqual(self.mailbox.files("new"), [])
        self.assertEqual(len(self.mailbox.files("cur")), 3)
        self.wait_logged(f"pop3d-session: login account={ACCOUNT} ip=127.0.0.1 messages=3 octets={total}")
        self.wait_logged(f"pop3d-session: quit account={ACCOUNT} ip=127.0.0.1 deleted=0")

    def test_uidl_is_the_maildir_name_and_top_cuts_the_body(self):
        p = self.server.pop()
        _, uids, _ = p.uidl()
        self.assertEqual(uids, [b"1 1700000001.M1P1Q1.mx",
                                f"2 1700000002.M1P1Q2.mx,S={len(SECOND)},W={len(crlf(SECOND))}".encode(),
                                b"3 1700000003.M1P1Q3.mx"])
        _, lines, _ = p.top(1, 2)
        self.assertEqual(lines, [b"From: a@example.test", b"Subject: first", b"", b"Hello.", b".leading dot"])
        p.quit()
        q = self.server.pop()  # the same ids in the next session
        self.assertEqual(q.uidl()[1], uids)
        q.quit()

    def test_dele_then_quit_removes_and_dele_then_drop_keeps(self):
        p = self.server.pop()
        p.dele(1)
        p.close()  # the connection drops without QUIT: RFC 1939 says nothing is removed
        self.wait_logged(f"pop3d-session: disconnect account={ACCOUNT}")
        self.assertEqual(len(self.mailbox.files()), 3)
        p = self.server.pop()
        self.assertEqual(p.dele(1), b"+OK message 1 deleted")
        self.assertEqual(p.dele(3), b"+OK message 3 deleted")
        with self.assertRaises(poplib.error_proto) as refused:
            p.retr(1)
        self.assertEqual(refused.exception.args[0], b"-ERR message 1 already deleted")
        self.assertEqual(p.quit(), b"+OK bye")
        self.wait_logged(f"pop3d-session: quit account={ACCOUNT} ip=127.0.0.1 deleted=2")
        self.assertEqual(self.mailbox.files(), [f"1700000002.M1P1Q2.mx,S={len(SECOND)},W={len(crlf(SECOND))}:2,"])

    def test_a_second_session_gets_in_use(self):
        first = self.server.pop()
        with self.assertRaises(poplib.error_proto) as refused:
            self.server.pop()
        self.assertEqual(refused.exception.args[0], b"-ERR [IN-USE] mailbox in use by another session")
        self.wait_logged(f"pop3d-session: in-use account={ACCOUNT}")
        self.assertEqual(first.stat()[0], 3)
        first.quit()


class Pop3SessionExitStatusTest(unittest.TestCase):
    def setUp(self):
        self.mailbox = None

    def tearDown(self):
        if self.mailbox:
            self.mailbox.remove()

    def make(self, control=None):
        self.mailbox = Mailbox(control)
        self.mailbox.deliver("1700000001.M1P1Q1.mx", FIRST)
        return self.mailbox

    def test_quit_exits_0_and_a_dropped_client_exits_3(self):
        mb = self.make()
        s = SocketSession(mb)
        self.assertTrue(s.line().startswith("+OK 1 messages"))
        self.assertEqual(s.cmd("QUIT"), "+OK bye")
        self.assertEqual(s.finish()[0], 0)
        s = SocketSession(mb)
        self.assertTrue(s.line().startswith("+OK 1 messages"))
        self.assertEqual(s.cmd("DELE 1"), "+OK message 1 deleted")
        status, log = s.finish(drop=True)
        self.assertEqual(status, 3)
        self.assertIn("disconnect", log)
        self.assertEqual(len(mb.files()), 1)

    def test_in_use_exits_4(self):
        mb = self.make()
        first = SocketSession(mb)
        self.assertTrue(first.line().startswith("+OK "))
        second = SocketSession(mb)
        self.assertEqual(second.line(), "-ERR [IN-USE] mailbox in use by another session")
        self.assertTrue(second.eof())
        self.assertEqual(second.finish()[0], 4)
        first.cmd("QUIT")
        self.assertEqual(first.finish()[0], 0)

    def test_idle_timeout_closes_silently_and_exits_3(self):
        mb = self.make({"timeoutpop3d": "1"})
        s = SocketSession(mb)
        self.assertTrue(s.line().startswith("+OK "))
        self.assertEqual(s.cmd("DELE 1"), "+OK message 1 deleted")
        started = time.monotonic()
        self.assertTrue(s.eof())  # no reply before the close (RFC 1939 autologout)
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        status, log = s.finish()
        self.assertEqual(status, 3)
        self.assertIn(f"pop3d-session: timeout account={ACCOUNT}", log)
        self.assertEqual(len(mb.files()), 1)

    def test_login_delay_by_policy_exits_4_and_capa_advertises_it(self):
        mb = self.make({"pop3loginpolicy": "plain 0 300\ntls 0 0"})
        s = SocketSession(mb)
        self.assertTrue(s.line().startswith("+OK "))
        s.sock.sendall(b"CAPA\r\n")
        caps = []
        while (line := s.line()) != ".":
            caps.append(line)
        self.assertIn("LOGIN-DELAY 300", caps)
        s.cmd("QUIT")
        self.assertEqual(s.finish()[0], 0)
        again = SocketSession(mb)
        reply = again.line()
        self.assertRegex(reply, r"^-ERR \[LOGIN-DELAY\] wait \d+ more seconds$")
        self.assertEqual(again.finish()[0], 4)
        tls = SocketSession(mb, {"POP3S": "1"})  # the tls rule has no interval
        self.assertTrue(tls.line().startswith("+OK "))
        tls.cmd("QUIT")
        self.assertEqual(tls.finish()[0], 0)

    def test_a_broken_policy_file_is_sys_temp_and_exits_5(self):
        mb = self.make({"pop3loginpolicy": "sometimes 0 300"})
        s = SocketSession(mb)
        self.assertTrue(s.line().startswith("-ERR [SYS/TEMP] "))
        status, log = s.finish()
        self.assertEqual(status, 5)
        self.assertIn("pop3loginpolicy line 1", log)
        self.assertEqual(mb.files("new"), ["1700000001.M1P1Q1.mx"])  # nothing touched

    def test_a_client_that_pipelines_and_never_reads_holds_no_more_than_a_chunk_of_replies(self):
        # 200 messages: every UIDL is answered with about 6 KB; each 1200-byte write ends inside
        # a command, so input is always pending. The replies held back stop at 64 KiB; then the
        # session waits for the client to read (and after timeoutpop3d drops it).
        mb = self.make({"timeoutpop3d": "5"})
        for i in range(200):
            mb.deliver(f"17000001{i:02d}.M{i}P1Q{i}.mx", b"Subject: s\n\nbody\n")
        s = SocketSession(mb)
        self.assertTrue(s.line().startswith("+OK 201 messages"))
        baseline = rss_kib(s.proc.pid)
        peak = pipeline_without_reading(s.sock, s.proc.pid, b"UI", b"DL\r\n" + b"UIDL\r\n" * 199 + b"UI")
        self.assertLess(peak - baseline, 16 * 1024, f"pop3d-session grew from {baseline} to {peak} KiB")
        status, log = s.finish(drop=True)
        self.assertEqual(status, 3)
        self.assertEqual(len(mb.files("cur")), 201)  # nothing deleted


if __name__ == "__main__":
    unittest.main()
