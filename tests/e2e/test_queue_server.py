"""End-to-end: the resident queue server (service/queue, `bin/queue -l socket/queue`) between
smtpd and the queue: what lands, who runs it, what a client sees while it is down, and what it
does with a handoff that is not one (queue/README.md, "The server")."""

import grp
import os
import pwd
import re
import signal
import smtplib
import socket
import stat
import subprocess
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from lib import Installation, process_table, wait_until

MESSAGE = b"From: a@example.net\r\nTo: alice@example.test\r\nSubject: via the server\r\n\r\nbody\r\n"


class QueueServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Installation(accounts=("alice@example.test",)).setup()
        cls.addClassCleanup(cls.inst.teardown)
        cls.socket = cls.inst.prefix / "socket" / "queue"

    def send(self, rcpt="alice@example.test"):
        """One SMTP transaction on the MX port: the reply to the end of DATA (code, text)."""
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.ehlo("client.example.net")
            s.mail("a@example.net")
            s.rcpt(rcpt)
            code, text = s.data(MESSAGE)
            return code, text.decode()

    def queue_log_has(self, pattern):
        wait_until(lambda: re.search(pattern, self.inst.log("queue"), re.M), timeout=10,
                   what=f"{pattern!r} in the queue server's log")

    def test_smtpd_hands_the_message_to_the_server(self):
        before = len(self.inst.messages("alice@example.test"))
        code, text = self.send()
        self.assertEqual(code, 250, text)
        msgid = re.search(r"queued as ([0-9a-f]{16})", text).group(1)
        got = self.inst.wait_for_messages("alice@example.test", before + 1)
        self.assertTrue(got[-1].endswith(b"Subject: via the server\n\nbody\n"), got[-1][-80:])
        # The server's worker stored it (the uid is smtpd's), not a bin/queue run by smtpd.
        uid = pwd.getpwnam("tiki-smtpd").pw_uid if os.geteuid() == 0 else os.geteuid()
        self.queue_log_has(rf"queue: {msgid} queued bytes=\d+ rcpts=1 uid={uid}$")
        self.assertIn(f"{msgid} accepted", self.inst.log("smtpd"))

    def test_server_runs_as_the_queue_owner_with_its_workers(self):
        pid = self.inst.service_pid("queue")
        self.assertIsNotNone(pid)
        table = process_table()
        workers = [p for p, (_comm, ppid, _state) in table.items() if ppid == pid]
        self.assertEqual(len(workers), 8, "control/concurrencyqueue unset: 8 workers")
        mode = os.stat(self.socket.parent)
        self.assertEqual(stat.S_IMODE(mode.st_mode), 0o750)
        if os.geteuid() != 0:
            return
        queue_uid = pwd.getpwnam("tiki-queue").pw_uid
        for p in [pid] + workers:
            with open(f"/proc/{p}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
            self.assertEqual(set(map(int, uids)), {queue_uid}, f"process {p}")
        self.assertEqual(mode.st_uid, queue_uid)
        self.assertEqual(mode.st_gid, grp.getgrnam("tiki-auth").gr_gid)
        self.assertEqual(os.stat(self.socket).st_uid, queue_uid)

    def test_server_down_the_queue_program_takes_the_message(self):
        service = str(self.inst.prefix / "service" / "queue")
        self.assertEqual(self.inst.sv("-w", "10", "down", service).returncode, 0)
        try:
            wait_until(lambda: not self.socket.exists(), timeout=10, what="the socket removed at stop")
            before = len(self.inst.messages("alice@example.test"))
            code, text = self.send()
            self.assertEqual(code, 250, text)
            msgid = re.search(r"queued as ([0-9a-f]{16})", text).group(1)
            self.inst.wait_for_messages("alice@example.test", before + 1)
            wait_until(lambda: re.search(rf"{msgid} accepted .* queue=\"queue server socket/queue: No such file or "
                                         r"directory: bin/queue\"$", self.inst.log("smtpd"), re.M),
                       timeout=10, what="the fallback in smtpd's log")
            self.assertIn(f"queue: {msgid} queued bytes=", self.inst.log("smtpd"))  # bin/queue's own line
        finally:
            self.inst.sv("-w", "10", "up", service)
            wait_until(self.socket.is_socket, timeout=10, what="the server back")

    def test_a_big_message_goes_to_the_queue_program_whole(self):
        body = b"".join(b"line %07d of a big message\r\n" % i for i in range(50000))  # 1.5 MB
        before = len(self.inst.messages("alice@example.test"))
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=60) as s:
            s.ehlo("client.example.net")
            s.mail("a@example.net")
            s.rcpt("alice@example.test")
            code, text = s.data(b"Subject: big\r\n\r\n" + body)
        self.assertEqual(code, 250, text)
        got = self.inst.wait_for_messages("alice@example.test", before + 1)[-1]
        self.assertTrue(got.endswith(body.replace(b"\r\n", b"\n")))
        msgid = re.search(r"queued as ([0-9a-f]{16})", text.decode()).group(1)
        wait_until(lambda: f'{msgid} accepted' in self.inst.log("smtpd") and
                   'queue="message over 1048576 bytes: bin/queue"' in self.inst.log("smtpd"),
                   timeout=10, what="the big message's way in smtpd's log")

    def test_pipes_instead_of_sealed_files_are_refused_at_once(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.socket))
            r1, w1 = os.pipe()
            r2, w2 = os.pipe()
            try:
                start = time.monotonic()
                socket.send_fds(s, [b"0123456789abcdef\n"], [r1, r2])
                self.assertEqual(s.recv(2), bytes([54]))
                self.assertLess(time.monotonic() - start, 5)  # not the 120 s read deadline
            finally:
                for fd in (r1, w1, r2, w2):
                    os.close(fd)
        self.queue_log_has(r"refused: malformed request: not a sealed memfd$")

    def test_a_handoff_without_its_files_is_refused_and_logged(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.socket))
            s.sendall(b"0123456789abcdef\n")  # the id, but no fds
            self.assertEqual(s.recv(2), bytes([54]))
        self.queue_log_has(r"handoff from uid \d+ refused: malformed request: 17 bytes, 0 fds$")

    def test_an_idle_connection_holds_one_worker_only(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
            idle.connect(str(self.socket))  # says nothing: its worker waits 10 s, the others serve
            start = time.monotonic()
            code, text = self.send()
            self.assertEqual(code, 250, text)
            self.assertLess(time.monotonic() - start, 8)
            idle.settimeout(15)
            self.assertEqual(idle.recv(2), bytes([54]))  # then it is answered and closed
        self.queue_log_has(r"refused: no request in time$")

    @unittest.skipUnless(os.geteuid() == 0, "bin/queue is set-uid only in a root installation")
    def test_set_uid_queue_refuses_to_serve(self):
        path = self.inst.prefix / "socket" / "rogue"
        run = subprocess.run([self.inst.bin("queue"), "-l", str(path)], capture_output=True, text=True,
                             timeout=10, cwd="/")
        self.assertEqual(run.returncode, 100)
        self.assertIn("not set-uid", run.stderr)
        self.assertFalse(path.exists())


class QueueServerCrashTest(unittest.TestCase):
    """The queue server killed while 300 messages come in: first its parent alone (the workers
    must follow it), then the parent and every worker at once. Senders retry a temporary
    failure, as MTAs do; every message acknowledged with 250 is delivered, whole."""

    TOTAL = 300

    def test_sigkill_loses_no_acknowledged_message_and_leaves_no_worker(self):
        with Installation(accounts=("alice@example.test",)) as inst:
            acked, lock, killed = [], threading.Lock(), []

            def body(i):
                return (f"From: <s@example.net>\r\nX-Marker: m{i:03d}\r\n\r\n" +
                        f"line {i} of a message\r\n" * (1 + i % 40)).encode()

            def one(i):
                for _ in range(100):
                    try:
                        with smtplib.SMTP("127.0.0.1", inst.port, timeout=30) as s:
                            s.sendmail("s@example.net", ["alice@example.test"], body(i))
                        with lock:
                            acked.append(i)
                        return
                    except smtplib.SMTPResponseException as e:
                        if e.smtp_code // 100 != 4:
                            raise
                        time.sleep(0.1)  # 451 while the server restarts: try again, as an MTA would
                raise AssertionError(f"message {i} never accepted")

            def server():
                return wait_until(lambda: (p := inst.service_pid("queue")) not in (None, *killed) and p,
                                  timeout=15, what="the queue server running")

            def workers_of(pid):
                return [p for p, (_comm, ppid, _state) in process_table().items() if ppid == pid]

            def killer():
                wait_until(lambda: len(acked) >= 80, timeout=120, what="80 acked")
                parent = server()
                orphans = workers_of(parent)
                os.kill(parent, signal.SIGKILL)
                killed.append(parent)
                # Told by the kernel (PR_SET_PDEATHSIG), the old workers leave.
                wait_until(lambda: not set(orphans) & set(process_table()), timeout=10, what="old workers gone")
                wait_until(lambda: len(acked) >= 180, timeout=120, what="180 acked")
                parent = server()
                for pid in [parent] + workers_of(parent):
                    os.kill(pid, signal.SIGKILL)
                killed.append(parent)

            kill_thread = threading.Thread(target=killer)
            kill_thread.start()
            with ThreadPoolExecutor(max_workers=12) as pool:
                list(pool.map(one, range(self.TOTAL)))
            kill_thread.join()
            self.assertEqual(len(killed), 2)
            self.assertEqual(sorted(acked), list(range(self.TOTAL)))

            def delivered():
                found = {}
                for data in inst.messages("alice@example.test"):
                    m = re.search(rb"^X-Marker: m(\d+)$", data, re.M)
                    found.setdefault(int(m.group(1)), []).append(data)
                return found

            wait_until(lambda: set(acked) <= set(delivered()), timeout=90, what="every acked message delivered")
            found = delivered()
            for i in acked:
                for data in found[i]:  # whole, never cut short
                    self.assertTrue(data.endswith(body(i).split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")), i)
            duplicates = sum(len(v) - 1 for v in found.values())
            print(f"  queue server crash test: {len(acked)} acked, {duplicates} duplicates", flush=True)
            self.assertLessEqual(duplicates, 12)


if __name__ == "__main__":
    unittest.main()
