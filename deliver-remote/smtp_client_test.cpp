// deliver-remote/smtp_client_test.cpp: the SMTP client against a scripted server on a socketpair.
#include "deliver-remote/smtp_client.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <optional>

#include "deliver-remote/test_server.h"

using namespace tikimail;
using namespace tikimail::testing;
using Kind = RemoteResult::Kind;

namespace {

bool starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

struct Run {
  FakeSmtp server;
  HostOutcome outcome;
};

// Runs one session of `rcpts` against `server` with the message `content`. `stated_bytes`,
// when given, replaces the message length the session is told (the first pass is the real one).
HostOutcome run_session(FakeSmtp& server, const std::string& content, std::vector<std::string> rcpts,
                        SessionConfig config = {}, std::optional<uint64_t> stated_bytes = std::nullopt) {
  TempDir dir;
  TestMessage message(dir, content);
  if (stated_bytes) message.bytes = *stated_bytes;
  SmtpPair pair;
  std::thread thread([&] { server.serve(pair.server.get()); });
  Connection conn(std::move(pair.client));
  SmtpEnvelope envelope{"<sender@here.test>", std::move(rcpts)};
  if (config.helo.empty()) config.helo = "here.test";
  config.timeouts.replace(5);
  Log log("deliver-remote-test");
  HostOutcome out = run_smtp(conn, fake_target(), envelope, message.source(), config, log);
  conn = Connection(Fd());  // the server thread ends at QUIT or at this EOF
  thread.join();
  return out;
}

Reply read_reply(const std::string& bytes) {
  SmtpPair pair;
  REQUIRE(write_all(pair.server.get(), bytes));
  pair.server = Fd();
  Connection conn(std::move(pair.client));
  ReplyReader reader(&conn);
  return reader.read(Deadline::after_seconds(5));
}

}  // namespace

TEST_CASE("deliver-remote: multiline replies, enhanced codes and their limits", "[deliver-remote]") {
  Reply r = read_reply("250-first line\r\n250-second\r\n250 2.1.5 last\r\n");
  REQUIRE(r.ok());
  CHECK(r.code == 250);
  CHECK(r.lines.size() == 3);
  CHECK(r.text() == "250-first line / 250-second / 250 2.1.5 last");
  CHECK(r.status() == "2.0.0");  // the code is taken from the first line only

  CHECK(read_reply("550 5.1.1 no such user\r\n").status() == "5.1.1");
  CHECK(read_reply("550 4.1.1 class does not match\r\n").status() == "5.0.0");
  CHECK(read_reply("451 try later\n").status() == "4.0.0");  // a bare LF is taken too
  CHECK(read_reply("220\r\n").code == 220);

  CHECK(read_reply("250-a\r\n251 b\r\n").error == Reply::Error::kMalformed);  // codes differ
  CHECK(read_reply("25 short\r\n").error == Reply::Error::kMalformed);
  CHECK(read_reply("250_x\r\n").error == Reply::Error::kMalformed);
  CHECK(read_reply("250-" + std::string(3000, 'x') + "\r\n250 ok\r\n").error == Reply::Error::kTooLong);
  CHECK(read_reply("250 " + std::string(2042, 'x') + "\r\n").ok());  // 2048 with CRLF
  CHECK(read_reply("250 " + std::string(2043, 'x') + "\r\n").error == Reply::Error::kTooLong);
  std::string many;
  for (int i = 0; i < 150; ++i) many += "250-line\r\n";
  CHECK(read_reply(many + "250 end\r\n").error == Reply::Error::kTooManyLines);
  CHECK(read_reply("250-cut off").error == Reply::Error::kLost);
}

TEST_CASE("deliver-remote: EHLO keywords are read case-insensitively", "[deliver-remote]") {
  Reply r;
  r.code = 250;
  r.lines = {"250-mx.test greets you", "250-pipelining", "250-Size 52428800", "250-8bitmime", "250 StartTLS"};
  Extensions e = parse_ehlo(r);
  CHECK(e.pipelining);
  CHECK(e.eightbitmime);
  CHECK(e.starttls);
  CHECK(e.size);
  CHECK(e.size_limit == 52428800);
  r.lines = {"250-mx.test", "250 SIZE"};
  e = parse_ehlo(r);
  CHECK(e.size);
  CHECK(e.size_limit == 0);
  CHECK_FALSE(e.pipelining);
}

TEST_CASE("deliver-remote: pipelined MAIL and RCPTs in one write, per-recipient answers", "[deliver-remote]") {
  FakeSmtp server;
  server.respond = [](std::string_view c) -> std::string {
    if (starts(c, "RCPT TO:<nobody@")) return "550 5.1.1 <nobody@there.test>: no such user\r\n";
    if (starts(c, "RCPT TO:<full@")) return "452 4.2.2 mailbox full\r\n";
    return standard_reply(c);
  };
  HostOutcome out = run_session(server, "Subject: x\n\nh\xc3\xa9llo\n",
                                {"<a@there.test>", "<nobody@there.test>", "<full@there.test>", "<b@there.test>"});
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  REQUIRE(out.results.size() == 4);
  CHECK(out.results[0].kind == Kind::kDelivered);
  CHECK(out.results[0].status == "2.0.0");
  CHECK(out.results[0].text == "250 2.0.0 Ok: queued as 42");
  CHECK(out.results[0].from_remote);
  CHECK(out.results[0].host == "mx.fake.test[127.0.0.1]:25");
  CHECK(out.results[1].kind == Kind::kPermanent);
  CHECK(out.results[1].status == "5.1.1");
  CHECK(out.results[2].kind == Kind::kTemporary);
  CHECK(out.results[2].status == "4.2.2");
  CHECK(out.results[3].kind == Kind::kDelivered);
  CHECK(encode_result(out.results[1]) ==
        "D 5.1.1 mx.fake.test[127.0.0.1]:25 r 550 5.1.1 <nobody@there.test>: no such user\n");

  // MAIL and every RCPT arrived in one read: one write from the client.
  std::string batch;
  for (const std::string& chunk : server.chunks)
    if (starts(chunk, "MAIL")) batch = chunk;
  CHECK(batch ==
        "MAIL FROM:<sender@here.test> SIZE=22 BODY=8BITMIME\r\nRCPT TO:<a@there.test>\r\n"
        "RCPT TO:<nobody@there.test>\r\nRCPT TO:<full@there.test>\r\nRCPT TO:<b@there.test>\r\n");
  CHECK(server.commands.back() == "QUIT");
}

TEST_CASE("deliver-remote: without PIPELINING one command at a time; 8-bit sent unchanged", "[deliver-remote]") {
  FakeSmtp server;
  server.respond = [](std::string_view c) -> std::string {
    if (starts(c, "EHLO")) return "250-fake.test\r\n250 HELP\r\n";
    return standard_reply(c);
  };
  HostOutcome out = run_session(server, "x\xff\n", {"<a@there.test>", "<b@there.test>"});
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  CHECK(out.results[1].kind == Kind::kDelivered);
  std::vector<std::string> expected = {"EHLO here.test", "MAIL FROM:<sender@here.test>", "RCPT TO:<a@there.test>",
                                       "RCPT TO:<b@there.test>", "DATA", ".", "QUIT"};
  CHECK(server.commands == expected);
  for (const std::string& chunk : server.chunks) CHECK(std::count(chunk.begin(), chunk.end(), '\n') == 1);
  CHECK(server.data == "x\xff\r\n.\r\n");
}

TEST_CASE("deliver-remote: a message above the peer's SIZE is not sent", "[deliver-remote]") {
  FakeSmtp server;
  server.respond = [](std::string_view c) -> std::string {
    if (starts(c, "EHLO")) return "250-fake.test\r\n250-SIZE 10\r\n250 PIPELINING\r\n";
    return standard_reply(c);
  };
  HostOutcome out = run_session(server, "0123456789\n", {"<a@there.test>", "<b@there.test>"});  // 12 in CRLF form
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  for (const RemoteResult& r : out.results) {
    CHECK(r.kind == Kind::kPermanent);
    CHECK(r.status == "5.3.4");
    CHECK_FALSE(r.from_remote);
    CHECK(r.text == "message size 12 exceeds the limit 10 of mx.fake.test[127.0.0.1]:25");
  }
  CHECK(server.commands == std::vector<std::string>{"EHLO here.test", "QUIT"});
}

TEST_CASE("deliver-remote: MAIL refused: every recipient gets its reply", "[deliver-remote]") {
  FakeSmtp server;
  server.respond = [](std::string_view c) -> std::string {
    if (starts(c, "MAIL")) return "553-5.1.8 sender\r\n553 5.1.8 domain does not exist\r\n";
    if (starts(c, "RCPT")) return "503 5.5.1 need MAIL\r\n";
    return standard_reply(c);
  };
  HostOutcome out = run_session(server, "x\n", {"<a@there.test>", "<b@there.test>"});
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  for (const RemoteResult& r : out.results) {
    CHECK(r.kind == Kind::kPermanent);
    CHECK(r.status == "5.1.8");
    CHECK(r.text == "553-5.1.8 sender / 553 5.1.8 domain does not exist");
  }
  CHECK(server.commands.back() == "QUIT");
}

TEST_CASE("deliver-remote: DATA refused, and the final reply decides", "[deliver-remote]") {
  SECTION("354 expected") {
    FakeSmtp server;
    server.respond = [](std::string_view c) -> std::string {
      if (starts(c, "RCPT TO:<b@")) return "550 5.1.1 unknown\r\n";
      if (c == "DATA") return "554 5.7.1 go away\r\n";
      return standard_reply(c);
    };
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>", "<b@there.test>"});
    CHECK(out.results[0].kind == Kind::kPermanent);
    CHECK(out.results[0].text == "554 5.7.1 go away");
    CHECK(out.results[1].text == "550 5.1.1 unknown");
  }
  SECTION("4xx after the dot") {
    FakeSmtp server;
    server.respond = [](std::string_view c) -> std::string {
      return c == "." ? "451 4.3.0 try again\r\n" : standard_reply(c);
    };
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    CHECK(out.results[0].kind == Kind::kTemporary);
    CHECK(out.results[0].status == "4.3.0");
  }
  SECTION("5xx after the dot") {
    FakeSmtp server;
    server.respond = [](std::string_view c) -> std::string {
      return c == "." ? "554 rejected as spam\r\n" : standard_reply(c);
    };
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    CHECK(out.results[0].kind == Kind::kPermanent);
    CHECK(out.results[0].status == "5.0.0");
  }
  SECTION("no recipient accepted: no DATA") {
    FakeSmtp server;
    server.respond = [](std::string_view c) -> std::string {
      return starts(c, "RCPT") ? "550 5.1.1 unknown\r\n" : standard_reply(c);
    };
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    CHECK(out.results[0].kind == Kind::kPermanent);
    CHECK(std::find(server.commands.begin(), server.commands.end(), "DATA") == server.commands.end());
    CHECK(server.commands.back() == "QUIT");
  }
  SECTION("connection lost after the dot: temporary, possible duplicate") {
    FakeSmtp server;
    server.respond = [](std::string_view c) -> std::string { return c == "." ? "" : standard_reply(c); };
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    REQUIRE(out.next == HostOutcome::Next::kFinal);
    CHECK(out.results[0].kind == Kind::kTemporary);
    CHECK(out.results[0].status == "4.4.2");
    CHECK(out.results[0].text.find("duplicate") != std::string::npos);
  }
}

TEST_CASE("deliver-remote: dot-stuffing and line ends on the wire", "[deliver-remote]") {
  FakeSmtp server;
  HostOutcome out = run_session(server, ".starts\n..two\nbare\rcr\r\ncrlf\nmid.dot\n.\nlast", {"<a@there.test>"});
  CHECK(out.results[0].kind == Kind::kDelivered);
  CHECK(server.data == "..starts\r\n...two\r\nbare\r\ncr\r\ncrlf\r\nmid.dot\r\n..\r\nlast\r\n.\r\n");
}

TEST_CASE("deliver-remote: exactly the message's bytes reach the peer, never the envelope or trailer",
          "[deliver-remote]") {
  // Each TestMessage file goes on with an envelope and a trailer after the message.
  const std::string like_trailer = "Subject: t\n\nbody" + queue_file_trailer(9);
  struct Case {
    std::string message, data, size;
  };
  for (const Case& c : {Case{"Subject: x\n\nno newline", "Subject: x\r\n\r\nno newline\r\n.\r\n", "SIZE=26"},
                        Case{"", ".\r\n", "SIZE=0"},
                        Case{like_trailer, "Subject: t\r\n\r\nbody\r\nTQ10000000000000009\r\n.\r\n", "SIZE=41"}}) {
    FakeSmtp server;
    HostOutcome out = run_session(server, c.message, {"<a@there.test>"});
    REQUIRE(out.next == HostOutcome::Next::kFinal);
    CHECK(out.results[0].kind == Kind::kDelivered);
    CHECK(server.data == c.data);
    CHECK(std::find(server.commands.begin(), server.commands.end(), "MAIL FROM:<sender@here.test> " + c.size) !=
          server.commands.end());
    for (const std::string& chunk : server.chunks) CHECK(chunk.find("envelope.test") == std::string::npos);
  }
}

TEST_CASE("deliver-remote: a message file shorter than its stated length is never sent whole: Z 4.3.0",
          "[deliver-remote]") {
  FakeSmtp server;
  const std::string message = "Subject: x\n\nbody\n";
  const uint64_t file_size = message.size() + kEntryEnvelope.size() + kQueueFileTrailer;
  HostOutcome out = run_session(server, message, {"<a@there.test>"}, {}, file_size + 1);
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  CHECK(out.results[0].kind == Kind::kTemporary);
  CHECK(out.results[0].status == "4.3.0");
  CHECK(out.results[0].text.find("ends after") != std::string::npos);
  CHECK(server.data.find("\r\n.\r\n") == std::string::npos);  // no final dot: the peer keeps nothing
}

TEST_CASE("deliver-remote: when to try the next address", "[deliver-remote]") {
  SECTION("421 greeting") {
    FakeSmtp server;
    server.greeting = "421 4.3.2 busy\r\n";
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    CHECK(out.next == HostOutcome::Next::kNextAddress);
    CHECK(out.failure.kind == Kind::kTemporary);
    CHECK(out.failure.text == "421 4.3.2 busy");
    CHECK(server.commands.empty());
  }
  SECTION("5xx greeting: permanent if it is the last") {
    FakeSmtp server;
    server.greeting = "554 5.7.1 no mail from you\r\n";
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    CHECK(out.next == HostOutcome::Next::kNextAddress);
    CHECK(out.failure.kind == Kind::kPermanent);
    CHECK(out.failure.status == "5.7.1");
    CHECK(server.commands == std::vector<std::string>{"QUIT"});
  }
  SECTION("a reply line too long") {
    FakeSmtp server;
    server.respond = [](std::string_view c) -> std::string {
      return starts(c, "EHLO") ? "250 " + std::string(5000, 'x') + "\r\n" : standard_reply(c);
    };
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    CHECK(out.next == HostOutcome::Next::kNextAddress);
    CHECK(out.failure.kind == Kind::kTemporary);
    CHECK(out.failure.text.find("line too long from remote") == 0);
  }
  SECTION("421 to MAIL") {
    FakeSmtp server;
    server.respond = [](std::string_view c) -> std::string {
      return starts(c, "MAIL") ? "421 4.4.5 shutting down\r\n" : standard_reply(c);
    };
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    CHECK(out.next == HostOutcome::Next::kNextAddress);
    CHECK(out.failure.status == "4.4.5");
  }
  SECTION("connection lost before MAIL's reply") {
    FakeSmtp server;
    server.respond = [](std::string_view c) -> std::string { return starts(c, "MAIL") ? "" : standard_reply(c); };
    HostOutcome out = run_session(server, "x\n", {"<a@there.test>"});
    CHECK(out.next == HostOutcome::Next::kNextAddress);
    CHECK(out.failure.status == "4.4.2");
  }
}

TEST_CASE("deliver-remote: EHLO refused, HELO instead", "[deliver-remote]") {
  FakeSmtp server;
  server.respond = [](std::string_view c) -> std::string {
    return starts(c, "EHLO") ? "502 5.5.2 what is EHLO\r\n" : standard_reply(c);
  };
  HostOutcome out = run_session(server, "x\xff\n", {"<a@there.test>"});
  REQUIRE(out.next == HostOutcome::Next::kFinal);
  CHECK(out.results[0].kind == Kind::kDelivered);
  std::vector<std::string> expected = {"EHLO here.test", "HELO here.test", "MAIL FROM:<sender@here.test>",
                                       "RCPT TO:<a@there.test>", "DATA", ".", "QUIT"};
  CHECK(server.commands == expected);
}

TEST_CASE("deliver-remote: timeoutremote replaces every reply deadline", "[deliver-remote]") {
  Timeouts t;
  CHECK(t.dot == 600);
  t.replace(20);
  CHECK(t.greeting == 20);
  CHECK(t.dot == 20);
  CHECK(t.data == 20);
  CHECK(t.quit == 10);
  CHECK(t.data_block == 20);
}
