// smtpd/session_test.cpp: the SMTP dialogue as a client sees it, over a socketpair.
#include "smtpd/session.h"

#include <signal.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "common/fd.h"
#include "common/test_util.h"
#include "relayctl/relay_db.h"

using namespace tikimail;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

// A session served on one end of a socketpair by a thread; the test is the client.
class Dialogue {
 public:
  explicit Dialogue(SmtpdConfig config, bool relay_client = false) : config_(std::move(config)) {
    ::signal(SIGPIPE, SIG_IGN);
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    server_ = Fd(fds[0]);
    client_ = Fd(fds[1]);
    Client c;
    c.ip = "192.0.2.7";
    c.relay_client = relay_client;
    thread_ = std::thread([this, c] {
      Session s(config_, c, server_.get(), server_.get(), log_);
      exit_code_ = s.run();
      ::shutdown(server_.get(), SHUT_RDWR);
    });
    reader_ = std::make_unique<LineReader>(client_.get());
    greeting = reply();
  }
  ~Dialogue() {
    ::shutdown(client_.get(), SHUT_RDWR);
    thread_.join();
  }
  void send(std::string_view bytes) { REQUIRE(write_all(client_.get(), bytes)); }
  // One reply, all its lines joined with '\n'; "" at EOF.
  std::string reply() {
    std::string all;
    for (;;) {
      Line line = reader_->read_line(Deadline::after_seconds(10), 4096);
      if (line.code != IoCode::kOk) return all;
      if (!all.empty()) all += '\n';
      all += line.text;
      if (line.text.size() < 4 || line.text[3] != '-') return all;
    }
  }
  std::string cmd(std::string_view line) {
    send(std::string(line) + "\r\n");
    return reply();
  }
  bool closed() { return reader_->read_line(Deadline::after_seconds(10), 4096).code == IoCode::kEof; }
  int exit_code() {
    ::shutdown(client_.get(), SHUT_WR);
    thread_.join();
    thread_ = std::thread([] {});
    return exit_code_;
  }
  std::string greeting;

 private:
  SmtpdConfig config_;
  Log log_{"smtpd-test"};
  Fd server_, client_;
  std::thread thread_;
  std::unique_ptr<LineReader> reader_;
  int exit_code_ = -1;
};

struct Fixture {
  TempDir dir;
  SmtpdConfig config;
  Fixture() {
    dir.write("recipients", "alice@example.test\nbob@example.test\n");
    config.me = "mx.example.test";
    config.rcpthosts = DomainList::from_lines({"example.test"});
    config.recipients_path = (dir.path() / "recipients").string();
    config.queue_argv = {"/bin/true"};
    config.timeout = 5;
  }
};

std::string ehlo_mail(Dialogue& d) {
  d.cmd("EHLO client.test");
  return d.cmd("MAIL FROM:<sender@remote.test>");
}

}  // namespace

TEST_CASE("smtpd: greeting and EHLO advertise the extensions and the size limit") {
  Fixture f;
  Dialogue d(f.config);
  CHECK(d.greeting == "220 mx.example.test ESMTP tikimail");
  CHECK(d.cmd("EHLO client.test") ==
        "250-mx.example.test\n250-PIPELINING\n250-8BITMIME\n250-SIZE 20971520\n250 ENHANCEDSTATUSCODES");
  CHECK(d.cmd("QUIT") == "221 2.0.0 Bye");
  CHECK(d.exit_code() == 0);
}

TEST_CASE("smtpd: MAIL needs HELO first, and a transaction cannot nest") {
  Fixture f;
  Dialogue d(f.config);
  CHECK(d.cmd("MAIL FROM:<a@b.test>") == "503 5.5.1 Send HELO or EHLO first");
  CHECK(d.cmd("HELO client.test") == "250 mx.example.test");
  CHECK(d.cmd("MAIL FROM:<a@b.test>") == "250 2.1.0 Ok");
  CHECK(d.cmd("MAIL FROM:<a@b.test>") == "503 5.5.1 Already in a mail transaction");
  CHECK(d.cmd("RSET") == "250 2.0.0 Ok");
  CHECK(d.cmd("MAIL FROM:<>") == "250 2.1.0 Ok");
}

TEST_CASE("smtpd: SIZE over databytes is refused with the seed's text") {
  Fixture f;
  Dialogue d(f.config);
  d.cmd("EHLO client.test");
  CHECK(d.cmd("MAIL FROM:<a@b.test> SIZE=20971521") ==
        "552 sorry, that message size exceeds my databytes limit (#5.3.4)");
  CHECK(d.cmd("MAIL FROM:<a@b.test> SIZE=99999999999999999999") ==
        "552 sorry, that message size exceeds my databytes limit (#5.3.4)");
  CHECK(d.cmd("MAIL FROM:<a@b.test> SIZE=20971520") == "250 2.1.0 Ok");
}

TEST_CASE("smtpd: unknown MAIL parameters and bad SIZE values are refused") {
  Fixture f;
  Dialogue d(f.config);
  d.cmd("EHLO client.test");
  CHECK(d.cmd("MAIL FROM:<a@b.test> FOO=1") == "555 5.5.4 Unsupported parameter");
  CHECK(d.cmd("MAIL FROM:<a@b.test> SIZE=12x") == "501 5.5.4 Syntax error in parameters");
  CHECK(d.cmd("MAIL FROM:<a@b.test> BODY=8BITMIME") == "250 2.1.0 Ok");
}

TEST_CASE("smtpd: relaying is denied to outsiders, whatever the trick") {
  Fixture f;
  Dialogue d(f.config);
  ehlo_mail(d);
  for (const char* to : {"<user@remote.test>", "<user%remote.test@[127.0.0.1]>", "<user@[127.0.0.1]>",
                         "<@example.test:user@remote.test>", "<\"user@remote.test\">"}) {
    INFO(to);
    std::string r = d.cmd(std::string("RCPT TO:") + to);
    CHECK((r == "550 Relaying denied." || r.starts_with("501 ")));
  }
  // Local-looking tricks land on our domain and are unknown users, never relayed.
  CHECK(d.cmd("RCPT TO:<user%remote.test@example.test>") == "550 5.1.1 No such user here");
  CHECK(d.cmd("RCPT TO:<remote.test!user@example.test>") == "550 5.1.1 No such user here");
  CHECK(d.cmd("RCPT TO:<\"user@remote.test\"@example.test>") == "550 5.1.1 No such user here");
  CHECK(d.cmd("RCPT TO:<alice@example.test.>") == "501 5.1.3 Bad recipient address syntax");
}

TEST_CASE("smtpd: RELAYCLIENT lets a client relay, but not to unknown local users") {
  Fixture f;
  Dialogue d(f.config, /*relay_client=*/true);
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<user@remote.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RCPT TO:<nobody@example.test>") == "550 5.1.1 No such user here");
}

TEST_CASE("smtpd: accounts and postmaster are accepted, any case") {
  Fixture f;
  Dialogue d(f.config);
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<Alice@Example.Test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RCPT TO:<POSTMASTER>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RCPT TO:<postmaster@example.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RCPT TO:<carol@example.test>") == "550 5.1.1 No such user here");
}

TEST_CASE("smtpd: too many recipients get 452 4.5.3") {
  Fixture f;
  f.config.maxrcpt = 2;
  f.dir.write("recipients", "a@example.test\nb@example.test\nc@example.test\n");
  Dialogue d(f.config);
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<a@example.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RCPT TO:<b@example.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RCPT TO:<c@example.test>") == "452 4.5.3 Too many recipients");
}

TEST_CASE("smtpd: DATA without recipients is refused") {
  Fixture f;
  Dialogue d(f.config);
  CHECK(d.cmd("DATA").starts_with("503 "));
  ehlo_mail(d);
  CHECK(d.cmd("DATA") == "503 5.5.1 Send RCPT first");
  d.cmd("RCPT TO:<nobody@example.test>");
  CHECK(d.cmd("DATA") == "554 5.5.1 No valid recipients");
}

TEST_CASE("smtpd: a body over databytes is read to its end, then refused") {
  Fixture f;
  f.config.databytes = 10;
  Dialogue d(f.config);
  ehlo_mail(d);
  d.cmd("RCPT TO:<alice@example.test>");
  CHECK(d.cmd("DATA").starts_with("354 "));
  d.send("0123456789\r\nmore\r\n.\r\n");
  CHECK(d.reply() == "552 sorry, that message size exceeds my databytes limit (#5.3.4)");
  CHECK(d.cmd("NOOP") == "250 2.0.0 Ok");  // the session goes on
}

TEST_CASE("smtpd: a body of exactly databytes is accepted") {
  Fixture f;
  f.config.databytes = 10;
  Dialogue d(f.config);
  ehlo_mail(d);
  d.cmd("RCPT TO:<alice@example.test>");
  CHECK(d.cmd("DATA").starts_with("354 "));
  d.send("01234567\r\n.\r\n");  // 8 + CRLF = 10
  CHECK(d.reply().starts_with("250 2.0.0 Ok: queued as "));
}

TEST_CASE("smtpd: the queue chain's exit status becomes the reply") {
  Fixture f;
  f.config.queue_argv = {"/bin/false"};  // exit 1: not a queue code, temporary
  Dialogue d(f.config);
  ehlo_mail(d);
  d.cmd("RCPT TO:<alice@example.test>");
  d.cmd("DATA");
  d.send("x\r\n.\r\n");
  CHECK(d.reply().starts_with("451 4.3.0 "));
}

TEST_CASE("smtpd: pipelined commands get their replies in order") {
  Fixture f;
  Dialogue d(f.config);
  d.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<x@y.test>\r\nRSET\r\n");
  CHECK(d.reply().starts_with("250-mx.example.test"));
  CHECK(d.reply() == "250 2.1.0 Ok");
  CHECK(d.reply() == "250 2.1.5 Ok");
  CHECK(d.reply() == "550 Relaying denied.");
  CHECK(d.reply() == "250 2.0.0 Ok");
}

TEST_CASE("smtpd: over-long command lines are refused and counted") {
  Fixture f;
  Dialogue d(f.config);
  CHECK(d.cmd(std::string(510, 'N')) == "500 5.5.2 Command not recognized");  // 512 with CRLF: read
  CHECK(d.cmd(std::string(511, 'N')) == "500 5.5.2 Line too long");
  CHECK(d.cmd("NOOP") == "250 2.0.0 Ok");
}

TEST_CASE("smtpd: too many bad commands end the session with 421") {
  Fixture f;
  Dialogue d(f.config);
  for (int i = 1; i < kMaxBadCommands; ++i) CHECK(d.cmd("BOGUS") == "500 5.5.2 Command not recognized");
  CHECK(d.cmd("BOGUS") == "500 5.5.2 Command not recognized");
  CHECK(d.reply() == "421 4.7.0 Too many errors, closing connection");
  CHECK(d.closed());
}

TEST_CASE("smtpd: an idle client gets 421 at the deadline") {
  Fixture f;
  f.config.timeout = 1;
  Dialogue d(f.config);
  CHECK(d.reply() == "421 4.4.2 Timeout, closing connection");
  CHECK(d.closed());
}

TEST_CASE("smtpd: VRFY, HELP, NOOP and unimplemented commands") {
  Fixture f;
  Dialogue d(f.config);
  CHECK(d.cmd("VRFY alice").starts_with("252 2.5.2 "));
  CHECK(d.cmd("HELP").starts_with("214 2.0.0 "));
  CHECK(d.cmd("noop") == "250 2.0.0 Ok");
  CHECK(d.cmd("EXPN staff") == "502 5.5.1 Command not implemented");
  CHECK(d.cmd("HELO") == "501 5.5.4 HELO and EHLO need a host name");
}

namespace {

// The fixture with POP before SMTP on and its relay db in the temp dir. The Dialogue's
// client is 192.0.2.7.
struct PopFixture : Fixture {
  PopFixture() {
    config.pop_before_smtp = true;
    config.relay_dir = (dir.path() / "relay").string();
    std::filesystem::create_directory(config.relay_dir);
  }
  void allow(const char* ip, time_t expiry) {
    REQUIRE(RelayDb(config.relay_dir).allow(ip, "alice@example.test", ::time(nullptr), expiry));
  }
};

// Sets an environment variable for the lifetime of the object, and unsets it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

}  // namespace

TEST_CASE("smtpd: POPBEFORESMTP in the environment, any value, turns the relay db on") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  ::unsetenv("POPBEFORESMTP");
  auto off = SmtpdConfig::load({});
  REQUIRE(off);
  CHECK_FALSE(off->pop_before_smtp);
  CHECK(off->relay_dir == "relay");
  {
    ScopedEnv env("POPBEFORESMTP", "");
    auto on = SmtpdConfig::load({});
    REQUIRE(on);
    CHECK(on->pop_before_smtp);
  }
  CHECK(std::getenv("POPBEFORESMTP") == nullptr);
}

TEST_CASE("smtpd: with POPBEFORESMTP, a live relay db entry lets the client relay") {
  PopFixture f;
  f.allow("192.0.2.7", ::time(nullptr) + 1200);
  Dialogue d(f.config);
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<user@remote.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RCPT TO:<user@[192.0.2.99]>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RCPT TO:<nobody@example.test>") == "550 5.1.1 No such user here");  // still no such user
}

TEST_CASE("smtpd: with POPBEFORESMTP, no entry, another IP's entry or an expired one: relaying denied") {
  PopFixture f;
  SECTION("no entry") {}
  SECTION("another IP's entry") { f.allow("192.0.2.8", ::time(nullptr) + 1200); }
  SECTION("expired entry") { f.allow("192.0.2.7", ::time(nullptr) - 1); }
  SECTION("malformed entry") { f.dir.write("relay/192.0.2.7", "99999999999 garbage\n"); }
  Dialogue d(f.config);
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<user@remote.test>") == "550 Relaying denied.");
  CHECK(d.cmd("RCPT TO:<alice@example.test>") == "250 2.1.5 Ok");  // our own domains as ever
}

TEST_CASE("smtpd: without POPBEFORESMTP the relay db is not consulted") {
  PopFixture f;
  f.config.pop_before_smtp = false;  // submission and SMTPS: SMTP AUTH, never the relay db
  f.allow("192.0.2.7", ::time(nullptr) + 1200);
  Dialogue d(f.config);
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<user@remote.test>") == "550 Relaying denied.");
}

TEST_CASE("smtpd: an unreadable relay db is logged and never opens the relay") {
  PopFixture f;
  f.dir.write("not-a-dir", "x");
  f.config.relay_dir = (f.dir.path() / "not-a-dir").string();
  Dialogue d(f.config);
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<user@remote.test>") == "550 Relaying denied.");
  CHECK(d.cmd("NOOP") == "250 2.0.0 Ok");  // the session goes on
}

TEST_CASE("smtpd: the relay db is asked once per connection, at the first relayed recipient") {
  PopFixture f;
  Dialogue d(f.config);
  ehlo_mail(d);
  // Written after the greeting: the lookup waits for the first recipient that needs it.
  f.allow("192.0.2.7", ::time(nullptr) + 1200);
  CHECK(d.cmd("RCPT TO:<user@remote.test>") == "250 2.1.5 Ok");
  REQUIRE(RelayDb(f.config.relay_dir).purge(::time(nullptr) + 2000));
  CHECK(d.cmd("RCPT TO:<other@remote.test>") == "250 2.1.5 Ok");  // the answer holds for the connection
}

TEST_CASE("smtpd: a POP-before-SMTP client's message is queued") {
  PopFixture f;
  f.allow("192.0.2.7", ::time(nullptr) + 1200);
  Dialogue d(f.config);
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<user@remote.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("DATA").starts_with("354 "));
  d.send("Subject: hi\r\n\r\nhello\r\n.\r\n");
  CHECK(d.reply().starts_with("250 2.0.0 Ok: queued as "));
}
