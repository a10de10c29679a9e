"""End-to-end: the POP3 login chain (pop3d -> checkpassword -> pop3d-session) under tcpserver on
loopback with Python's poplib: USER/PASS, APOP after `mailpasswd apop on`, the failure limit,
and POP before SMTP (relayctl check sees the client's IP after a login).

Run as root, the chain is installed the way pop3d/README.md describes: pop3d runs as an
unprivileged user (tiki-pop3 when it exists, else nobody) with group tiki-auth, checkpassword is
set-uid root and executable only by that group, and the session runs as vmail. Run as an
ordinary user, everything runs as that user."""

import grp
import os
import poplib
import pwd
import socket
import subprocess
import time
import unittest

from lib import IS_ROOT, OUTSIDE_IP, Installation, free_port, stop_process, wait_until

GREETING = b"+OK tikimail POP3 server ready"
AUTH_FAILED = b"-ERR [AUTH] authentication failed"


class OutsidePOP3(poplib.POP3):
    """poplib from 127.0.0.2, the address that plays an outside client."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(OUTSIDE_IP, 0))


class Pop3Chain:
    """tcpserver running the POP3 chain in an Installation's prefix; started and stopped by PID."""

    def __init__(self, inst):
        self.inst = inst
        self.port = free_port()
        self.log_path = inst.prefix / "pop3-chain.log"
        self.proc = None

    def start(self):
        prefix = self.inst.prefix
        user = []
        if IS_ROOT:
            try:
                pw = pwd.getpwnam("tiki-pop3")
            except KeyError:
                pw = pwd.getpwnam("nobody")
            # pop3d/README.md: checkpassword is set-uid root, mode 4750, group tiki-auth (as
            # install.sh leaves it), and pop3d runs with that group.
            auth_gid = grp.getgrnam("tiki-auth").gr_gid
            st = os.stat(prefix / "bin" / "checkpassword")
            assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, auth_gid, 0o4750), oct(st.st_mode)
            user = ["-u", str(pw.pw_uid), "-g", str(auth_gid)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["tcpserver", "-R", "-H", "-l", "0", *user, "127.0.0.1", str(self.port),
                 "bin/pop3d", "bin/checkpassword", "bin/pop3d-session"],
                cwd=prefix, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True)
        wait_until(self._greets, timeout=10, what=f"pop3d on port {self.port}")

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def _greets(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.settimeout(2)
                return s.recv(100).startswith(b"+OK")
        except OSError:
            return False

    def log(self):
        return self.log_path.read_text(errors="replace")

    def pop(self, outside=True):
        cls = OutsidePOP3 if outside else poplib.POP3
        return cls("127.0.0.1", self.port, timeout=10)


class ChainTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Installation(start_services=False).setup()
        cls.chain = Pop3Chain(cls.inst)
        try:
            cls.chain.start()
        except Exception:
            cls.inst.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.chain.stop()
        cls.inst.teardown()

    def password(self, address):
        return self.inst.accounts[address]

    def relay_check(self, ip):
        return subprocess.run([self.inst.bin("relayctl"), "check", ip], capture_output=True).returncode


class UserPassTest(ChainTestCase):
    def test_banner_has_no_timestamp_while_no_account_has_apop(self):
        p = self.chain.pop()
        self.assertEqual(p.getwelcome(), GREETING)
        with self.assertRaises(poplib.error_proto) as err:  # poplib itself would not send it
            p._shortcmd("APOP alice@example.test " + "0" * 32)
        self.assertEqual(err.exception.args[0], b"-ERR APOP is not available here")
        p.quit()

    def test_user_pass_logs_in_and_opens_the_relay_for_that_ip(self):
        self.assertEqual(self.relay_check(OUTSIDE_IP), 1)
        p = self.chain.pop()
        p.user("alice@example.test")
        p.pass_(self.password("alice@example.test"))
        self.assertEqual(p.stat(), (0, 0))
        p.quit()
        self.assertEqual(self.relay_check(OUTSIDE_IP), 0)
        log = self.chain.log()
        self.assertIn(f"checkpassword: login account=alice@example.test ip={OUTSIDE_IP} method=pass result=ok", log)
        self.assertNotIn(self.password("alice@example.test"), log)

    def test_wrong_password_and_unknown_account_get_the_same_answer(self):
        p = self.chain.pop()
        for user, password in (("bob@example.test", "wrong"), ("nobody@example.test", "wrong")):
            p.user(user)
            with self.assertRaises(poplib.error_proto) as err:
                p.pass_(password)
            self.assertEqual(err.exception.args[0], AUTH_FAILED)
        p.quit()
        self.assertIn("checkpassword: login account=bob@example.test ip=127.0.0.2 method=pass result=fail",
                      self.chain.log())
        self.assertNotIn("wrong", self.chain.log().replace("why=wrong password", ""))

    def test_three_failures_close_the_connection(self):
        with socket.create_connection(("127.0.0.1", self.chain.port), timeout=20) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(GREETING))
            started = time.monotonic()
            answers = []
            for _ in range(3):
                s.sendall(b"USER bob@example.test\r\n")
                self.assertEqual(f.readline(), b"+OK send PASS\r\n")
                s.sendall(b"PASS nope\r\n")
                answers.append(f.readline())
            self.assertEqual(answers, [AUTH_FAILED + b"\r\n"] * 2 + [b"-ERR [AUTH] too many failures\r\n"])
            self.assertEqual(f.readline(), b"")  # closed
            self.assertGreaterEqual(time.monotonic() - started, 5.5)  # a delay after each failure

    def test_pipelined_commands_after_pass_reach_the_session(self):
        with socket.create_connection(("127.0.0.1", self.chain.port), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()
            pw = self.password("bob@example.test")
            s.sendall(f"USER bob@example.test\r\nPASS {pw}\r\nSTAT\r\nQUIT\r\n".encode())
            lines = [f.readline() for _ in range(4)]
            self.assertEqual(lines[0], b"+OK send PASS\r\n")
            self.assertTrue(lines[1].startswith(b"+OK"), lines)
            self.assertEqual(lines[2], b"+OK 0 0\r\n")
            self.assertTrue(lines[3].startswith(b"+OK"), lines)


class ApopTest(ChainTestCase):
    def test_apop_after_apop_on_and_refused_while_off(self):
        alice, bob = "alice@example.test", "bob@example.test"
        out = self.inst.mailpasswd("apop", "on", alice, stdin="not the password\n", check=False)
        self.assertEqual(out.returncode, 100, out.stderr)
        self.inst.mailpasswd("apop", "on", alice, stdin=self.password(alice) + "\n")
        self.assertTrue((self.inst.prefix / "users" / "apop-enabled").exists())

        p = self.chain.pop()
        self.assertRegex(p.getwelcome(), rb"^\+OK tikimail POP3 server ready <\d+\.\d+@mx\.example\.test>$")
        p.apop(alice, self.password(alice))
        self.assertEqual(p.stat(), (0, 0))
        p.quit()

        p = self.chain.pop()
        with self.assertRaises(poplib.error_proto) as err:
            p.apop(bob, self.password(bob))  # the right password, but bob's APOP is off
        self.assertEqual(err.exception.args[0], AUTH_FAILED)
        with self.assertRaises(poplib.error_proto) as err:
            p.apop(alice, "wrong password")
        self.assertEqual(err.exception.args[0], AUTH_FAILED)
        p.quit()
        log = self.chain.log()
        self.assertIn("login account=alice@example.test ip=127.0.0.2 method=apop result=ok", log)
        self.assertIn("login account=bob@example.test ip=127.0.0.2 method=apop result=fail why=APOP is off", log)

        self.inst.mailpasswd("apop", "off", alice)
        self.assertFalse((self.inst.prefix / "users" / "apop-enabled").exists())
        p = self.chain.pop()
        self.assertEqual(p.getwelcome(), GREETING)
        p.quit()


if __name__ == "__main__":
    unittest.main()
