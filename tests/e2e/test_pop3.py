"""End-to-end: the POP3 chain (pop3d -> checkpassword -> pop3d-session) under tcpserver and
runit, driven by poplib, curl and fetchmail; POP before SMTP through smtpd."""

import grp
import os
import poplib
import pwd
import re
import socket
import subprocess
import tempfile
import time
import unittest

from pathlib import Path

from lib import IS_ROOT, OUTSIDE_IP, Installation, SmtpClient, wait_until

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"


class OutsidePOP3(poplib.POP3):
    """poplib from 127.0.0.2 (or another address tcprules gives no privileges)."""

    source = OUTSIDE_IP

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


class Pop3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Installation(accounts=(ALICE, BOB, CAROL)).setup()

    @classmethod
    def tearDownClass(cls):
        cls.inst.teardown()

    def deliver(self, rcpt, marker, body="hello\r\n"):
        with SmtpClient(self.inst.port) as c:
            c.cmd("HELO client.test")
            c.cmd("MAIL FROM:<sender@remote.test>")
            self.assertEqual(c.cmd(f"RCPT TO:<{rcpt}>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(f"Subject: {marker}\r\nX-Marker: {marker}\r\n\r\n{body}.\r\n")
            self.assertEqual(c.reply()[0], 250)
        wait_until(lambda: any(marker.encode() in m for m in self.inst.messages(rcpt)), what=f"{marker} delivered")

    def pop(self, user):
        return OutsidePOP3("127.0.0.1", self.inst.pop3_port, timeout=10)

    def login(self, user):
        p = self.pop(user)
        p.user(user)
        p.pass_(self.inst.accounts[user])
        return p

    def test_greeting_and_capabilities(self):
        p = self.pop(ALICE)
        self.assertTrue(p.getwelcome().startswith(b"+OK"))
        caps = p.capa()
        for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING"):
            self.assertIn(cap, caps)
        p.quit()

    def test_poplib_reads_messages_and_octets_match_retr(self):
        self.deliver(BOB, "pop-read-1", "line one\r\n..dotted line\r\nlast\r\n")
        p = self.login(BOB)
        count, octets = p.stat()
        self.assertGreaterEqual(count, 1)
        listing = {int(n): int(s) for n, s in (l.split() for l in p.list()[1])}
        self.assertEqual(sum(listing.values()), octets)
        for n, size in listing.items():
            resp, lines, got = p.retr(n)
            self.assertEqual(got, size, f"message {n}: LIST says {size}, RETR sent {got}")
        found = [p.retr(n)[1] for n in listing]
        ours = [m for m in found if b"X-Marker: pop-read-1" in m][0]
        self.assertIn(b".dotted line", ours)  # poplib undoes the byte-stuffing
        self.assertEqual(ours[-1], b"last")
        p.quit()

    def test_dele_happens_only_on_quit(self):
        self.deliver(CAROL, "pop-dele-1")
        p = self.login(CAROL)
        count, _ = p.stat()
        for n in range(1, count + 1):
            p.dele(n)
        p.close()  # dropped connection without QUIT: nothing is deleted
        wait_until(lambda: self._can_login(CAROL), what="mailbox unlocked")
        p = self.login(CAROL)
        self.assertEqual(p.stat()[0], count)
        for n in range(1, count + 1):
            p.dele(n)
        p.rset()
        self.assertEqual(p.stat()[0], count)
        for n in range(1, count + 1):
            p.dele(n)
        p.quit()
        p = self.login(CAROL)
        self.assertEqual(p.stat()[0], 0)
        p.quit()
        self.assertEqual(self.inst.messages(CAROL), [])

    def _can_login(self, user):
        try:
            p = self.login(user)
            p.quit()
            return True
        except poplib.error_proto:
            return False

    def test_uidl_is_stable_across_sessions_and_deliveries(self):
        self.deliver(ALICE, "uidl-1")
        p = self.login(ALICE)
        first = dict(l.split() for l in p.uidl()[1])
        p.quit()
        self.deliver(ALICE, "uidl-2")
        p = self.login(ALICE)
        second = dict(l.split() for l in p.uidl()[1])
        p.quit()
        self.assertTrue(set(first.values()) <= set(second.values()))
        self.assertEqual(len(second), len(first) + 1)

    def test_top_sends_headers_and_n_lines(self):
        self.deliver(ALICE, "top-1", "b1\r\nb2\r\nb3\r\n")
        p = self.login(ALICE)
        n = self._find(p, "top-1")
        resp, lines, _ = p.top(n, 2)
        self.assertEqual(lines[-3:], [b"", b"b1", b"b2"])
        p.quit()

    def _find(self, p, marker):
        for line in p.uidl()[1]:
            n = int(line.split()[0])
            if any(marker.encode() in l for l in p.top(n, 0)[1]):
                return n
        self.fail(f"{marker} not in mailbox")

    def test_bad_password_and_unknown_user_get_the_same_error(self):
        for user, password in ((ALICE, "wrong"), ("nobody@example.test", "x")):
            p = self.pop(user)
            p.user(user)
            with self.assertRaises(poplib.error_proto) as cm:
                p.pass_(password)
            self.assertTrue(str(cm.exception).startswith("b'-ERR [AUTH]"), cm.exception)
            p.quit()

    def test_second_session_gets_in_use(self):
        p = self.login(ALICE)
        q = self.pop(ALICE)
        q.user(ALICE)
        with self.assertRaises(poplib.error_proto) as cm:
            q.pass_(self.inst.accounts[ALICE])
        self.assertIn("[IN-USE]", str(cm.exception))
        p.quit()

    def test_a_refused_session_closes_cleanly_though_commands_were_pipelined(self):
        # PIPELINING is advertised: a client may send its whole login and more in one write.
        # When the session refuses ([IN-USE]), the unread commands must not turn the close
        # into a reset, which could destroy the reason before the client reads it.
        p = self.login(ALICE)
        try:
            s = socket.create_connection(("127.0.0.1", self.inst.pop3_port), timeout=10,
                                         source_address=(OUTSIDE_IP, 0))
            got = s.recv(1000)
            self.assertTrue(got.startswith(b"+OK"), got)
            s.sendall(f"USER {ALICE}\r\nPASS {self.inst.accounts[ALICE]}\r\nSTAT\r\nLIST\r\nNOOP\r\n"
                      f"QUIT\r\n".encode())
            received = b""
            while True:
                chunk = s.recv(65536)  # a reset raises ConnectionResetError here
                if not chunk:
                    break
                received += chunk
            s.close()
            self.assertEqual(received, b"+OK send PASS\r\n-ERR [IN-USE] mailbox in use by another session\r\n")
        finally:
            p.quit()

    def test_curl_lists_and_retrieves(self):
        self.deliver(BOB, "curl-pop-1")
        url = f"pop3://127.0.0.1:{self.inst.pop3_port}/"
        auth = f"{BOB}:{self.inst.accounts[BOB]}"
        out = subprocess.run(["curl", "-sS", url, "-u", auth], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^1 \d+")
        retr = subprocess.run(["curl", "-sS", url + "1", "-u", auth], capture_output=True, timeout=30)
        self.assertEqual(retr.returncode, 0)
        self.assertIn(b"Return-Path:", retr.stdout)
        bad = subprocess.run(["curl", "-sS", url, "-u", f"{BOB}:wrong"], capture_output=True, timeout=30)
        self.assertEqual(bad.returncode, 67)  # Login denied

    def test_fetchmail_fetches_and_keeps(self):
        self.deliver(BOB, "fetchmail-1")
        with tempfile.TemporaryDirectory() as home:
            mbox = os.path.join(home, "mbox")
            rc = os.path.join(home, "fetchmailrc")
            with open(rc, "w") as f:
                f.write(f'set no syslog\npoll 127.0.0.1 service {self.inst.pop3_port} proto POP3 uidl auth password\n'
                        f'  user "{BOB}" there with password "{self.inst.accounts[BOB]}" is root here\n'
                        f'  sslproto \'\' keep mda "/usr/bin/tee -a {mbox}"\n')
            os.chmod(rc, 0o600)
            out = subprocess.run(["fetchmail", "-f", rc, "-i", os.path.join(home, "ids"), "--nodetach"],
                                 env=dict(os.environ, HOME=home), capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            with open(mbox, "rb") as f:
                self.assertIn(b"X-Marker: fetchmail-1", f.read())

    def test_pop_before_smtp_opens_relay_for_the_window(self):
        client_ip = "127.0.0.3"  # no other test logs in from here
        with SmtpClient(self.inst.port, source=client_ip) as c:
            c.cmd("HELO outside.test")
            c.cmd("MAIL FROM:<alice@example.test>")
            self.assertEqual(c.cmd("RCPT TO:<friend@remote.test>"), (550, ["Relaying denied."]))
        check = subprocess.run([self.inst.bin("relayctl"), "check", client_ip], cwd=self.inst.prefix)
        self.assertEqual(check.returncode, 1)
        p = type("FromClientIP", (OutsidePOP3,), {"source": client_ip})("127.0.0.1", self.inst.pop3_port, timeout=10)
        p.user(ALICE)
        p.pass_(self.inst.accounts[ALICE])
        p.quit()
        with SmtpClient(self.inst.port, source=client_ip) as c:
            c.cmd("HELO outside.test")
            c.cmd("MAIL FROM:<alice@example.test>")
            self.assertEqual(c.cmd("RCPT TO:<friend@remote.test>"), (250, ["2.1.5 Ok"]))
        check = subprocess.run([self.inst.bin("relayctl"), "check", client_ip], cwd=self.inst.prefix)
        self.assertEqual(check.returncode, 0)

    def test_a_login_refused_by_the_policy_opens_no_relay(self):
        def login_from(ip):
            p = type("FromIP", (OutsidePOP3,), {"source": ip})("127.0.0.1", self.inst.pop3_port, timeout=10)
            p.user(BOB)
            try:
                p.pass_(self.inst.accounts[BOB])
                p.quit()
                return "ok"
            except poplib.error_proto as e:
                return str(e)

        def relay_open(ip):
            return subprocess.run([self.inst.bin("relayctl"), "check", ip], cwd=self.inst.prefix).returncode == 0

        self.assertEqual(login_from("127.0.0.7"), "ok")  # records bob's last login
        self.assertTrue(relay_open("127.0.0.7"))
        self.inst.write_control("pop3loginpolicy", "plain 0 3600")
        try:
            self.assertIn("[LOGIN-DELAY]", login_from("127.0.0.8"))
            self.assertFalse(relay_open("127.0.0.8"))
        finally:
            self.inst.write_control("pop3loginpolicy", "")

    @unittest.skipUnless(IS_ROOT, "privilege separation needs root")
    def test_pop3d_before_login_runs_as_its_own_user_and_holds_no_secret(self):
        pop3_user = pwd.getpwnam("tiki-pop3")
        auth_gid = grp.getgrnam("tiki-auth").gr_gid
        p = self.pop(ALICE)
        try:
            p.user(ALICE)  # mid-login: the pre-login stage is the process on the socket
            pids = [pid for pid in os.listdir("/proc") if pid.isdigit() and self._is_our_pop3d(pid)]
            self.assertEqual(len(pids), 1)
            status = Path(f"/proc/{pids[0]}/status").read_text()
            self.assertEqual(int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)), pop3_user.pw_uid)
            self.assertEqual(int(re.search(r"^Gid:\s+(\d+)", status, re.M).group(1)), auth_gid)
        finally:
            p.quit()
        for path in ("users/accounts", "control/tls/key.pem", "mail/example.test/alice/Maildir/cur"):
            probe = subprocess.run(["setpriv", f"--reuid={pop3_user.pw_uid}", f"--regid={auth_gid}", "--clear-groups",
                                    "python3", "-c", f"import os; os.listdir('{path}') "
                                    f"if os.path.isdir('{path}') else open('{path}').read()"],
                                   cwd=self.inst.prefix, capture_output=True, text=True)
            self.assertNotEqual(probe.returncode, 0, path)
            self.assertIn("PermissionError", probe.stderr, path)

    def _is_our_pop3d(self, pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return False
        return cmd[0].endswith(b"bin/pop3d") and cwd == str(self.inst.prefix)

    def test_idle_session_is_closed(self):
        self.inst.write_control("timeoutpop3d", "2")
        try:
            s = socket.create_connection(("127.0.0.1", self.inst.pop3_port), timeout=10,
                                         source_address=(OUTSIDE_IP, 0))
            self.assertTrue(s.recv(512).startswith(b"+OK"))
            started = time.monotonic()
            while s.recv(512):
                pass
            self.assertGreaterEqual(time.monotonic() - started, 1.5)
            s.close()
        finally:
            self.inst.write_control("timeoutpop3d", "120")


if __name__ == "__main__":
    unittest.main()
