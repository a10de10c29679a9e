"""End-to-end: queue, sendmail and mailq as real binaries in an installed prefix (no services:
nothing delivers, so every entry stays in the queue to be looked at)."""

import os
import re
import signal
import subprocess
import time
import unittest

from lib import Installation, parse_queue_entry, wait_until

ME = "mx.example.test"
ID = re.compile(r"^[0-9a-f]{16}$")


def parse_envelope(data):
    """(sender, [recipients]) of an envelope file F<sender>\\0T<rcpt>\\0...\\0."""
    assert data.endswith(b"\0\0"), data
    fields = data[:-2].split(b"\0")
    assert fields[0].startswith(b"F") and all(f.startswith(b"T") for f in fields[1:]), data
    return fields[0][1:].decode(), [f[1:].decode() for f in fields[1:]]


class QueueTestCase(unittest.TestCase):
    """One installation per class; the queue is emptied before each test."""

    @classmethod
    def setUpClass(cls):
        cls.inst = Installation(accounts=(), start_services=False).setup()
        cls.queue = cls.inst.prefix / "queue"

    @classmethod
    def tearDownClass(cls):
        cls.inst.teardown()

    def setUp(self):
        for sub in ("todo", "done", "tmp"):
            for name in os.listdir(self.queue / sub):
                os.unlink(self.queue / sub / name)

    def files(self, sub):
        return sorted(os.listdir(self.queue / sub))

    def only_entry(self):
        """The one committed entry, one file todo/<id> (message, envelope, trailer):
        (id, message bytes, sender, recipients)."""
        ids = self.files("todo")
        self.assertEqual(len(ids), 1, f"todo/ holds {ids}")
        self.assertEqual(self.files("tmp"), [])
        self.assertFalse((self.queue / "mess").exists(), "no queue/mess/ in this layout")
        message, envelope = parse_queue_entry((self.queue / "todo" / ids[0]).read_bytes())
        sender, rcpts = parse_envelope(envelope)
        return ids[0], message, sender, rcpts

    def env(self, **extra):
        return dict(os.environ, TIKIMAIL_HOME=str(self.inst.prefix), **extra)

    def sendmail(self, args, message, **extra):
        return subprocess.run([self.inst.bin("sendmail"), *args], input=message, capture_output=True,
                              env=self.env(**extra), timeout=30)


class SendmailTest(QueueTestCase):
    def test_sendmail_t_takes_to_cc_bcc_and_removes_bcc(self):
        message = (b"From: Web <web@example.test>\r\n"
                   b"To: Alice <alice@example.test>, team: bob@example.test;\r\n"
                   b"Cc: carol@example.test (Carol)\r\n"
                   b"Bcc: hidden@example.test,\r\n  \"secret agent\"@example.test\r\n"
                   b"Subject: sendmail -t\r\n\r\nHello.\r\n")
        out = self.sendmail(["-t"], message)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr, b"", "success prints nothing")
        _, body, _, rcpts = self.only_entry()
        self.assertEqual(rcpts, ["alice@example.test", "bob@example.test", "carol@example.test",
                                 "hidden@example.test", "secret agent@example.test"])
        self.assertNotIn(b"bcc:", body.lower())
        self.assertNotIn(b"hidden@", body)
        self.assertNotIn(b"\r", body)
        self.assertIn(b"\nTo: Alice <alice@example.test>, team: bob@example.test;\n", body)
        self.assertIn(b"\nSubject: sendmail -t\n", body)
        self.assertTrue(body.endswith(b"\n\nHello.\n"), body)

    def test_sendmail_adds_received_date_message_id_and_from(self):
        out = self.sendmail(["-F", "Cron Daemon", "alice@example.test"], b"Subject: added\n\nbody\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        msgid, body, sender, rcpts = self.only_entry()
        head = body.split(b"\n\n", 1)[0].decode()
        self.assertRegex(head, r"^Received: \(tikimail sendmail invoked by uid \d+\); \w{3}, \d+ \w{3} \d{4} "
                               r"\d\d:\d\d:\d\d [+-]\d{4}\n")
        self.assertRegex(head, r"\nDate: \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}(\n|$)")
        self.assertIn(f"\nMessage-ID: <{msgid}@{ME}>", head)
        self.assertIn(f"\nFrom: Cron Daemon <{sender}>", head)
        self.assertTrue(sender.endswith("@" + ME), sender)
        self.assertEqual(rcpts, ["alice@example.test"])

    def test_sendmail_f_sets_the_envelope_sender(self):
        out = self.sendmail(["-f", "bounces@example.test", "alice@example.test"], b"Subject: f\n\nx\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        _, body, sender, _ = self.only_entry()
        self.assertEqual(sender, "bounces@example.test")
        self.assertIn(b"\nFrom: bounces@example.test\n", body)

    def test_sendmail_f_empty_is_the_null_sender(self):
        out = self.sendmail(["-f", "<>", "alice@example.test"], b"Subject: null\n\nx\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.only_entry()[2], "")

    def test_lone_dot_line_ends_the_message_without_i(self):
        out = self.sendmail(["alice@example.test"], b"Subject: dot\n\nbefore\n.\nafter\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        body = self.only_entry()[1]
        self.assertTrue(body.endswith(b"\n\nbefore\n"), body)
        self.assertNotIn(b"after", body)

    def test_lone_dot_line_is_text_with_i_and_oi(self):
        for flag in ("-i", "-oi"):
            with self.subTest(flag=flag):
                self.setUp()
                out = self.sendmail([flag, "alice@example.test"], b"Subject: dot\r\n\r\nbefore\r\n.\r\nafter\r\n")
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertTrue(self.only_entry()[1].endswith(b"\n\nbefore\n.\nafter\n"))

    def test_bare_recipient_name_is_qualified_with_control_me(self):
        out = self.sendmail(["postmaster"], b"Subject: bare\n\nx\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.only_entry()[3], [f"postmaster@{ME}"])

    def test_invalid_recipient_is_a_data_error_and_queues_nothing(self):
        out = self.sendmail(["not an address@@"], b"Subject: x\n\nx\n")
        self.assertEqual(out.returncode, 65)
        self.assertIn(b"sendmail: fatal: recipient", out.stderr)
        self.assertEqual(self.files("todo"), [])

    def test_no_recipients_is_a_usage_error(self):
        out = self.sendmail([], b"Subject: x\n\nx\n")
        self.assertEqual(out.returncode, 64)
        self.assertEqual(self.files("todo"), [])

    def test_message_over_databytes_is_refused_with_a_clear_message(self):
        self.inst.write_control("databytes", "1000")
        try:
            out = self.sendmail(["-f", "cgi@example.test", "alice@example.test"],
                                b"Subject: big\nX-Marker: too-big\n\n" + b"x" * 998 + b"\n")
            self.assertEqual(out.returncode, 65)
            self.assertIn(b"larger than 1000 bytes", out.stderr)
            # Not queued; instead the sender gets a notice, marked as one in its envelope,
            # that carries the refused message's header section only.
            msgid, notice, sender, rcpts = self.only_entry()
            self.assertEqual((sender, rcpts), ("\x01bounce\x01", ["cgi@example.test"]))
            self.assertIn(b"Content-Type: multipart/report; report-type=delivery-status;", notice)
            self.assertIn(b"Status: 5.3.4", notice)
            self.assertIn(b"Content-Type: text/rfc822-headers", notice)
            self.assertIn(b"X-Marker: too-big", notice)
            self.assertNotIn(b"x" * 100, notice)
            os.unlink(self.queue / "todo" / msgid)
            # 1000 bytes exactly, counted with CRLF line ends, is accepted.
            out = self.sendmail(["alice@example.test"], b"S: b\r\n\r\n" + b"x" * 990 + b"\r\n")
            self.assertEqual(out.returncode, 0, out.stderr)
        finally:
            self.inst.write_control("databytes", "20971520")

    def test_bp_lists_the_queue_like_mailq(self):
        self.assertEqual(self.sendmail(["alice@example.test"], b"Subject: bp\n\nx\n").returncode, 0)
        out = self.sendmail(["-bp"], b"")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"1 message in the queue", out.stdout)


class QueueProgramTest(QueueTestCase):
    ENVELOPE = b"Fsender@example.test\0Talice@example.test\0Tbob@example.test\0\0"

    def start_queue(self, **extra):
        """bin/queue with a pipe on fd 0 (message) and one on fd 1 (envelope)."""
        env_read, env_write = os.pipe()
        proc = subprocess.Popen([self.inst.bin("queue")], stdin=subprocess.PIPE, stdout=env_read,
                                stderr=subprocess.PIPE, env=self.env(**extra))
        os.close(env_read)
        return proc, env_write

    def test_normal_run_leaves_exactly_one_complete_entry(self):
        message = b"Subject: q\n\n" + b"line\n" * 20000
        proc, env_write = self.start_queue(MSGID="0123456789abcdef")
        proc.stdin.write(message)
        proc.stdin.close()
        os.write(env_write, self.ENVELOPE)
        os.close(env_write)
        self.assertEqual(proc.wait(timeout=30), 0)
        stderr = proc.stderr.read().decode()
        msgid, body, sender, rcpts = self.only_entry()
        self.assertEqual(msgid, "0123456789abcdef")
        self.assertEqual(body, message)
        self.assertEqual((sender, rcpts), ("sender@example.test", ["alice@example.test", "bob@example.test"]))
        self.assertEqual(stderr, f"queue: {msgid} queued bytes={len(message)} rcpts=2\n")
        # One file: the message, the envelope as given, the trailer with the message length.
        stored = (self.queue / "todo" / msgid).read_bytes()
        self.assertEqual(stored, message + self.ENVELOPE + b"\nTQ1" + b"%016x" % len(message))
        st = os.stat(self.queue / "todo" / msgid)
        self.assertEqual(st.st_mode & 0o777, 0o640)
        self.assertEqual(st.st_nlink, 1)

    def test_empty_message_and_one_that_ends_like_a_trailer_are_stored_exactly(self):
        tricky = b"Subject: t\n\nno newline, then a fake trailer\nTQ10000000000000003"
        for message in (b"", b"no newline at the end", tricky):
            with self.subTest(message=message):
                self.setUp()
                proc, env_write = self.start_queue()
                proc.stdin.write(message)
                proc.stdin.close()
                os.write(env_write, self.ENVELOPE)
                os.close(env_write)
                self.assertEqual(proc.wait(timeout=30), 0)
                proc.stderr.close()
                msgid, body, sender, rcpts = self.only_entry()
                self.assertEqual(body, message)
                self.assertEqual(rcpts, ["alice@example.test", "bob@example.test"])
                self.assertEqual((self.queue / "todo" / msgid).read_bytes()[-20:], b"\nTQ1" + b"%016x" % len(message))

    def test_a_new_installation_has_no_queue_mess_and_a_second_install_leaves_an_old_one_alone(self):
        self.assertFalse((self.queue / "mess").exists())
        old = self.queue / "mess"
        old.mkdir()
        (old / "00000001aaaaaaaa").write_bytes(b"a message of the older layout\n")
        try:
            self.inst.install()
            self.assertEqual((old / "00000001aaaaaaaa").read_bytes(), b"a message of the older layout\n")
        finally:
            (old / "00000001aaaaaaaa").unlink()
            old.rmdir()

    def test_sigkill_mid_message_leaves_no_entry(self):
        proc, env_write = self.start_queue()
        proc.stdin.write(b"Subject: half\n\n" + b"x" * 100000)
        proc.stdin.flush()
        wait_until(lambda: any(ID.match(n) and os.path.getsize(self.queue / "tmp" / n) > 0
                               for n in self.files("tmp")), what="queue writing tmp/<id>")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        os.close(env_write)
        proc.stdin.close()
        proc.stderr.close()
        self.assertEqual(self.files("todo"), [], "the only file is in tmp/, never in todo/")
        self.assertEqual(len(self.files("tmp")), 1)

    def test_sigkill_while_waiting_for_the_envelope_leaves_no_entry(self):
        proc, env_write = self.start_queue()
        proc.stdin.write(b"Subject: whole\n\nbody\n")
        proc.stdin.close()
        os.write(env_write, b"Fsender@example.test\0Talice")  # the envelope stops half-way
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        os.close(env_write)
        proc.stderr.close()
        self.assertEqual(self.files("todo"), [])

    def test_caller_that_gives_up_before_the_envelope_gets_54_and_nothing_queued(self):
        proc, env_write = self.start_queue()
        proc.stdin.write(b"Subject: aborted\n\nbody\n")
        proc.stdin.close()
        os.close(env_write)  # no envelope at all: QueueClient::abort
        self.assertEqual(proc.wait(timeout=10), 54)
        proc.stderr.close()
        self.assertEqual(self.files("todo") + self.files("tmp"), [])

    def test_malformed_envelope_is_91_and_nothing_queued(self):
        proc, env_write = self.start_queue()
        proc.stdin.write(b"x\n")
        proc.stdin.close()
        os.write(env_write, b"Tno-sender@example.test\0\0")
        os.close(env_write)
        self.assertEqual(proc.wait(timeout=10), 91)
        proc.stderr.close()
        self.assertEqual(self.files("todo") + self.files("tmp"), [])


class MailqTest(QueueTestCase):
    def test_mailq_lists_entries_with_recipient_states(self):
        out = self.sendmail(["-f", "from@example.test", "alice@example.test", "bob@example.test"],
                            b"Subject: mailq\n\nx\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        msgid, body, _, _ = self.only_entry()
        (self.queue / "done" / msgid).write_text("1\n")  # as deliver records bob finished
        out = subprocess.run([self.inst.bin("mailq")], capture_output=True, text=True, env=self.env(), timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertRegex(lines[0], rf"^{msgid}  age \d+s  size {len(body)}  from <from@example.test>$")
        self.assertEqual(lines[1:], ["  queued    <alice@example.test>", "  done      <bob@example.test>",
                                     "1 message in the queue"])

    def test_mailq_on_an_empty_queue_says_so(self):
        out = subprocess.run([self.inst.bin("mailq")], capture_output=True, text=True, env=self.env(), timeout=30)
        self.assertEqual((out.returncode, out.stdout), (0, "0 messages in the queue\n"))


if __name__ == "__main__":
    unittest.main()
