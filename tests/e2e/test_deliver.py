"""End-to-end: deliver under runit takes what smtpd queued into the Maildirs (deliver/README.md).

Each message carries an X-Marker header so that the test can find it, count its copies and
rebuild the exact bytes every copy must hold: Return-Path and Delivered-To from deliver,
smtpd's Received header, then the message as sent with LF line ends.
"""

import os
import pwd
import re
import signal
import smtplib
import stat
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

from lib import OUTSIDE_IP, RELAY_IP, Installation, SmtpClient, free_port, parse_queue_entry, wait_until

SENDER = "sender@remote.test"


def message(marker, size=0):
    """A message with CRLF line ends (as sent) and a body of about `size` bytes."""
    filler = "".join(f"{marker} line {i:05d} .dot and \xe9 stay as they are\r\n" for i in range(size // 48 + 1))
    return (f"From: <{SENDER}>\r\nSubject: deliver test {marker}\r\nX-Marker: {marker}\r\n\r\n"
            f"Hello.\r\n.leading dot\r\n{filler}").encode("latin-1")


def split_delivered(data):
    """(deliver's two header lines, smtpd's Received header, the rest) of one Maildir file."""
    head_end = data.index(b"\n", data.index(b"\n") + 1) + 1
    head, rest = data[:head_end], data[head_end:]
    if not rest.startswith(b"Received: "):
        return head, b"", rest
    end = rest.index(b"\n") + 1
    while rest[end:end + 1] in (b" ", b"\t"):  # folded continuation lines
        end = rest.index(b"\n", end) + 1
    return head, rest[:end], rest[end:]


def marker_of(data):
    m = re.search(rb"^X-Marker: (\S+)$", data, re.M)
    return m.group(1).decode() if m else None


def send(port, rcpts, data, source=OUTSIDE_IP):
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as s:
        s.sendmail(SENDER, rcpts, data)


class DeliverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Installation().setup()

    @classmethod
    def tearDownClass(cls):
        cls.inst.teardown()

    def by_marker(self, address, prefix):
        found = {}
        for data in self.inst.messages(address):
            marker = marker_of(data)
            if marker and marker.startswith(prefix):
                found.setdefault(marker, []).append(data)
        return found

    def assert_exact(self, data, rcpt, sent):
        head, received, rest = split_delivered(data)
        self.assertEqual(head, f"Return-Path: <{SENDER}>\nDelivered-To: {rcpt}\n".encode())
        self.assertTrue(received.startswith(b"Received: "), received)
        self.assertEqual(rest, sent.replace(b"\r\n", b"\n"))

    def test_message_to_alice_and_bob_lands_byte_exact_in_each_maildir(self):
        sent = message("two-rcpts", 70000)  # more than one 64 KiB copy buffer
        send(self.inst.port, ["alice@example.test", "bob@example.test"], sent)
        for rcpt in ("alice@example.test", "bob@example.test"):
            wait_until(lambda: self.by_marker(rcpt, "two-rcpts"), what=f"message for {rcpt}")
            copies = self.by_marker(rcpt, "two-rcpts")["two-rcpts"]
            self.assertEqual(len(copies), 1)
            self.assert_exact(copies[0], rcpt, sent)
        for rcpt in ("alice@example.test", "bob@example.test"):
            self.assertEqual(os.listdir(self.inst.maildir(rcpt) / "tmp"), [])

    def test_200_messages_sent_in_parallel_all_arrive_each_once(self):
        markers = [f"par-{i:03d}" for i in range(200)]
        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(lambda m: send(self.inst.port, ["bob@example.test"], message(m, 500)), markers))
        wait_until(lambda: len(self.by_marker("bob@example.test", "par-")) == 200, timeout=60,
                   what="200 parallel messages delivered")
        found = self.by_marker("bob@example.test", "par-")
        self.assertEqual(sorted(found), markers)
        for marker, copies in found.items():
            self.assertEqual(len(copies), 1, marker)
            self.assert_exact(copies[0], "bob@example.test", message(marker, 500))

    def test_entry_files_are_refilled_from_the_pool_and_never_leak_old_bytes(self):
        """queue/README.md "The pool": deliver moves a finished entry file into queue/pool/,
        queue takes one back (emptied) for a later message instead of creating a file."""
        pool = self.inst.prefix / "queue" / "pool"

        def pool_files():
            return {p.stat().st_ino: p.stat().st_mtime_ns for p in pool.iterdir()}

        def send_and_wait(marker, size):
            sent = message(marker, size)
            send(self.inst.port, ["bob@example.test"], sent)
            wait_until(lambda: self.by_marker("bob@example.test", marker), what=f"{marker} delivered")
            copies = self.by_marker("bob@example.test", marker)[marker]
            self.assertEqual(len(copies), 1)
            self.assert_exact(copies[0], "bob@example.test", sent)

        for i in range(30):  # long ones first: a refilled file must not keep their tails
            send_and_wait(f"pool-long-{i:02d}", 60000)
        wait_until(lambda: not list((self.inst.prefix / "queue" / "todo").iterdir()), what="todo/ empty")
        before = pool_files()
        self.assertTrue(0 < len(before) <= 64, before)
        for i in range(30):
            send_and_wait(f"pool-short-{i:02d}", 300)
        wait_until(lambda: not list((self.inst.prefix / "queue" / "todo").iterdir()), what="todo/ empty")
        after = pool_files()
        self.assertLessEqual(len(after), 64)
        refilled = [ino for ino, mtime in after.items() if ino in before and mtime > before[ino]]
        self.assertTrue(refilled, "no pool file was taken back and written again")
        for path in pool.iterdir():
            st = path.lstat()
            self.assertTrue(stat.S_ISREG(st.st_mode), path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o640, path)
            if os.geteuid() == 0:
                self.assertEqual(st.st_uid, pwd.getpwnam("tiki-queue").pw_uid, path)

    def test_unreachable_remote_recipient_stays_queued_and_is_logged_deferred(self):
        dead = free_port()  # nothing listens there: every try is refused
        self.inst.write_control("smtproutes", f"elsewhere.test:[127.0.0.1]:{dead}")
        with SmtpClient(self.inst.port, source=RELAY_IP) as c:
            self.assertEqual(c.cmd("HELO client.test")[0], 250)
            self.assertEqual(c.cmd(f"MAIL FROM:<{SENDER}>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<far@elsewhere.test>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            code, lines = c.cmd(message("remote").decode("latin-1") + ".")
            self.assertEqual(code, 250, lines)
            c.cmd("QUIT")
        msgid = re.search(r"queued as ([0-9a-f]{16})", lines[0]).group(1)
        line = re.compile(rf"deliver: {msgid} deferred rcpt=far@elsewhere\.test reason=\"[^\"]*{dead}[^\"]*\" attempts=1 ")
        wait_until(lambda: line.search(self.inst.log("deliver")), what="deferred log line")
        self.assertIn(msgid, self.inst.queue_ids())
        # The entry is one file: the message as queued (smtpd's Received first), the envelope,
        # the trailer; there is no queue/mess/.
        stored, envelope = parse_queue_entry((self.inst.prefix / "queue" / "todo" / msgid).read_bytes())
        self.assertTrue(stored.startswith(b"Received: "), stored[:40])
        # Sent raw, without dot-stuffing: smtpd took the leading dot away (RFC 5321 4.5.2).
        self.assertIn(b"\nX-Marker: remote\n\nHello.\nleading dot\nremote line 00000 ", stored)
        self.assertTrue(stored.endswith(b" stay as they are\n"), stored[-40:])
        self.assertEqual(envelope, f"F{SENDER}\0Tfar@elsewhere.test\0\0".encode())
        self.assertFalse((self.inst.prefix / "queue" / "mess").exists())

    def test_messages_queued_without_a_final_newline_or_ending_like_a_trailer_arrive_byte_exact(self):
        # bin/queue takes any bytes; the Maildir file is deliver's two lines and then exactly the
        # message: never the envelope or the trailer that follow it in todo/<id>.
        cases = {
            "nonl": b"Subject: no final newline\nX-Marker: nonl\n\nlast line without LF",
            "fake": b"Subject: fake trailer\nX-Marker: fake\n\nbody\nTQ10000000000000004",
            "nul": b"X-Marker: nul\n\nNUL \0 and bare CR \r kept\n",
        }
        for marker, data in cases.items():
            self.assertEqual(self.inst.inject(data, SENDER, ["bob@example.test"]), 0, marker)
        for marker, data in cases.items():
            wait_until(lambda: self.by_marker("bob@example.test", marker), what=f"message {marker}")
            copies = self.by_marker("bob@example.test", marker)[marker]
            self.assertEqual(copies, [f"Return-Path: <{SENDER}>\nDelivered-To: bob@example.test\n".encode() + data])
        # An empty message: the Maildir file is deliver's two lines and nothing else.
        only_header = f"Return-Path: <{SENDER}>\nDelivered-To: alice@example.test\n".encode()
        before = self.inst.messages("alice@example.test").count(only_header)
        self.assertEqual(self.inst.inject(b"", SENDER, ["alice@example.test"]), 0)
        wait_until(lambda: self.inst.messages("alice@example.test").count(only_header) == before + 1,
                   what="the empty message in alice's Maildir")


class DeliverCrashTest(unittest.TestCase):
    """deliver killed with SIGKILL while 500 messages come in; runsv restarts it."""

    TOTAL = 500

    def test_sigkill_in_the_middle_of_500_messages_loses_nothing(self):
        with Installation() as inst:
            acked = []
            lock = threading.Lock()
            killed = []

            def one(i):
                marker = f"crash-{i:03d}"
                send(inst.port, ["alice@example.test"], message(marker, 200 + 37 * i))
                with lock:
                    acked.append(marker)

            def killer():
                # Kill twice, each time with work in flight; the second time only once runsv
                # has restarted deliver (it waits a second before restarting a fresh crash).
                for threshold in (150, 330):
                    wait_until(lambda: len(acked) >= threshold, timeout=120, what=f"{threshold} acked")
                    pid = wait_until(lambda: (p := inst.service_pid("deliver")) not in (None, *killed) and p,
                                     timeout=15, what="deliver running")
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

            kill_thread = threading.Thread(target=killer)
            kill_thread.start()
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(one, range(self.TOTAL)))
            kill_thread.join()
            self.assertEqual(len(killed), 2)
            wait_until(lambda: inst.service_pid("deliver") not in (None, *killed), timeout=15,
                       what="deliver restarted by runsv")

            def delivered():
                found = {}
                for data in inst.messages("alice@example.test"):
                    found.setdefault(marker_of(data), []).append(data)
                return found

            wait_until(lambda: set(acked) <= set(delivered()), timeout=90, what="every acked message delivered")
            found = delivered()
            duplicates = 0
            for marker in acked:
                sent = message(marker, 200 + 37 * int(marker.split("-")[1])).replace(b"\r\n", b"\n")
                for data in found[marker]:
                    head, received, rest = split_delivered(data)  # whole, never partial
                    self.assertEqual(head, f"Return-Path: <{SENDER}>\nDelivered-To: alice@example.test\n".encode())
                    self.assertTrue(received.startswith(b"Received: "))
                    self.assertEqual(rest, sent, marker)
                duplicates += len(found[marker]) - 1
            print(f"  crash test: {len(acked)} acked, {duplicates} duplicates", flush=True)
            self.assertLessEqual(duplicates, 5)
            wait_until(lambda: not inst.queue_ids(), timeout=30, what="queue empty")


if __name__ == "__main__":
    unittest.main()
