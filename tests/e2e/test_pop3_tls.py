"""End-to-end: POP3 over TLS through tlsd (tlsd/README.md, pop3d/README.md): implicit TLS on the
POP3S port and STLS (RFC 2595) on the POP3 port, with real clients (curl, openssl s_client,
poplib, fetchmail) checking the certificate by name; the STLS plaintext-injection case; POP
before SMTP from POP3S only with control/relayfrompop3s; a replaced certificate served to the
next connection without a restart."""

import os
import poplib
import socket
import ssl
import subprocess
import tempfile
import unittest

from lib import OUTSIDE_IP, Installation, SmtpClient, make_certificate, wait_until

ALICE = "alice@example.test"
BOB = "bob@example.test"
STLS_GO = b"+OK begin TLS negotiation"


class SourcePOP3(poplib.POP3):
    """poplib from a chosen loopback address (127.0.0.1 is the only trusted one)."""

    def __init__(self, host, port, source=OUTSIDE_IP, timeout=10):
        self.source = source
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


class SourcePOP3_SSL(poplib.POP3_SSL):
    """poplib over implicit TLS from a chosen loopback address."""

    def __init__(self, host, port, source=OUTSIDE_IP, context=None, timeout=10):
        self.source = source
        super().__init__(host, port, context=context, timeout=timeout)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))
        return self.context.wrap_socket(sock, server_hostname=self.host)


class Pop3TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Installation(accounts=(ALICE, BOB)).setup()
        try:
            cls.deliver(ALICE, "tls-1")
        except Exception:
            cls.inst.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.inst.teardown()

    @classmethod
    def deliver(cls, rcpt, marker):
        with SmtpClient(cls.inst.port) as c:
            c.cmd("HELO client.test")
            c.cmd("MAIL FROM:<sender@remote.test>")
            assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            c.send(f"Subject: {marker}\r\nX-Marker: {marker}\r\n\r\nhello\r\n.\r\n")
            assert c.reply()[0] == 250
        wait_until(lambda: any(marker.encode() in m for m in cls.inst.messages(rcpt)), what=f"{marker} delivered")

    def context(self, cafile=None):
        return ssl.create_default_context(cafile=str(cafile or self.inst.cert))

    def password(self, address):
        return self.inst.accounts[address]

    def relay_check(self, ip):
        return subprocess.run([self.inst.bin("relayctl"), "check", ip], cwd=self.inst.prefix).returncode

    def run_client(self, args, stdin=None, timeout=30):
        return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)

    # -- curl -------------------------------------------------------------------------------

    def test_curl_pop3s_checks_the_certificate_name(self):
        port = self.inst.pop3s_port
        out = self.run_client(["curl", "-sS", "--cacert", str(self.inst.cert), "--resolve", f"localhost:{port}:127.0.0.1",
                               f"pop3s://localhost:{port}/1", "-u", f"{ALICE}:{self.password(ALICE)}"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"X-Marker: tls-1", out.stdout)
        wrong = self.run_client(["curl", "-sS", "--cacert", str(self.inst.cert), "--resolve",
                                 f"wrong.example:{port}:127.0.0.1", f"pop3s://wrong.example:{port}/",
                                 "-u", f"{ALICE}:{self.password(ALICE)}"])
        self.assertEqual(wrong.returncode, 60, wrong.stderr)  # the name is not in the certificate

    def test_curl_ssl_reqd_uses_stls(self):
        port = self.inst.pop3_port
        out = self.run_client(["curl", "-sS", "-v", "--ssl-reqd", "--cacert", str(self.inst.cert), "--resolve",
                               f"localhost:{port}:127.0.0.1", f"pop3://localhost:{port}/",
                               "-u", f"{ALICE}:{self.password(ALICE)}"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, rb"^1 \d+\r?\n")
        self.assertIn(b"> STLS", out.stderr)
        self.assertIn(b"< " + STLS_GO, out.stderr)

    # -- openssl s_client -------------------------------------------------------------------

    def test_openssl_s_client_starttls_pop3(self):
        out = self.run_client(["openssl", "s_client", "-starttls", "pop3", "-connect", f"127.0.0.1:{self.inst.pop3_port}",
                               "-CAfile", str(self.inst.cert), "-verify_hostname", "localhost", "-verify_return_error",
                               "-quiet"], stdin=b"CAPA\r\nQUIT\r\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"+OK capability list follows", out.stdout)
        self.assertNotIn(b"STLS", out.stdout)  # not offered once TLS is on
        self.assertIn(b"+OK tikimail POP3 server signing off", out.stdout)

    def test_openssl_s_client_connects_to_pop3s(self):
        out = self.run_client(["openssl", "s_client", "-connect", f"127.0.0.1:{self.inst.pop3s_port}",
                               "-CAfile", str(self.inst.cert), "-verify_hostname", "localhost", "-verify_return_error",
                               "-quiet"], stdin=b"CAPA\r\nQUIT\r\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.startswith(b"+OK tikimail POP3 server ready"), out.stdout)
        self.assertNotIn(b"STLS", out.stdout)
        self.assertIn(b"+OK tikimail POP3 server signing off", out.stdout)

    # -- poplib -----------------------------------------------------------------------------

    def test_poplib_pop3_ssl_logs_in_and_reads(self):
        p = SourcePOP3_SSL("127.0.0.1", self.inst.pop3s_port, context=self.context())
        self.assertNotIn("STLS", p.capa())
        with self.assertRaises(poplib.error_proto) as err:
            p._shortcmd("STLS")
        self.assertEqual(err.exception.args[0], b"-ERR TLS is already active")
        p.user(ALICE)
        p.pass_(self.password(ALICE))
        count, _ = p.stat()
        self.assertGreaterEqual(count, 1)
        self.assertTrue(any(b"X-Marker: tls-1" in b"\n".join(p.retr(n)[1]) for n in range(1, count + 1)))
        p.quit()

    def test_poplib_stls_then_login(self):
        p = SourcePOP3("127.0.0.1", self.inst.pop3_port)
        self.assertIn("STLS", p.capa())
        self.assertEqual(p.stls(context=self.context()), STLS_GO)
        self.assertIsInstance(p.sock, ssl.SSLSocket)
        self.assertNotIn("STLS", p.capa())
        with self.assertRaises(poplib.error_proto) as err:
            p._shortcmd("STLS")
        self.assertEqual(err.exception.args[0], b"-ERR TLS is already active")
        p.user(BOB)
        p.pass_(self.password(BOB))
        p.stat()
        p.quit()

    def test_stls_after_user_is_refused(self):
        p = SourcePOP3("127.0.0.1", self.inst.pop3_port)
        p.user(BOB)
        with self.assertRaises(poplib.error_proto) as err:
            p._shortcmd("STLS")
        self.assertEqual(err.exception.args[0], b"-ERR STLS must come before USER")
        p.quit()

    # -- fetchmail --------------------------------------------------------------------------

    def fetchmail(self, port, tls_options):
        with tempfile.TemporaryDirectory() as home:
            mbox = os.path.join(home, "mbox")
            rc = os.path.join(home, "fetchmailrc")
            with open(rc, "w") as f:
                f.write(f"set no syslog\npoll 127.0.0.1 service {port} proto POP3 uidl auth password\n"
                        f'  user "{ALICE}" there with password "{self.password(ALICE)}" is root here\n'
                        f'  {tls_options} sslcertck sslcertfile "{self.inst.cert}" sslcommonname "localhost"\n'
                        f'  keep mda "/usr/bin/tee -a {mbox}"\n')
            os.chmod(rc, 0o600)
            out = subprocess.run(["fetchmail", "-v", "-f", rc, "-i", os.path.join(home, "ids"), "--nodetach"],
                                 env=dict(os.environ, HOME=home), capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            with open(mbox, "rb") as f:
                self.assertIn(b"X-Marker: tls-1", f.read())
            return out.stdout + out.stderr

    def test_fetchmail_over_implicit_tls(self):
        log = self.fetchmail(self.inst.pop3s_port, "ssl")
        self.assertNotIn("POP3> STLS", log)

    def test_fetchmail_over_stls(self):
        log = self.fetchmail(self.inst.pop3_port, 'sslproto "tls1.2+"')
        self.assertIn("POP3> STLS", log)

    # -- injection (CVE-2011-0411 class) ----------------------------------------------------

    def test_commands_pipelined_behind_stls_are_never_answered_in_plaintext(self):
        with socket.create_connection(("127.0.0.1", self.inst.pop3_port), timeout=10,
                                      source_address=(OUTSIDE_IP, 0)) as s:
            greeting = b""
            while not greeting.endswith(b"\r\n"):
                greeting += s.recv(1000)
            self.assertTrue(greeting.startswith(b"+OK"))
            s.sendall(b"STLS\r\nCAPA\r\n")  # one write: CAPA sits behind STLS
            got = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except (socket.timeout, ConnectionResetError):
                pass
        self.assertTrue(got.startswith(STLS_GO + b"\r\n"), got)
        rest = got[len(STLS_GO) + 2:]
        # tlsd read "CAPA\r\n" as the start of a handshake: at most a TLS alert comes back.
        self.assertNotIn(b"capability", rest)
        self.assertNotIn(b"+OK", rest)
        self.assertNotIn(b"-ERR", rest)
        wait_until(lambda: "stls failed" in self.inst.log("pop3d"), what="pop3d logs the failed STLS")

    # -- POP before SMTP (seed S4) ----------------------------------------------------------

    def test_pop3s_login_does_not_open_the_relay_by_default(self):
        ip = "127.0.0.4"
        self.assertEqual(self.relay_check(ip), 1)
        p = SourcePOP3_SSL("127.0.0.1", self.inst.pop3s_port, source=ip, context=self.context())
        p.user(ALICE)
        p.pass_(self.password(ALICE))
        p.quit()
        self.assertEqual(self.relay_check(ip), 1)
        wait_until(lambda: f"ip={ip} method=pass result=ok relay=skipped-pop3s" in self.inst.log("pop3s"),
                   what="checkpassword's log line on the pop3s service")

    def test_stls_login_on_the_pop3_port_opens_the_relay(self):
        ip = "127.0.0.5"
        self.assertEqual(self.relay_check(ip), 1)
        p = SourcePOP3("127.0.0.1", self.inst.pop3_port, source=ip)
        p.stls(context=self.context())
        p.user(ALICE)
        p.pass_(self.password(ALICE))
        p.quit()
        self.assertEqual(self.relay_check(ip), 0)

    def test_pop3s_login_opens_the_relay_with_relayfrompop3s(self):
        ip = "127.0.0.6"
        self.inst.write_control("relayfrompop3s", "1")
        try:
            self.assertEqual(self.relay_check(ip), 1)
            p = SourcePOP3_SSL("127.0.0.1", self.inst.pop3s_port, source=ip, context=self.context())
            p.user(BOB)
            p.pass_(self.password(BOB))
            p.quit()
            self.assertEqual(self.relay_check(ip), 0)
        finally:
            self.inst.write_control("relayfrompop3s", "0")

    # -- certificate replacement ------------------------------------------------------------

    def test_a_replaced_certificate_is_served_to_the_next_connection(self):
        tls = self.inst.prefix / "control" / "tls"
        saved = {name: (tls / name).read_bytes() for name in ("key.pem", "cert.pem")}
        with tempfile.TemporaryDirectory() as tmp:
            new_ca = os.path.join(tmp, "replaced.pem")
            old_ca = os.path.join(tmp, "old.pem")  # inst.cert is the live file, about to change
            with open(old_ca, "wb") as f:
                f.write(saved["cert.pem"])
            try:
                make_certificate(tls / "cert.pem", tls / "key.pem", cn="replaced.example",
                                 names=("DNS:replaced.example", "IP:127.0.0.1"))
                with open(tls / "cert.pem", "rb") as src, open(new_ca, "wb") as dst:
                    dst.write(src.read())
                ctx = self.context(new_ca)
                # POP3S: the handshake verifies only against the new certificate and its name.
                with socket.create_connection(("127.0.0.1", self.inst.pop3s_port), timeout=10) as raw:
                    with ctx.wrap_socket(raw, server_hostname="replaced.example") as s:
                        cert = s.getpeercert()
                        self.assertIn((("commonName", "replaced.example"),), cert["subject"])
                        self.assertTrue(s.recv(100).startswith(b"+OK"))
                # STLS on the POP3 port reads the same files.
                p = SourcePOP3("127.0.0.1", self.inst.pop3_port)
                p.stls(context=ctx)
                self.assertIn((("commonName", "replaced.example"),), p.sock.getpeercert()["subject"])
                p.quit()
                # The old CA no longer verifies.
                with self.assertRaises(ssl.SSLCertVerificationError):
                    SourcePOP3_SSL("127.0.0.1", self.inst.pop3s_port, context=self.context(old_ca))
            finally:
                for name in ("key.pem", "cert.pem"):  # key first, as make_certificate does
                    tmp_path = tls / (name + ".tmp")
                    tmp_path.write_bytes(saved[name])
                    os.chmod(tmp_path, 0o600 if name == "key.pem" else 0o644)
                    os.replace(tmp_path, tls / name)
        p = SourcePOP3_SSL("127.0.0.1", self.inst.pop3s_port, context=self.context())
        p.quit()


if __name__ == "__main__":
    unittest.main()
