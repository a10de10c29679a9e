"""End-to-end: POP before SMTP's relay db (seed S4) through relayctl, smtpd on port 25 and the
relaypurge service. The POP3 login -> relay test joins this file when pop3d lands."""

import grp
import os
import stat
import subprocess
import time
import unittest

from lib import IS_ROOT, OUTSIDE_IP, RELAY_IP, Installation, SmtpClient, wait_until

DENIED = (550, ["Relaying denied."])
RCPT_OK = (250, ["2.1.5 Ok"])


class RelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Installation().setup()
        cls.relay = cls.inst.prefix / "relay"

    @classmethod
    def tearDownClass(cls):
        cls.inst.teardown()

    def setUp(self):
        # Every test starts from an empty db and the default window.
        for name in os.listdir(self.relay):
            os.unlink(self.relay / name)
        self.inst.write_control("relaywindow", "1200")

    def relayctl(self, *args):
        return subprocess.run([self.inst.bin("relayctl"), *args], capture_output=True, text=True, timeout=30)

    def rcpt_remote(self, source=OUTSIDE_IP):
        """The reply to RCPT TO a domain that is not ours, from `source`, in a new connection."""
        with SmtpClient(self.inst.port, source=source) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.test>")[0], 250)
            reply = c.cmd("RCPT TO:<friend@remote.test>")
            c.cmd("QUIT")
            return reply

    def test_allow_opens_the_relay_for_that_ip_only(self):
        self.assertEqual(self.relayctl("check", OUTSIDE_IP).returncode, 1)
        self.assertEqual(self.rcpt_remote(), DENIED)
        allowed = self.relayctl("allow", OUTSIDE_IP, "alice@example.test")
        self.assertEqual(allowed.returncode, 0, allowed.stderr)
        self.assertRegex(allowed.stderr, rf"relayctl: allow ip={OUTSIDE_IP} login=alice@example.test expiry=\d+")
        self.assertEqual(self.relayctl("check", OUTSIDE_IP).returncode, 0)
        self.assertEqual(self.rcpt_remote(), RCPT_OK)
        wait_until(lambda: f"relay=pop ip={OUTSIDE_IP}" in self.inst.log("smtpd"), what="relay=pop in the log")
        # Another outside address is still refused; the trusted one relays as ever.
        self.assertEqual(self.relayctl("check", "127.0.0.3").returncode, 1)
        self.assertEqual(self.rcpt_remote(source="127.0.0.3"), DENIED)
        self.assertEqual(self.rcpt_remote(source=RELAY_IP), RCPT_OK)

    def test_a_whole_message_from_an_allowed_ip_is_queued(self):
        self.assertEqual(self.relayctl("allow", OUTSIDE_IP).returncode, 0)
        with SmtpClient(self.inst.port) as c:
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<alice@example.test>")
            self.assertEqual(c.cmd("RCPT TO:<bob@example.test>"), RCPT_OK)
            self.assertEqual(c.cmd("RCPT TO:<friend@remote.test>"), RCPT_OK)
            self.assertEqual(c.cmd("DATA")[0], 354)
            code, text = c.cmd("Subject: pop before smtp\r\nX-Marker: relay-pop-1\r\n\r\nhi\r\n.")
            self.assertEqual(code, 250, text)
            c.cmd("QUIT")
        wait_until(lambda: any(b"relay-pop-1" in m for m in self.inst.messages("bob@example.test")),
                   what="the local copy delivered")
        self.assertRegex(self.inst.log("smtpd"), r"accepted from=<alice@example\.test> rcpts=2 .* relay=pop")

    def test_an_ipv4_mapped_address_is_the_same_entry(self):
        self.assertEqual(self.relayctl("allow", f"::ffff:{OUTSIDE_IP}", "alice@example.test").returncode, 0)
        self.assertEqual(os.listdir(self.relay), [OUTSIDE_IP])
        self.assertEqual(self.relayctl("check", OUTSIDE_IP).returncode, 0)
        self.assertEqual(self.rcpt_remote(), RCPT_OK)

    def test_an_expired_entry_is_no_entry_and_purge_removes_it(self):
        self.inst.write_control("relaywindow", "1")
        self.assertEqual(self.relayctl("allow", OUTSIDE_IP, "alice@example.test").returncode, 0)
        time.sleep(2)
        self.assertTrue((self.relay / OUTSIDE_IP).exists())  # still there, but expired
        self.assertEqual(self.relayctl("check", OUTSIDE_IP).returncode, 1)
        self.assertEqual(self.rcpt_remote(), DENIED)
        self.assertEqual(self.relayctl("list").stdout, "")
        purged = self.relayctl("purge")
        self.assertEqual(purged.returncode, 0, purged.stderr)
        self.assertEqual(purged.stderr, "relayctl: purge removed=1\n")
        self.assertEqual(os.listdir(self.relay), [])
        self.assertEqual(self.relayctl("purge").stderr, "relayctl: purge removed=0\n")

    def test_list_shows_live_entries_sorted_with_age_and_time_left(self):
        self.assertEqual(self.relayctl("allow", "127.0.0.10", "bob@example.test").returncode, 0)
        self.assertEqual(self.relayctl("allow", "127.0.0.9").returncode, 0)
        self.assertEqual(self.relayctl("allow", "2001:DB8::1", "carol@example.test").returncode, 0)
        listed = self.relayctl("list")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        rows = [line.split(" ") for line in listed.stdout.splitlines()]
        self.assertEqual([(r[0], r[3]) for r in rows],
                         [("127.0.0.9", "-"), ("127.0.0.10", "bob@example.test"),
                          ("2001:db8::1", "carol@example.test")])
        for _, age, left, _ in rows:
            self.assertLessEqual(int(age), 5)
            self.assertTrue(1195 <= int(left) <= 1200, left)

    def test_garbage_is_refused_with_100_and_writes_nothing(self):
        for args in (["allow", "../../etc/passwd"], ["allow", ".."], ["allow", "999.1.1.1"],
                     ["allow", "mx.example.test"], ["allow", "127.0.0.2/32"], ["check", "."],
                     ["allow", OUTSIDE_IP, "login with spaces"], [], ["bogus"], ["list", "extra"]):
            with self.subTest(args=args):
                out = self.relayctl(*args)
                self.assertEqual(out.returncode, 100, out.stderr)
                self.assertTrue(out.stderr.startswith("relayctl: fatal: "), out.stderr)
        self.assertEqual(os.listdir(self.relay), [])

    def test_relay_directory_owner_and_mode(self):
        st = os.stat(self.relay)
        if IS_ROOT:
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o2750)
            self.assertEqual((st.st_uid, grp.getgrgid(st.st_gid).gr_name), (0, "tiki-auth"))
            self.assertEqual(self.relayctl("allow", OUTSIDE_IP).returncode, 0)
            entry = os.stat(self.relay / OUTSIDE_IP)
            self.assertEqual(stat.S_IMODE(entry.st_mode), 0o640)
            self.assertEqual(grp.getgrgid(entry.st_gid).gr_name, "tiki-auth")  # smtpd reads it (tlsd -g)
        else:
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o750)

    def test_relaypurge_service_runs_and_logs(self):
        self.assertIn("relaypurge", self.inst.services())
        wait_until(lambda: self.inst.service_pid("relaypurge"), timeout=15, what="relaypurge running")
        wait_until(lambda: "relayctl: purge removed=" in self.inst.log("relaypurge"), timeout=15,
                   what="relaypurge's first purge in its log")
        status = self.inst.sv("status", str(self.inst.prefix / "service" / "relaypurge"))
        self.assertRegex(status.stdout, r"^run: ")


if __name__ == "__main__":
    unittest.main()
