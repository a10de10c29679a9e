"""End-to-end: remote delivery, retries and bounces (deliver/README.md, deliver-remote/README.md).

The remote MX is Postfix's smtp-sink on a loopback port, reached through control/smtproutes;
for TLS it is a second tikimail installation. Mail for remote domains comes in from the relay
client 127.0.0.1 on the MX port. Bounces land in local Maildirs and are read with Python's
email parser, as a mail client would.
"""

import email
import grp
import pwd
import email.policy
import re
import smtplib
import ssl
import subprocess
import time
import unittest
from pathlib import Path

from lib import IS_ROOT, RELAY_IP, Installation, SmtpSink, make_ca_issued_certificate, process_table, wait_until

SENDER = "alice@example.test"


def message(marker, extra=""):
    return (f"From: <{SENDER}>\r\nTo: <someone@far.test>\r\nSubject: remote test {marker}\r\n"
            f"X-Marker: {marker}\r\n{extra}\r\nHello from {marker}.\r\n.leading dot\r\nbye\r\n").encode()


def send(inst, sender, rcpts, data):
    with smtplib.SMTP("127.0.0.1", inst.port, source_address=(RELAY_IP, 0), timeout=30) as s:
        s.sendmail(sender, rcpts, data)


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def report_parts(msg):
    """(text part, list of delivery-status blocks as Messages, original part) of a DSN."""
    parts = msg.get_payload()
    status = parts[1].get_payload()  # message/delivery-status: per-message block, then one per rcpt
    return parts[0], status, parts[2]


def without_sink_received(body):
    """What the client sent, in LF form: smtp-sink's dump puts a Received field of its own
    first and ends with one more empty line."""
    body = body.replace(b"\r\n", b"\n")
    if body.startswith(b"Received: "):
        end = body.index(b"\n") + 1
        while body[end:end + 1] in (b" ", b"\t"):  # folded continuation lines
            end = body.index(b"\n", end) + 1
        body = body[end:]
    assert body.endswith(b"\n\n"), body[-40:]
    return body[:-1]


def notices(inst, address):
    return [parse(m) for m in inst.messages(address) if b"multipart/report" in m]


class RemoteTest(unittest.TestCase):
    """One installation; each test points far.test (and friends) at its own smtp-sink."""

    @classmethod
    def setUpClass(cls):
        cls.inst = Installation(control={"retrybase": "60"}).setup()

    @classmethod
    def tearDownClass(cls):
        cls.inst.teardown()

    def route(self, *routes):
        self.inst.write_control("smtproutes", "\n".join(routes))

    def deliver_log(self, marker_id=None):
        return self.inst.log("deliver")

    def flush(self):
        self.assertEqual(self.inst.sv("alarm", str(self.inst.prefix / "service" / "deliver")).returncode, 0)

    def wait_log(self, pattern, timeout=20):
        wait_until(lambda: re.search(pattern, self.inst.log("deliver")), timeout=timeout,
                   what=f"deliver log line matching {pattern}")
        return re.findall(pattern, self.inst.log("deliver"))

    def wait_queue_empty(self, timeout=20):
        wait_until(lambda: not self.inst.queue_ids(), timeout=timeout, what="an empty queue")

    def mailq(self):
        return subprocess.run([self.inst.bin("mailq")], capture_output=True, text=True).stdout

    def test_recipients_of_one_domain_share_one_connection(self):
        before = len(notices(self.inst, SENDER))
        with SmtpSink() as sink:
            self.route(f"far.test:[127.0.0.1]:{sink.port}")
            rcpts = ["one@far.test", "two@far.test", "Three@Far.test"]
            send(self.inst, SENDER, rcpts, message("share"))
            for r in ("one", "two", "three"):
                self.wait_log(rf"delivered rcpt={r}@far\.test relay=\S+:{sink.port} reply=\"250")
            got = sink.transactions()
            self.assertEqual(len(got), 1, "one transaction (one connection) for three recipients")
            mail, rcpt_args, body = got[0]
            self.assertTrue(mail.startswith(f"<{SENDER}>"), mail)
            # The domain lowercased, the local part as given (RFC 5321 2.4: the destination's to read).
            self.assertEqual(rcpt_args, ["<one@far.test>", "<two@far.test>", "<Three@far.test>"])
            # The message as queued: smtpd's Received header, then the bytes sent, dot intact.
            self.assertIn(b"X-Marker: share\n", body)
            self.assertIn(b"\n.leading dot\nbye\n", body)
            self.assertNotIn(b"\r", body.replace(b"\r\n", b"\n"))
            self.wait_queue_empty()
            self.assertEqual(len(notices(self.inst, SENDER)), before)

    def test_the_peer_gets_exactly_the_message_never_the_envelope_or_trailer_after_it(self):
        # deliver-remote gets the entry file on fd 0 and the message length as -l: it sends that
        # many bytes (CRLF and a last line end added on the wire) and nothing of what follows.
        cases = [b"Subject: no final newline\nX-Marker: rnonl\n\nlast line without LF",
                 b"Subject: fake trailer\nX-Marker: rfake\n\nbody\nTQ10000000000000004"]
        with SmtpSink() as sink:
            self.route(f"far.test:[127.0.0.1]:{sink.port}")
            for data in cases:
                self.assertEqual(self.inst.inject(data, SENDER, ["exact@far.test", "bob@example.test"]), 0)
            got = sink.wait_for(len(cases))
            bodies = sorted(without_sink_received(body) for _, _, body in got)
            self.assertEqual(bodies, sorted(d + b"\n" for d in cases))
            for _, rcpts, body in got:
                self.assertEqual(rcpts, ["<exact@far.test>"])
                self.assertNotIn(b"bob@example.test", body)  # in the envelope, after the message
                self.assertNotIn(b"\0", body)
            self.wait_queue_empty()

    def test_a_4xx_is_retried_and_delivered_once_the_peer_accepts(self):
        before = len(notices(self.inst, SENDER))
        with SmtpSink(["-r", "RCPT"]) as sink:
            self.route(f"far.test:[127.0.0.1]:{sink.port}")
            send(self.inst, SENDER, ["later@far.test"], message("retry"))
            self.wait_log(r"deferred rcpt=later@far\.test relay=\S+ reply=\"450 4\.3\.0 [^\"]*\" attempts=1 next=60s")
            # info/<id> is written when the try ends, just after the log line.
            wait_until(lambda: "deferred  <later@far.test>" in self.mailq(), what="mailq showing the deferral")
            listing = self.mailq()
            self.assertRegex(listing, r"deferred  <later@far\.test>  attempts 1  next in \S+")
            self.assertRegex(listing, rf"last: \S+:{sink.port} said \"450 4\.3\.0")
            self.assertEqual(sink.transactions(), [])
            sink.restart([])
            self.flush()  # documented: sv alarm makes every waiting recipient due now
            self.wait_log(r"delivered rcpt=later@far\.test ")
            self.wait_queue_empty()
            got = sink.transactions()
            self.assertEqual(len(got), 1)
            self.assertIn(b"X-Marker: retry\n", got[0][2])
            self.assertEqual(len(notices(self.inst, SENDER)), before)

    def test_a_5xx_bounces_to_the_sender_as_an_rfc3464_report(self):
        before = len(self.inst.messages(SENDER))
        with SmtpSink(["-f", "RCPT", "-B", "550 5.1.1 Recipient address rejected: no such user"]) as sink:
            self.route(f"far.test:[127.0.0.1]:{sink.port}")
            send(self.inst, SENDER, ["gone@far.test"], message("hard"))
            self.wait_log(r"failed rcpt=gone@far\.test relay=\S+ reply=\"550 5\.1\.1 Recipient address rejected")
            self.wait_log(r"bounced to=alice@example\.test rcpts=1")
            got = self.inst.wait_for_messages(SENDER, before + 1)
            self.assertEqual(len(got), before + 1)
            dsn = parse(got[-1])
            self.assertEqual(dsn.get_content_type(), "multipart/report")
            self.assertEqual(dsn.get_param("report-type"), "delivery-status")
            self.assertTrue(dsn["From"].startswith("Mail Delivery System <MAILER-DAEMON@"))
            self.assertEqual(dsn["Auto-Submitted"], "auto-replied")
            text, status, original = report_parts(dsn)
            self.assertEqual(text.get_content_type(), "text/plain")
            human = text.get_payload(decode=True).decode("utf-8")
            self.assertIn("gone@far.test", human)
            self.assertIn("配信", human)  # the Japanese half is there
            self.assertEqual(status[0]["Reporting-MTA"], "dns; mx.example.test")
            rcpt = status[1]
            self.assertEqual(rcpt["Final-Recipient"], "rfc822; gone@far.test")
            self.assertEqual(rcpt["Action"], "failed")
            self.assertEqual(rcpt["Status"], "5.1.1")
            self.assertIn("550 5.1.1 Recipient address rejected: no such user", " ".join(rcpt["Diagnostic-Code"].split()))
            self.assertEqual(original.get_content_type(), "message/rfc822")
            self.assertEqual(original.get_payload()[0]["X-Marker"], "hard")
            # Delivered from the null sender, and only once.
            self.assertTrue(got[-1].startswith(b"Return-Path: <>\n"))
            self.wait_queue_empty()
            time.sleep(1)
            self.assertEqual(len(self.inst.messages(SENDER)), before + 1)

    def test_a_bounce_to_a_missing_sender_double_bounces_to_postmaster_once(self):
        postmaster = SENDER  # control/postmaster of the installation
        before = len(notices(self.inst, postmaster))
        with SmtpSink(["-f", "RCPT"]) as sink:
            self.route(f"far.test:[127.0.0.1]:{sink.port}")
            send(self.inst, "nobody@example.test", ["x@far.test"], message("double"))
            self.wait_log(r"bounced to=nobody@example\.test rcpts=1")
            self.wait_log(r"failed rcpt=nobody@example\.test reason=\"no such user\"")
            self.wait_log(r"bounced to=postmaster rcpts=1 double=yes")
            wait_until(lambda: len(notices(self.inst, postmaster)) == before + 1, what="the double bounce")
            self.wait_queue_empty()
            time.sleep(1)
            got = notices(self.inst, postmaster)
            self.assertEqual(len(got), before + 1)
            _, status, original = report_parts(got[-1])
            self.assertEqual(status[1]["Final-Recipient"], "rfc822; nobody@example.test")
            # The double bounce carries the bounce, which carries the original.
            self.assertIn("X-Marker: double", original.as_string())

    @unittest.skipUnless(IS_ROOT, "the service users exist only in a root installation")
    def test_deliver_remote_runs_wholly_as_tiki_remote(self):
        with SmtpSink(["-w", "3"]) as sink:  # DATA answered after 3 s: time to look
            self.route(f"far.test:[127.0.0.1]:{sink.port}")
            send(self.inst, SENDER, ["slow@far.test"], message("uid"))

            def remote_pids():
                return [pid for pid, (comm, _, _) in process_table().items() if comm == "deliver-remote"]

            wait_until(remote_pids, what="a running deliver-remote")
            pid = remote_pids()[0]

            def status_after_start():
                # Right after exec the set-uid switch may not have happened yet (real uid still
                # deliver's); it is the first thing the program does, so wait for it to settle.
                text = Path(f"/proc/{pid}/status").read_text()
                ids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", text, re.M).groups()
                return text if len(set(ids)) == 1 else None

            wait_until(status_after_start, timeout=2, what="deliver-remote past its identity switch")
            status = status_after_start()
            uid = pwd.getpwnam("tiki-remote").pw_uid
            uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
            self.assertEqual(set(uids), {str(uid)}, status)
            groups = re.search(r"^Groups:(.*)$", status, re.M).group(1).split()
            self.assertNotIn(str(grp.getgrnam("tiki-queue").gr_gid), groups)  # no way into the queue
            self.assertNotIn(str(grp.getgrnam("vmail").gr_gid), groups)
            self.assertRegex(status, r"CapPrm:\s+0+\n")  # cap_setgid was given up
            self.assertRegex(status, r"CapEff:\s+0+\n")
            self.wait_log(r"delivered rcpt=slow@far\.test ")
            self.wait_queue_empty()

    def test_sendmail_to_an_unknown_local_user_bounces_to_the_sender(self):
        before = len(notices(self.inst, SENDER))
        out = subprocess.run([self.inst.bin("sendmail"), "-f", SENDER, "nobody@example.test"],
                             input=b"Subject: typo\nX-Marker: typo\n\nhello\n", capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)  # accepted: the failure comes later, by mail
        wait_until(lambda: len(notices(self.inst, SENDER)) == before + 1, what="the bounce")
        _, status, original = report_parts(notices(self.inst, SENDER)[-1])
        self.assertEqual(status[1]["Final-Recipient"], "rfc822; nobody@example.test")
        self.assertEqual(status[1]["Status"], "5.1.1")
        self.assertIsNone(status[1]["Diagnostic-Code"])  # our own verdict, no remote reply
        self.assertEqual(original.get_payload()[0]["X-Marker"], "typo")
        self.wait_queue_empty()

    def test_mail_to_this_host_by_address_literal_bounces_instead_of_looping(self):
        before = len(notices(self.inst, SENDER))
        send(self.inst, SENDER, ["someone@[127.0.0.1]"], message("self"))
        wait_until(lambda: len(notices(self.inst, SENDER)) == before + 1, what="the bounce")
        _, status, _ = report_parts(notices(self.inst, SENDER)[-1])
        self.assertEqual(status[1]["Status"], "5.4.6")
        self.assertRegex(self.inst.log("deliver"), r"failed rcpt=someone@\[127\.0\.0\.1\] reason=\"mail for "
                                                  r"\[127\.0\.0\.1\] loops back to this host")
        self.wait_queue_empty()

    def test_null_sender_mail_never_loops(self):
        self.inst.write_control("doublebounceto", "nobody@example.test")
        try:
            with SmtpSink(["-f", "RCPT"]) as sink:
                self.route(f"far.test:[127.0.0.1]:{sink.port}")
                before = len(self.inst.messages(SENDER))
                send(self.inst, "", ["y@far.test"], message("null"))
                # A double bounce to a missing doublebounceto: dropped, nothing else.
                self.wait_log(r"bounced to=nobody@example\.test rcpts=1 double=yes")
                self.wait_log(r"failed rcpt=nobody@example\.test reason=\"no such user\" delay=\d+s notice=none")
                self.wait_queue_empty()
                time.sleep(1)
                self.assertEqual(len(self.inst.messages(SENDER)), before)
                self.assertEqual(len(sink.transactions()), 0)
        finally:
            self.inst.write_control("doublebounceto", "postmaster")


class LifetimeTest(unittest.TestCase):
    """A short schedule: retries every second or two, a queue lifetime of a few seconds."""

    def test_a_dead_port_is_retried_then_bounced_after_the_queue_lifetime(self):
        control = {"retrybase": "1", "retrymax": "2", "queuelifetime": "6", "queuescan": "1"}
        with Installation(control=control) as inst:
            dead = SmtpSink()  # a port nobody listens on: never started
            inst.write_control("smtproutes", f":[127.0.0.1]:{dead.port}")
            send(inst, SENDER, ["lost@nowhere.test"], message("dead"))
            wait_until(lambda: "bounced to=alice@example.test" in inst.log("deliver"), timeout=30,
                       what="the bounce after the lifetime")
            log = inst.log("deliver")
            attempts = re.findall(r"deferred rcpt=lost@nowhere\.test reason=\"[^\"]*\" attempts=(\d+)", log)
            self.assertGreaterEqual(len(attempts), 2, log)
            self.assertEqual(attempts, [str(i) for i in range(1, len(attempts) + 1)])
            self.assertRegex(log, r"failed rcpt=lost@nowhere\.test expired=yes reason=\"gave up after \d+s")
            got = [parse(m) for m in inst.wait_for_messages(SENDER, 1)]
            _, status, _ = report_parts(got[0])
            self.assertEqual(status[1]["Action"], "failed")
            self.assertTrue(status[1]["Status"].startswith("4.4."), status[1]["Status"])
            dead.close()
            wait_until(lambda: not inst.queue_ids(), what="an empty queue")


class TlsRemoteTest(unittest.TestCase):
    """Remote delivery over STARTTLS to a second tikimail installation (far.test)."""

    @classmethod
    def setUpClass(cls):
        # Class cleanups run even when setUpClass fails half-way (tearDownClass would not).
        cls.far = Installation(domains=("far.test",), accounts=("bob@far.test",)).setup()
        cls.addClassCleanup(cls.far.teardown)
        cls.inst = Installation().setup()
        cls.addClassCleanup(cls.inst.teardown)
        cls.inst.write_control("smtproutes", f"far.test:[127.0.0.1]:{cls.far.port}")

    def test_verified_tls_with_the_peer_certificate(self):
        self.inst.write_control("tlsremote", "far.test:verify")
        # control/tlsremoteca is the PEM file the peer's certificate must chain to.
        self.inst.write_control("tlsremoteca", Path(self.far.cert).read_text())
        self.inst.write_control("smtproutes", f"far.test:localhost:{self.far.port}")
        send(self.inst, SENDER, ["bob@far.test"], message("tls"))
        got = self.far.wait_for_messages("bob@far.test", 1, timeout=20)
        self.assertIn(b"X-Marker: tls\n", got[-1])
        self.assertRegex(got[-1].decode(errors="replace"), r"Received: from mx\.example\.test .*\n?.* with ESMTPS ")

    def test_verify_fails_without_the_ca_and_the_message_waits(self):
        self.inst.write_control("tlsremote", "far.test:verify")
        (self.inst.prefix / "control" / "tlsremoteca").unlink(missing_ok=True)  # the system CAs only
        self.inst.write_control("smtproutes", f"far.test:localhost:{self.far.port}")
        before = len(self.far.messages("bob@far.test"))
        send(self.inst, SENDER, ["bob@far.test"], message("tls-unverified"))
        wait_until(lambda: re.search(r"deferred rcpt=bob@far\.test .*4\.7\.5|deferred rcpt=bob@far\.test .*attempts=1",
                                     self.inst.log("deliver")), timeout=20, what="a deferral")
        self.assertEqual(len(self.far.messages("bob@far.test")), before)
        self.inst.write_control("tlsremote", "far.test:may")
        self.inst.sv("alarm", str(self.inst.prefix / "service" / "deliver"))
        self.far.wait_for_messages("bob@far.test", before + 1, timeout=20)


class TlsRemoteCaChainTest(unittest.TestCase):
    """The peer serves a chain from a CA, as a real MX does: tlsd must load it (its leaf is not
    self-signed, so OpenSSL checks the CA's signature) and deliver-remote must verify it."""

    @classmethod
    def setUpClass(cls):
        cls.far = Installation(domains=("far.test",), accounts=("bob@far.test",)).setup()
        cls.addClassCleanup(cls.far.teardown)
        tls = cls.far.prefix / "control" / "tls"
        cls.ca = cls.far.prefix / "test-ca.pem"
        make_ca_issued_certificate(tls / "cert.pem", tls / "key.pem", cls.ca)
        cls.inst = Installation().setup()
        cls.addClassCleanup(cls.inst.teardown)

    def test_smtps_serves_the_chain_and_a_client_trusting_the_ca_verifies_it(self):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        with smtplib.SMTP_SSL("127.0.0.1", self.far.smtps_port, context=ctx, timeout=10) as s:
            code, _ = s.ehlo("client.test")
            self.assertEqual(code, 250)
            self.assertEqual(len(s.sock.getpeercert(binary_form=False)["subjectAltName"]), 2)

    def test_remote_delivery_verifies_the_chain_against_control_tlsremoteca(self):
        self.inst.write_control("tlsremote", "far.test:verify")
        self.inst.write_control("tlsremoteca", self.ca.read_text())
        self.inst.write_control("smtproutes", f"far.test:localhost:{self.far.port}")
        send(self.inst, SENDER, ["bob@far.test"], message("ca-chain"))
        got = self.far.wait_for_messages("bob@far.test", 1, timeout=20)
        self.assertIn(b"X-Marker: ca-chain\n", got[-1])
        self.assertRegex(got[-1].decode(errors="replace"), r"Received: from mx\.example\.test .*\n?.* with ESMTPS ")
        self.assertRegex(self.inst.log("deliver"), r"verified=yes")


if __name__ == "__main__":
    unittest.main()
