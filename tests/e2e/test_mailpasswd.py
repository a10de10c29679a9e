"""End-to-end: the built mailpasswd against a temporary prefix (TIKIMAIL_HOME), with the
password on a pipe and typed on a terminal (a pty). TIKIMAIL_BIN overrides the binary folder."""

import os
import pty
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from lib import BIN as DEFAULT_BIN

BIN = Path(os.environ.get("TIKIMAIL_BIN", DEFAULT_BIN))
MAILPASSWD = str(BIN / "mailpasswd")


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class MailpasswdTest(unittest.TestCase):
    def setUp(self):
        self.prefix = Path(tempfile.mkdtemp(prefix="tikimail-e2e-mailpasswd-"))
        (self.prefix / "control").mkdir()
        (self.prefix / "control" / "rcpthosts").write_text("# ours\nexample.test\n")
        self.env = dict(os.environ, TIKIMAIL_HOME=str(self.prefix))

    def tearDown(self):
        shutil.rmtree(self.prefix, ignore_errors=True)

    def run_mailpasswd(self, *args, stdin=""):
        return subprocess.run([MAILPASSWD, *args], input=stdin, text=True, capture_output=True, env=self.env,
                              timeout=30)

    def add(self, address, password="s3cret pass", *options):
        out = self.run_mailpasswd("add", address, *options, stdin=password + "\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        return out

    def test_add_with_password_on_stdin_creates_files_and_maildir(self):
        out = self.add("alice@example.test", "s3cret pass", "--plan", "business")
        self.assertEqual(out.stdout, "added alice@example.test; mailbox mail/example.test/alice/Maildir\n")
        accounts = self.prefix / "users" / "accounts"
        recipients = self.prefix / "users" / "recipients"
        self.assertEqual(mode(accounts), 0o600)
        self.assertEqual(mode(recipients), 0o644)
        self.assertEqual(recipients.read_text(), "alice@example.test\n")
        line = [l for l in accounts.read_text().splitlines() if l and not l.startswith("#")]
        self.assertEqual(len(line), 1)
        fields = line[0].split(":")
        self.assertEqual(fields[0], "alice@example.test")
        self.assertTrue(fields[1].startswith("$argon2id$v=19$"))
        self.assertEqual(fields[2:], ["business", "-", "0", ""])
        self.assertNotIn("s3cret", accounts.read_text())
        maildir = self.prefix / "mail" / "example.test" / "alice" / "Maildir"
        for sub in ("", "cur", "new", "tmp"):
            self.assertEqual(mode(maildir / sub), 0o700, sub)
        self.assertEqual(mode(maildir.parent), 0o750)

    def test_list_shows_accounts_without_any_hash(self):
        self.add("bob@example.test")
        self.add("alice@example.test", "pw", "--quota", "536870912")
        out = self.run_mailpasswd("list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "bob@example.test plan=- quota=- apop=off\n"
                                     "alice@example.test plan=- quota=536870912 apop=off\n")
        self.assertNotIn("$", out.stdout)
        self.assertEqual((self.prefix / "users" / "recipients").read_text(),
                         "alice@example.test\nbob@example.test\n")

    def test_del_removes_the_account_and_keeps_the_mailbox(self):
        self.add("alice@example.test")
        self.add("bob@example.test")
        out = self.run_mailpasswd("del", "alice@example.test")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("stays on disk", out.stdout)
        self.assertEqual(self.run_mailpasswd("list").stdout, "bob@example.test plan=- quota=- apop=off\n")
        self.assertEqual((self.prefix / "users" / "recipients").read_text(), "bob@example.test\n")
        self.assertTrue((self.prefix / "mail" / "example.test" / "alice" / "Maildir" / "new").is_dir())
        self.assertEqual(mode(self.prefix / "users" / "accounts"), 0o600)
        self.assertEqual(mode(self.prefix / "users" / "recipients"), 0o644)
        again = self.run_mailpasswd("del", "alice@example.test")
        self.assertEqual(again.returncode, 100)
        self.assertEqual(again.stderr, "mailpasswd: fatal: alice@example.test: no such account\n")

    def test_permanent_errors_exit_100_and_change_nothing(self):
        out = self.run_mailpasswd("add", "alice@elsewhere.test", stdin="pw\n")
        self.assertEqual(out.returncode, 100)
        self.assertTrue(out.stderr.startswith("mailpasswd: "), out.stderr)
        self.assertIn("not in control/rcpthosts", out.stderr)
        self.assertFalse((self.prefix / "users" / "accounts").exists())
        self.assertFalse((self.prefix / "mail").exists())
        self.add("alice@example.test")
        before = (self.prefix / "users" / "accounts").read_bytes()
        for args, stdin in ((("add", "alice@example.test"), "other\n"), (("add", "../x@example.test"), "pw\n"),
                            (("add", "carol@example.test"), ""), (("add", "carol@example.test"), "\n"),
                            (("add", "carol@example.test", "--plan", "gold"), "pw\n"), ((), ""), (("frob",), ""),
                            (("passwd", "carol@example.test"), "pw\n")):
            out = self.run_mailpasswd(*args, stdin=stdin)
            self.assertEqual(out.returncode, 100, (args, out.stderr))
            self.assertTrue(out.stderr.startswith("mailpasswd: "), out.stderr)
        self.assertEqual((self.prefix / "users" / "accounts").read_bytes(), before)

    def test_passwd_changes_only_the_hash(self):
        self.add("alice@example.test", "old", "--plan", "personal", "--quota", "100")
        before = (self.prefix / "users" / "accounts").read_text().splitlines()[-1].split(":")
        out = self.run_mailpasswd("passwd", "alice@example.test", stdin="new\r\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        after = (self.prefix / "users" / "accounts").read_text().splitlines()[-1].split(":")
        self.assertNotEqual(after[1], before[1])
        self.assertEqual(after[:1] + after[2:], before[:1] + before[2:])

    def test_concurrent_adds_all_land(self):
        procs = [subprocess.Popen([MAILPASSWD, "add", f"user{i}@example.test"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=self.env)
                 for i in range(8)]
        for p in procs:
            p.stdin.write("pw\n")
            p.stdin.close()
        for p in procs:
            self.assertEqual(p.wait(timeout=60), 0, p.stderr.read())
        want = "".join(sorted(f"user{i}@example.test\n" for i in range(8)))
        self.assertEqual((self.prefix / "users" / "recipients").read_text(), want)
        self.assertEqual(len(self.run_mailpasswd("list").stdout.splitlines()), 8)

    def on_terminal(self, args, typed):
        """Runs mailpasswd with a pty as its terminal, typing each of `typed` after a prompt.
        Returns (exit status, everything the terminal showed)."""
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(MAILPASSWD, [MAILPASSWD, *args], self.env)
        shown = b""
        answered = 0  # how much of `shown` had been seen at the last answer
        pending = list(typed)
        deadline = time.monotonic() + 30
        while True:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                os.kill(pid, signal.SIGKILL)
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            # A new prompt (not the echoed newline after an answer) wants the next line.
            if pending and shown[answered:].rstrip().endswith(b":"):
                os.write(fd, pending.pop(0).encode() + b"\n")
                answered = len(shown)
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")

    def test_terminal_prompts_twice_without_echo(self):
        code, shown = self.on_terminal(["add", "alice@example.test"], ["typed secret", "typed secret"])
        self.assertEqual(code, 0, shown)
        self.assertIn("New password for alice@example.test:", shown)
        self.assertIn("Retype the new password:", shown)
        self.assertNotIn("typed secret", shown)
        self.assertIn("added alice@example.test", shown)

    def test_terminal_passwords_that_differ_are_refused(self):
        code, shown = self.on_terminal(["add", "alice@example.test"], ["one", "two"])
        self.assertEqual(code, 100, shown)
        self.assertIn("the two passwords differ", shown)
        self.assertFalse((self.prefix / "users" / "accounts").exists())

    def test_terminal_interrupt_ends_the_run_by_the_signal(self):
        code, shown = self.on_terminal(["add", "alice@example.test"], ["\x03"])  # ^C at the prompt
        self.assertEqual(code, -signal.SIGINT, shown)
        self.assertFalse((self.prefix / "users" / "accounts").exists())


if __name__ == "__main__":
    unittest.main()
