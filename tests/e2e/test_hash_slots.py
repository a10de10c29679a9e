"""End-to-end: checkpassword's hash slots (pop3d/README.md, "Hash slots"). With
control/concurrencyhash at 1, the test holds the one slot itself (a lock on byte 0 of
users/hashslots): a POP3 USER/PASS login and an SMTP AUTH wait for it and go on the moment it is
free; APOP, which hashes nothing, does not wait."""

import fcntl
import os
import poplib
import smtplib
import socket
import ssl
import stat
import threading
import unittest

from lib import IS_ROOT, OUTSIDE_IP, Installation, wait_until

ALICE = "alice@example.test"
BOB = "bob@example.test"


class OutsidePOP3(poplib.POP3):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(OUTSIDE_IP, 0))


class HeldSlot:
    """The one slot of concurrencyhash 1, held by this process (a POSIX lock conflicts with
    checkpassword's OFD lock on the same byte)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR)
        fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # the lock goes with the file
            self.fd = None


class HashSlotsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Installation(accounts=(ALICE, BOB), control={"concurrencyhash": "1"}).setup()
        cls.slots = cls.inst.prefix / "users" / "hashslots"
        cls.ctx = ssl.create_default_context(cafile=str(cls.inst.cert))

    @classmethod
    def tearDownClass(cls):
        cls.inst.teardown()

    def while_slot_held(self, work, what):
        """Runs work() in a thread with the one slot held by this process, checks that it is
        still waiting after 1.5 s, frees the slot and returns work()'s result."""
        result = {}

        def run():
            try:
                result["value"] = work()
            except Exception as e:  # re-raised below, in the test's thread
                result["error"] = e

        held = HeldSlot(self.slots)
        try:
            t = threading.Thread(target=run, daemon=True)
            t.start()
            t.join(1.5)
            self.assertTrue(t.is_alive(), f"{what} did not wait for the held slot")
        finally:
            held.release()
        t.join(15)
        self.assertFalse(t.is_alive(), f"{what} still waits after the slot was freed")
        if "error" in result:
            raise result["error"]
        return result["value"]

    def test_install_makes_the_slots_file_root_only(self):
        st = os.stat(self.slots)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_size, 0)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        if IS_ROOT:
            self.assertEqual(st.st_uid, 0)

    def test_pop3_login_waits_for_the_slot_and_goes_on_when_it_is_free(self):
        p = OutsidePOP3("127.0.0.1", self.inst.pop3_port, timeout=30)
        p.user(ALICE)
        answer = self.while_slot_held(lambda: p.pass_(self.inst.accounts[ALICE]), "the POP3 login")
        self.assertTrue(answer.startswith(b"+OK"), answer)
        self.assertEqual(p.stat()[0], 0)
        p.quit()
        wait_until(lambda: "login account=alice@example.test ip=127.0.0.2 method=pass result=ok" in
                   self.inst.log("pop3d"), what="the login line")
        line = [l for l in self.inst.log("pop3d").splitlines() if "checkpassword: login account=alice" in l][-1]
        self.assertRegex(line, r" slotwait=\d+ms$")
        waited = int(line.rsplit("slotwait=", 1)[1][:-2])
        self.assertGreaterEqual(waited, 1000)

    def test_smtp_auth_waits_for_the_slot_too(self):
        s = smtplib.SMTP("127.0.0.1", self.inst.submission_port, timeout=30, source_address=(OUTSIDE_IP, 0))
        s.ehlo("client.test")
        s.starttls(context=self.ctx)
        s.ehlo("client.test")
        answer = self.while_slot_held(lambda: s.login(BOB, self.inst.accounts[BOB]), "SMTP AUTH")
        self.assertEqual(answer[0], 235)
        s.quit()

    def test_apop_hashes_nothing_and_does_not_wait(self):
        self.inst.mailpasswd("apop", "on", BOB, stdin=self.inst.accounts[BOB] + "\n")
        held = HeldSlot(self.slots)
        try:
            # A wait would outlast the socket's 10 s (a check waits up to 30 s for its slot).
            p = OutsidePOP3("127.0.0.1", self.inst.pop3_port, timeout=10)
            self.assertTrue(p.apop(BOB, self.inst.accounts[BOB]).startswith(b"+OK"))
            p.quit()
        finally:
            held.release()
            self.inst.mailpasswd("apop", "off", BOB)


if __name__ == "__main__":
    unittest.main()
