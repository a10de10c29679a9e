"""End-to-end: smtpd under tcpserver and runit, driven by swaks, curl, smtplib and raw sockets."""

import grp
import os
import pwd
import re
import smtplib
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from lib import (IS_ROOT, OUTSIDE_IP, RELAY_IP, Installation, SmtpClient, pipeline_without_reading,
                 process_table, rss_kib, wait_until)

TOO_BIG = "552 sorry, that message size exceeds my databytes limit (#5.3.4)"
DATABYTES = 20971520


class SmtpdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Installation().setup()

    @classmethod
    def tearDownClass(cls):
        cls.inst.teardown()

    def client(self, source=OUTSIDE_IP):
        return SmtpClient(self.inst.port, source=source)

    def marked(self, address, marker):
        return [m for m in self.inst.messages(address) if marker.encode() in m]

    def test_greeting_and_ehlo_extensions(self):
        with self.client() as c:
            self.assertEqual(c.greeting, (220, ["mx.example.test ESMTP tikimail"]))
            code, lines = c.cmd("EHLO client.test")
            self.assertEqual(code, 250)
            # Port 25 runs under tlsd in on-request mode: STARTTLS is offered, AUTH only after it.
            self.assertEqual(lines, ["mx.example.test", "PIPELINING", "8BITMIME", f"SIZE {DATABYTES}",
                                     "STARTTLS", "ENHANCEDSTATUSCODES"])
            self.assertEqual(c.cmd("QUIT"), (221, ["2.0.0 Bye"]))

    def test_swaks_mail_lands_byte_exact_in_maildir(self):
        body = "Subject: swaks test one\r\nX-Marker: swaks-1\r\n\r\nHello Alice.\r\n..leading dot\r\n"
        with tempfile.NamedTemporaryFile("w", suffix=".eml", delete=False) as f:
            f.write(body)
        try:
            out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.inst.port), "--from",
                                  "sender@remote.test", "--to", "alice@example.test", "--helo", "client.test",
                                  "--data", f.name, "--local-interface", OUTSIDE_IP, "--timeout", "20"],
                                 capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"<-  250 2\.0\.0 Ok: queued as [0-9a-f]{16}")
        wait_until(lambda: self.marked("alice@example.test", "swaks-1"), what="swaks mail delivered")
        got = self.marked("alice@example.test", "swaks-1")[0]
        head, _, message = got.partition(b"Received: ")
        self.assertEqual(head, b"Return-Path: <sender@remote.test>\nDelivered-To: alice@example.test\n")
        received, _, rest = message.partition(b"Subject: ")
        self.assertIn(b"from client.test ([127.0.0.2])", received)
        # swaks dot-stuffs the file and ends the data with an extra CRLF of its own.
        self.assertEqual(b"Subject: " + rest, body.replace("\r\n", "\n").encode() + b"\n")

    def test_a_quoted_sender_is_quoted_again_in_return_path(self):
        with self.client() as c:
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd('MAIL FROM:<"john doe; x"@remote.test>'), (250, ["2.1.0 Ok"]))
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>"), (250, ["2.1.5 Ok"]))
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send("Subject: quoted\r\nX-Marker: quoted-sender\r\n\r\nhi\r\n.\r\n")
            self.assertEqual(c.reply()[0], 250)
        wait_until(lambda: self.marked("alice@example.test", "quoted-sender"), what="the message delivered")
        got = self.marked("alice@example.test", "quoted-sender")[0]
        self.assertTrue(got.startswith(b'Return-Path: <"john doe; x"@remote.test>\nDelivered-To: alice@example.test\n'),
                        got[:120])

    def test_curl_sends_through_relay_client_address(self):
        with tempfile.NamedTemporaryFile("w", suffix=".eml", delete=False) as f:
            f.write("Subject: curl test\r\nX-Marker: curl-1\r\n\r\nbody\r\n")
        try:
            out = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{self.inst.port}", "--mail-from",
                                  "alice@example.test", "--mail-rcpt", "bob@example.test", "-T", f.name],
                                 capture_output=True, text=True, timeout=30)
        finally:
            os.unlink(f.name)
        self.assertEqual(out.returncode, 0, out.stderr)
        wait_until(lambda: self.marked("bob@example.test", "curl-1"), what="curl mail delivered")

    def test_smtplib_message_of_exactly_databytes_is_accepted(self):
        header = b"Subject: exactly the limit\r\nX-Marker: limit-exact\r\n\r\n"
        line = b"x" * 998 + b"\r\n"
        filler = DATABYTES - len(header)
        body = line * (filler // len(line))
        rest = filler - len(body)
        body += b"y" * (rest - 2) + b"\r\n"
        message = header + body
        self.assertEqual(len(message), DATABYTES)
        with smtplib.SMTP("127.0.0.1", self.inst.port, source_address=(OUTSIDE_IP, 0), timeout=60) as s:
            s.ehlo("client.test")
            s.mail("sender@remote.test", ["SIZE=%d" % len(message)])
            s.rcpt("alice@example.test")
            code, text = s.data(message)
            self.assertEqual(code, 250, text)
            # One line more: read to its end, then refused with the seed's text.
            s.mail("sender@remote.test")
            s.rcpt("alice@example.test")
            code, text = s.data(message + b"z\r\n")
            self.assertEqual((code, text.decode()), (552, TOO_BIG[4:]))
            self.assertEqual(s.noop()[0], 250)  # the session is still in step
        got = wait_until(lambda: self.marked("alice@example.test", "limit-exact"), timeout=30, what="big mail")
        self.assertEqual(len(got), 1)

    def test_size_parameter_over_the_limit_is_refused_at_once(self):
        with self.client() as c:
            c.cmd("EHLO client.test")
            code, lines = c.cmd(f"MAIL FROM:<a@remote.test> SIZE={DATABYTES + 1}")
            self.assertEqual(f"{code} {lines[0]}", TOO_BIG)

    def test_pipelined_transactions_are_both_queued(self):
        with self.client() as c:
            script = ""
            for n in (1, 2):
                script += (f"MAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
                           f"Subject: pipelined {n}\r\nX-Marker: pipe-{n}-{os.getpid()}\r\n\r\nbody\r\n.\r\n")
            c.send("EHLO client.test\r\n" + script + "QUIT\r\n")
            replies = [c.reply() for _ in range(10)]
        codes = [r[0] for r in replies]
        self.assertEqual(codes, [250, 250, 250, 354, 250, 250, 250, 354, 250, 221])
        for n in (1, 2):
            wait_until(lambda: self.marked("bob@example.test", f"pipe-{n}-{os.getpid()}"), what=f"pipelined {n}")

    def test_relay_tricks_from_outside_never_relay(self):
        tricks = {
            "<user@remote.test>": "550 Relaying denied.",
            "<user%remote.test@example.test>": "550 5.1.1 No such user here",
            "<remote.test!user@example.test>": "550 5.1.1 No such user here",
            "<@example.test:user@remote.test>": "550 Relaying denied.",
            "<\"user@remote.test\"@example.test>": "550 5.1.1 No such user here",
            "<user@[127.0.0.1]>": "550 Relaying denied.",
            "<alice@example.test.>": "501 5.1.3 Bad recipient address syntax",
            "<user@remote.test.>": "501 5.1.3 Bad recipient address syntax",
        }
        with self.client() as c:
            c.cmd("EHLO outside.test")
            self.assertEqual(c.cmd("MAIL FROM:<spammer@remote.test>")[0], 250)
            for rcpt, expected in tricks.items():
                code, lines = c.cmd(f"RCPT TO:{rcpt}")
                self.assertEqual(f"{code} {lines[0]}", expected, rcpt)
            self.assertEqual(c.cmd("DATA")[0], 554)

    def test_relay_client_from_tcprules_may_relay(self):
        with self.client(source=RELAY_IP) as c:
            c.cmd("EHLO inside.test")
            c.cmd("MAIL FROM:<alice@example.test>")
            self.assertEqual(c.cmd("RCPT TO:<someone@remote.test>"), (250, ["2.1.5 Ok"]))
            self.assertEqual(c.cmd("RCPT TO:<nobody@example.test>"), (550, ["5.1.1 No such user here"]))

    def test_unknown_user_and_postmaster(self):
        with self.client() as c:
            c.cmd("EHLO outside.test")
            c.cmd("MAIL FROM:<x@remote.test>")
            self.assertEqual(c.cmd("RCPT TO:<nobody@example.test>"), (550, ["5.1.1 No such user here"]))
            self.assertEqual(c.cmd("RCPT TO:<PostMaster>"), (250, ["2.1.5 Ok"]))
            self.assertEqual(c.cmd("RCPT TO:<postmaster@EXAMPLE.test>"), (250, ["2.1.5 Ok"]))
            self.assertEqual(c.cmd("DATA")[0], 354)
            marker = f"pm-{os.getpid()}"
            c.send(f"Subject: to postmaster\r\nX-Marker: {marker}\r\n\r\nhi\r\n.\r\n")
            self.assertEqual(c.reply()[0], 250)
        # control/postmaster names alice in this installation.
        wait_until(lambda: self.marked("alice@example.test", marker), what="postmaster mail at alice")

    def test_smuggling_variants_queue_exactly_one_message(self):
        for n, fake in enumerate([b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n"]):
            outer, inner = f"smuggle-outer-{n}-{os.getpid()}", f"smuggle-inner-{n}-{os.getpid()}"
            with self.client() as c:
                c.cmd("EHLO outside.test")
                c.cmd("MAIL FROM:<a@remote.test>")
                c.cmd("RCPT TO:<bob@example.test>")
                self.assertEqual(c.cmd("DATA")[0], 354)
                c.send(f"Subject: {outer}\r\n\r\nfirst".encode() + fake +
                       f"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
                       f"Subject: {inner}\r\n\r\nsmuggled\r\n.\r\n".encode())
                code, _ = c.reply()
                self.assertEqual(code, 250, repr(fake))
                self.assertEqual(c.cmd("QUIT")[0], 221, repr(fake))  # nothing else was answered
            wait_until(lambda: self.marked("bob@example.test", outer), what=f"outer message {n}")
            time.sleep(0.2)
            self.assertEqual(len(self.marked("bob@example.test", outer)), 1)
            self.assertEqual(self.marked("alice@example.test", inner), [], repr(fake))

    def test_overlong_command_line_is_refused(self):
        with self.client() as c:
            self.assertEqual(c.cmd("NOOP " + "x" * 600), (500, ["5.5.2 Line too long"]))
            self.assertEqual(c.cmd("NOOP"), (250, ["2.0.0 Ok"]))

    def test_too_many_bad_commands_disconnects(self):
        with self.client() as c:
            for _ in range(9):
                self.assertEqual(c.cmd("XYZZY")[0], 500)
            self.assertEqual(c.cmd("XYZZY")[0], 500)
            self.assertEqual(c.reply(), (421, ["4.7.0 Too many errors, closing connection"]))
            self.assertTrue(c.closed())

    def test_a_client_that_pipelines_and_never_reads_holds_no_more_than_64_kib_of_replies(self):
        # Each EHLO is answered with about 200 bytes; each 1800-byte write ends inside a command,
        # so input is always pending. The replies held back stop at 64 KiB, then smtpd waits for
        # the client to read like any writer.
        listener = self.inst.service_pid("smtpd")
        with self.client() as c:
            sessions = [pid for pid, (comm, ppid, _) in process_table().items() if ppid == listener and comm == "smtpd"]
            self.assertEqual(len(sessions), 1)
            pid = sessions[0]
            baseline = rss_kib(pid)
            peak = pipeline_without_reading(c.sock, pid, b"EH", b"LO client.test\r\n" + b"EHLO client.test\r\n" * 99 + b"EH")
            self.assertLess(peak - baseline, 16 * 1024, f"smtpd grew from {baseline} to {peak} KiB")

    def test_idle_timeout_sends_421_and_closes(self):
        self.inst.write_control("timeoutsmtpd", "2")
        try:
            with self.client() as c:
                started = time.monotonic()
                self.assertEqual(c.reply(), (421, ["4.4.2 Timeout, closing connection"]))
                self.assertGreaterEqual(time.monotonic() - started, 1.5)
                self.assertTrue(c.closed())
        finally:
            self.inst.write_control("timeoutsmtpd", "300")

    @unittest.skipUnless(IS_ROOT, "privilege separation needs root")
    def test_smtpd_user_may_only_verify_through_checkpassword(self):
        # smtpd may run set-uid checkpassword for SMTP AUTH, but never its full POP login
        # (relay entry, becoming vmail, running a program).
        smtpd_user = pwd.getpwnam("tiki-smtpd")
        auth_gid = grp.getgrnam("tiki-auth").gr_gid
        creds = f"alice@example.test\0{self.inst.accounts['alice@example.test']}\0\0".encode()

        def run(*extra_env):
            r, w = os.pipe()
            os.write(w, creds)
            os.close(w)
            env = dict(os.environ, TCPREMOTEIP="192.0.2.99", **dict(extra_env))
            try:
                return subprocess.run(["setpriv", f"--reuid={smtpd_user.pw_uid}", f"--regid={auth_gid}",
                                       "--clear-groups", "bin/checkpassword", "/usr/bin/id", "-u"],
                                      cwd=self.inst.prefix, env=env, pass_fds=(r,), capture_output=True,
                                      text=True, preexec_fn=lambda: os.dup2(r, 3))
            finally:
                os.close(r)

        full = run()
        self.assertEqual(full.returncode, 2, full.stdout + full.stderr)
        self.assertEqual(full.stdout, "")  # /usr/bin/id never ran, as vmail or anyone
        self.assertFalse((self.inst.prefix / "relay" / "192.0.2.99").exists())
        verify = run(("AUTHSERVICE", "smtp"))
        self.assertEqual(verify.returncode, 0, verify.stderr)
        self.assertEqual(verify.stdout, "")

    @unittest.skipUnless(IS_ROOT, "privilege separation needs root")
    def test_smtpd_runs_as_its_own_user_and_cannot_read_accounts(self):
        smtpd_user = pwd.getpwnam("tiki-smtpd")
        with self.client() as c:
            c.cmd("EHLO probe.test")
            pids = [p for p in os.listdir("/proc") if p.isdigit() and self._is_our_smtpd(p)]
            self.assertEqual(len(pids), 1)
            status = Path(f"/proc/{pids[0]}/status").read_text()
            uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M)
            self.assertEqual(int(uids.group(1)), smtpd_user.pw_uid)
            self.assertEqual(int(uids.group(2)), smtpd_user.pw_uid)
            # Group tiki-auth (tlsd -g): it may run checkpassword and read relay/, nothing more.
            auth_gid = grp.getgrnam("tiki-auth").gr_gid
            gids = re.search(r"^Gid:\s+(\d+)\s+(\d+)", status, re.M)
            self.assertEqual((int(gids.group(1)), int(gids.group(2))), (auth_gid, auth_gid))
        for path in ("users/accounts", "mail/example.test/alice/Maildir/new", "queue/todo", "control/tls/key.pem"):
            probe = subprocess.run(["setpriv", f"--reuid={smtpd_user.pw_uid}", f"--regid={auth_gid}",
                                    "--clear-groups", "python3", "-c", f"import os; os.listdir('{path}') "
                                    f"if os.path.isdir('{path}') else open('{path}').read()"],
                                   cwd=self.inst.prefix, capture_output=True, text=True)
            self.assertNotEqual(probe.returncode, 0, path)
            self.assertIn("PermissionError", probe.stderr, path)

    def _is_our_smtpd(self, pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return False
        return cmd[0].endswith(b"bin/smtpd") and cwd == str(self.inst.prefix)


if __name__ == "__main__":
    unittest.main()
