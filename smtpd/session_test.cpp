// smtpd/session_test.cpp: the SMTP dialogue as a client sees it, over a socketpair.
#include "smtpd/session.h"

#include <signal.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "common/address.h"
#include "common/fd.h"
#include "common/test_util.h"
#include "relayctl/relay_db.h"
#include "smtpd/sasl.h"

using namespace tikimail;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

// A session served on one end of a socketpair by a thread; the test is the client.
class Dialogue {
 public:
  explicit Dialogue(SmtpdConfig config, bool relay_client = false)
      : Dialogue(std::move(config), client(relay_client)) {}
  Dialogue(SmtpdConfig config, Client c) : config_(std::move(config)) {
    ::signal(SIGPIPE, SIG_IGN);
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    server_ = Fd(fds[0]);
    client_ = Fd(fds[1]);
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

  // The test client, 192.0.2.7, as tcpserver would describe it.
  static Client client(bool relay_client = false) {
    Client c;
    c.ip = "192.0.2.7";
    c.relay_client = relay_client;
    return c;
  }

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

TEST_CASE("smtpd: a path over RFC 5321's limits is 501 with the sender's or the recipient's code") {
  Fixture f;
  Dialogue d(f.config);
  d.cmd("EHLO client.test");
  std::string local(65, 'a');
  CHECK(d.cmd("MAIL FROM:<" + local + "@remote.test>") == "501 5.1.7 Path too long");
  CHECK(d.cmd("MAIL FROM:<" + std::string(64, 'a') + "@remote.test>") == "250 2.1.0 Ok");
  CHECK(d.cmd("RCPT TO:<" + local + "@example.test>") == "501 5.1.3 Path too long");
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

TEST_CASE("smtpd: a message with more than 100 Received and Delivered-To fields is a loop: 554 5.4.6") {
  Fixture f;
  Dialogue d(f.config);
  ehlo_mail(d);
  d.cmd("RCPT TO:<alice@example.test>");
  CHECK(d.cmd("DATA").starts_with("354 "));
  std::string header;
  for (int i = 0; i < 60; ++i) header += "Received: from a.test by b.test\r\n";
  for (int i = 0; i < 41; ++i) header += "DELIVERED-TO: x@b.test\r\n";
  d.send(header + "Subject: loop\r\n\r\nbody\r\n.\r\n");
  CHECK(d.reply() == "554 5.4.6 Too many hops, this message is looping");
  // 100 of them, or any number in the body, is still mail.
  ehlo_mail(d);
  d.cmd("RCPT TO:<alice@example.test>");
  CHECK(d.cmd("DATA").starts_with("354 "));
  std::string ok;
  for (int i = 0; i < 100; ++i) ok += "Received: from a.test by b.test\r\n";
  d.send(ok + "\r\n" + ok + ".\r\n");
  CHECK(d.reply().starts_with("250 2.0.0 Ok: queued as "));
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

// ---- STARTTLS (RFC 3207) and SMTP AUTH (RFC 4954) -------------------------------------

namespace {

constexpr const char* kEhloPlain =
    "250-mx.example.test\n250-PIPELINING\n250-8BITMIME\n250-SIZE 20971520\n250 ENHANCEDSTATUSCODES";

// The client as smtpd sees it when tlsd started TLS at once (465): TLS=... in the
// environment, read through tls_from_environment(). The environment is restored after.
Client tls_client() {
  ScopedEnv version("TLS", "TLSv1.3");
  ScopedEnv cipher("TLSCIPHER", "TLS_AES_256_GCM_SHA384");
  Client c = Client::from_environment();
  c.ip = "192.0.2.7";
  return c;
}

// A fake checkpassword: alice@example.test / "alice pw"; temp@example.test fails temporarily.
struct AuthFixture : Fixture {
  std::shared_ptr<std::vector<std::string>> calls = std::make_shared<std::vector<std::string>>();
  AuthFixture() {
    config.auth_failure_delay = std::chrono::milliseconds(0);
    config.authenticate = [calls = calls](std::string_view user, std::string_view password,
                                          std::string_view mechanism) {
      calls->push_back(fmt::format("{}:{}:{}", user, password, mechanism));
      if (user == "temp@example.test") return AuthVerdict::kTemporary;
      return ascii_lower(user) == "alice@example.test" && password == "alice pw" ? AuthVerdict::kOk
                                                                                : AuthVerdict::kWrong;
    };
  }
};

std::string b64(std::string_view s) { return encode_base64(s); }
std::string plain(std::string_view authzid, std::string_view user, std::string_view password) {
  return b64(fmt::format("{}{}{}{}{}", authzid, '\0', user, '\0', password));
}
const std::string kAlicePlain = plain("", "alice@example.test", "alice pw");

// A queue chain that keeps the message in `path` and reads the envelope away.
std::vector<std::string> keeping_queue(const std::filesystem::path& path) {
  return {"/bin/sh", "-c", "cat > \"$0\" && cat <&1 >/dev/null", path.string()};
}

}  // namespace

TEST_CASE("smtpd: without TLSCTL or TLSD, STARTTLS is neither offered nor accepted") {
  ::unsetenv("TLSCTL");
  ::unsetenv("TLSD");
  ::unsetenv("TLS");
  Client c = Client::from_environment();
  CHECK_FALSE(c.tls_route);
  CHECK_FALSE(c.tls);
  Fixture f;
  Dialogue d(f.config);
  CHECK(d.cmd("EHLO client.test") == kEhloPlain);
  CHECK(d.cmd("STARTTLS") == "502 5.5.1 Command not implemented");
}

TEST_CASE("smtpd: STARTTLS throws away pipelined commands and requires a new EHLO") {
  Fixture f;
  auto asked = std::make_shared<int>(0);
  f.config.start_tls = [asked](const TlsRoute& route, int) -> Result<TlsInfo> {
    *asked = route.control_fd;
    return TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256"};
  };
  f.config.authenticate = [](std::string_view, std::string_view, std::string_view) { return AuthVerdict::kWrong; };
  Client c = Dialogue::client();
  c.tls_route = TlsRoute{42, ""};
  Dialogue d(f.config, c);
  CHECK(d.cmd("EHLO client.test") ==
        "250-mx.example.test\n250-PIPELINING\n250-8BITMIME\n250-SIZE 20971520\n250-STARTTLS\n"
        "250 ENHANCEDSTATUSCODES");
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) ==
        "538 5.7.11 Encryption required for requested authentication mechanism");
  CHECK(d.cmd("STARTTLS now") == "501 5.5.4 STARTTLS takes no parameters");
  d.cmd("MAIL FROM:<a@b.test>");
  // CVE-2011-0411: the RSET in the same packet is never answered.
  d.send("STARTTLS\r\nRSET\r\n");
  CHECK(d.reply() == "220 2.0.0 Ready to start TLS");
  // RFC 3207 4.2: state before TLS is forgotten, so MAIL needs EHLO again.
  CHECK(d.cmd("MAIL FROM:<a@b.test>") == "503 5.5.1 Send HELO or EHLO first");
  CHECK(*asked == 42);
  CHECK(d.cmd("EHLO client.test") ==
        "250-mx.example.test\n250-PIPELINING\n250-8BITMIME\n250-SIZE 20971520\n250-AUTH PLAIN LOGIN\n"
        "250 ENHANCEDSTATUSCODES");
  CHECK(d.cmd("STARTTLS") == "502 5.5.1 Command not implemented");
}

TEST_CASE("smtpd: a failed TLS handshake ends the session") {
  Fixture f;
  f.config.start_tls = [](const TlsRoute&, int) -> Result<TlsInfo> { return Status::permanent("handshake failed"); };
  Client c = Dialogue::client();
  c.tls_route = TlsRoute{42, ""};
  Dialogue d(f.config, c);
  d.cmd("EHLO client.test");
  CHECK(d.cmd("STARTTLS") == "220 2.0.0 Ready to start TLS");
  CHECK(d.closed());
  CHECK(d.exit_code() == 1);
}

TEST_CASE("smtpd: AUTH is refused without TLS, and not advertised") {
  AuthFixture f;
  Dialogue d(f.config);
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) == "503 5.5.1 Send HELO or EHLO first");
  CHECK(d.cmd("EHLO client.test") == kEhloPlain);
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) ==
        "538 5.7.11 Encryption required for requested authentication mechanism");
  CHECK(d.cmd("AUTH LOGIN") == "538 5.7.11 Encryption required for requested authentication mechanism");
  CHECK(d.cmd("MAIL FROM:<a@b.test> AUTH=<>") == "555 5.5.4 Unsupported parameter");
  CHECK(f.calls->empty());
}

TEST_CASE("smtpd: implicit TLS comes from the environment; AUTH PLAIN with an initial response") {
  AuthFixture f;
  Client c = tls_client();
  REQUIRE(c.tls);
  CHECK(c.tls->version == "TLSv1.3");
  CHECK(std::getenv("TLS") == nullptr);  // restored
  Dialogue d(f.config, c);
  CHECK(d.cmd("EHLO client.test") ==
        "250-mx.example.test\n250-PIPELINING\n250-8BITMIME\n250-SIZE 20971520\n250-AUTH PLAIN LOGIN\n"
        "250 ENHANCEDSTATUSCODES");
  CHECK(d.cmd("AUTH plain " + kAlicePlain) == "235 2.7.0 Authentication successful");
  CHECK(*f.calls == std::vector<std::string>{"alice@example.test:alice pw:PLAIN"});
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) == "503 5.5.1 Already authenticated");
  // An authenticated client relays, with its own address or the null sender.
  CHECK(d.cmd("MAIL FROM:<Alice@Example.Test> AUTH=<>") == "250 2.1.0 Ok");
  CHECK(d.cmd("RCPT TO:<friend@remote.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("RSET") == "250 2.0.0 Ok");
  CHECK(d.cmd("MAIL FROM:<>") == "250 2.1.0 Ok");
}

TEST_CASE("smtpd: AUTH PLAIN with the 334 continuation, and authzid rules") {
  AuthFixture f;
  SECTION("continuation") {
    Dialogue d(f.config, tls_client());
    d.cmd("EHLO client.test");
    CHECK(d.cmd("AUTH PLAIN") == "334 ");
    CHECK(d.cmd(kAlicePlain) == "235 2.7.0 Authentication successful");
  }
  SECTION("an authzid equal to the authcid is fine") {
    Dialogue d(f.config, tls_client());
    d.cmd("EHLO client.test");
    CHECK(d.cmd("AUTH PLAIN " + plain("alice@example.test", "alice@example.test", "alice pw")) ==
          "235 2.7.0 Authentication successful");
  }
  SECTION("another authzid fails without asking checkpassword") {
    Dialogue d(f.config, tls_client());
    d.cmd("EHLO client.test");
    CHECK(d.cmd("AUTH PLAIN " + plain("bob@example.test", "alice@example.test", "alice pw")) ==
          "535 5.7.8 Authentication credentials invalid");
    CHECK(f.calls->empty());
  }
  SECTION("malformed PLAIN messages") {
    Dialogue d(f.config, tls_client());
    d.cmd("EHLO client.test");
    CHECK(d.cmd("AUTH PLAIN " + b64("alice@example.test")) == "501 5.5.2 Malformed authentication response");
    CHECK(d.cmd("AUTH PLAIN =") == "501 5.5.2 Malformed authentication response");
    CHECK(d.cmd("AUTH PLAIN " + b64(std::string("\0a\0b\0c", 6))) == "501 5.5.2 Malformed authentication response");
  }
}

TEST_CASE("smtpd: AUTH LOGIN asks for the user name and the password in base64") {
  AuthFixture f;
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  CHECK(d.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6");
  CHECK(d.cmd(b64("alice@example.test")) == "334 UGFzc3dvcmQ6");
  CHECK(d.cmd(b64("alice pw")) == "235 2.7.0 Authentication successful");
  CHECK(*f.calls == std::vector<std::string>{"alice@example.test:alice pw:LOGIN"});
}

TEST_CASE("smtpd: AUTH LOGIN with the user name as initial response") {
  AuthFixture f;
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  CHECK(d.cmd("AUTH LOGIN " + b64("alice@example.test")) == "334 UGFzc3dvcmQ6");
  CHECK(d.cmd(b64("alice pw")) == "235 2.7.0 Authentication successful");
}

TEST_CASE("smtpd: AUTH cancel, bad base64, unknown mechanism, inside a transaction") {
  AuthFixture f;
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  CHECK(d.cmd("AUTH CRAM-MD5") == "504 5.5.4 Unrecognized authentication type");
  CHECK(d.cmd("AUTH") == "501 5.5.4 Syntax error in parameters");
  CHECK(d.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6");
  CHECK(d.cmd("*") == "501 5.0.0 Authentication cancelled");
  CHECK(d.cmd("AUTH PLAIN") == "334 ");
  CHECK(d.cmd("*") == "501 5.0.0 Authentication cancelled");
  CHECK(d.cmd("AUTH PLAIN not!base64") == "501 5.5.2 Cannot decode response");
  CHECK(d.cmd("AUTH PLAIN YWJj") == "501 5.5.2 Malformed authentication response");  // "abc"
  CHECK(d.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6");
  CHECK(d.cmd("%%%%") == "501 5.5.2 Cannot decode response");
  CHECK(d.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6");
  CHECK(d.cmd(std::string(1100, 'A')) == "500 5.5.6 Authentication exchange line is too long");
  CHECK(f.calls->empty());
  // Still usable afterwards; but not inside a transaction (RFC 4954 section 4).
  CHECK(d.cmd("MAIL FROM:<a@b.test>") == "250 2.1.0 Ok");
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) == "503 5.5.1 AUTH not permitted during a mail transaction");
  CHECK(d.cmd("RSET") == "250 2.0.0 Ok");
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) == "235 2.7.0 Authentication successful");
}

TEST_CASE("smtpd: wrong passwords get 535, the third ends the session with 421") {
  AuthFixture f;
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  CHECK(d.cmd("AUTH PLAIN " + plain("", "alice@example.test", "guess 1")) ==
        "535 5.7.8 Authentication credentials invalid");
  CHECK(d.cmd("AUTH PLAIN " + plain("", "nobody@example.test", "guess 2")) ==
        "535 5.7.8 Authentication credentials invalid");
  // Relaying is still denied after failures.
  CHECK(d.cmd("MAIL FROM:<a@b.test>") == "250 2.1.0 Ok");
  CHECK(d.cmd("RCPT TO:<friend@remote.test>") == "550 Relaying denied.");
  CHECK(d.cmd("RSET") == "250 2.0.0 Ok");
  CHECK(d.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6");
  CHECK(d.cmd(b64("alice@example.test")) == "334 UGFzc3dvcmQ6");
  CHECK(d.cmd(b64("guess 3")) == "535 5.7.8 Authentication credentials invalid");
  CHECK(d.reply() == "421 4.7.0 Too many authentication failures");
  CHECK(d.closed());
  CHECK(d.exit_code() == 1);
}

TEST_CASE("smtpd: the delay after a failed AUTH is taken") {
  AuthFixture f;
  f.config.auth_failure_delay = std::chrono::milliseconds(300);
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  auto start = std::chrono::steady_clock::now();
  CHECK(d.cmd("AUTH PLAIN " + plain("", "alice@example.test", "wrong")).starts_with("535 "));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(300));
}

TEST_CASE("smtpd: credentials too long for checkpassword are a failed login, counted") {
  AuthFixture f;
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  std::string long_password(600, 'p');  // user + password + 3 NULs over checkpassword's 512
  for (int i = 0; i < f.config.max_auth_failures; ++i) {
    CHECK(d.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6");
    CHECK(d.cmd(b64("alice@example.test")) == "334 UGFzc3dvcmQ6");
    CHECK(d.cmd(b64(long_password)) == "535 5.7.8 Authentication credentials invalid");
  }
  CHECK(f.calls->empty());  // refused before checkpassword, which would call it misuse (454)
  CHECK(d.reply() == "421 4.7.0 Too many authentication failures");
}

TEST_CASE("smtpd: a temporary checkpassword failure gives 454") {
  AuthFixture f;
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  CHECK(d.cmd("AUTH PLAIN " + plain("", "temp@example.test", "x")) == "454 4.7.0 Temporary authentication failure");
}

TEST_CASE("smtpd: an authenticated account sends only as itself, unless authsenders says more") {
  AuthFixture f;
  auto senders = AuthSenders::from_lines({"alice@example.test:@sales.example.test", "alice@example.test:info@example.test"});
  REQUIRE(senders);
  f.config.authsenders = std::move(*senders);
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) == "235 2.7.0 Authentication successful");
  CHECK(d.cmd("MAIL FROM:<bob@example.test>") == "553 5.7.1 Sender address not owned by authenticated account");
  CHECK(d.cmd("MAIL FROM:<alice@remote.test>") == "553 5.7.1 Sender address not owned by authenticated account");
  CHECK(d.cmd("MAIL FROM:<Info@Example.test>") == "250 2.1.0 Ok");
  CHECK(d.cmd("RSET") == "250 2.0.0 Ok");
  CHECK(d.cmd("MAIL FROM:<anyone@sales.example.test>") == "250 2.1.0 Ok");
}

TEST_CASE("smtpd: submission requires AUTH before MAIL and ignores POP before SMTP") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  {
    ScopedEnv submission("SUBMISSION", "1");
    ScopedEnv pop("POPBEFORESMTP", "1");
    auto config = SmtpdConfig::load({});
    REQUIRE(config);
    CHECK(config->submission);
    CHECK_FALSE(config->pop_before_smtp);
  }
  AuthFixture f;
  f.config.submission = true;
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  CHECK(d.cmd("MAIL FROM:<alice@example.test>") == "530 5.7.0 Authentication required");
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) == "235 2.7.0 Authentication successful");
  CHECK(d.cmd("MAIL FROM:<alice@example.test>") == "250 2.1.0 Ok");
}

TEST_CASE("smtpd: control/authsenders is read by SmtpdConfig::load; a bad line is an error") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  dir.write("control/authsenders", "# exceptions\nadmin@example.test:@example.test\n");
  auto config = SmtpdConfig::load({});
  REQUIRE(config);
  CHECK(config->authsenders.allows("admin@example.test", "someone@example.test"));
  dir.write("control/authsenders", "admin@example.test\n");
  CHECK_FALSE(SmtpdConfig::load({}));
}

TEST_CASE("smtpd: the Received header of an authenticated TLS session says ESMTPSA and the account") {
  AuthFixture f;
  f.config.queue_argv = keeping_queue(f.dir.path() / "message");
  Dialogue d(f.config, tls_client());
  d.cmd("EHLO client.test");
  CHECK(d.cmd("AUTH PLAIN " + kAlicePlain) == "235 2.7.0 Authentication successful");
  CHECK(d.cmd("MAIL FROM:<alice@example.test>") == "250 2.1.0 Ok");
  CHECK(d.cmd("RCPT TO:<friend@remote.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("DATA").starts_with("354 "));
  d.send("Subject: hi\r\n\r\nhello\r\n.\r\n");
  CHECK(d.reply().starts_with("250 2.0.0 Ok: queued as "));
  std::string message = f.dir.read("message");
  CHECK(message.starts_with("Received: from client.test ([192.0.2.7])\n\tby mx.example.test (tikimail) with ESMTPSA id "));
  CHECK(message.find("\n\t(TLSv1.3 TLS_AES_256_GCM_SHA384) (authenticated as alice@example.test)\n\tfor "
                     "<friend@remote.test>;\n") != std::string::npos);
}

TEST_CASE("smtpd: the Received header's `for` quotes a recipient's local part again where it was quoted") {
  Fixture f;
  f.config.queue_argv = keeping_queue(f.dir.path() / "message");
  Dialogue d(f.config, /*relay_client=*/true);
  d.cmd("EHLO client.test");
  CHECK(d.cmd("MAIL FROM:<\"john doe\"@remote.test>") == "250 2.1.0 Ok");
  CHECK(d.cmd("RCPT TO:<\"a;b\"@remote.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("DATA").starts_with("354 "));
  d.send("Subject: hi\r\n\r\nhello\r\n.\r\n");
  CHECK(d.reply().starts_with("250 2.0.0 Ok: queued as "));
  std::string message = f.dir.read("message");
  CHECK(message.find("\n\tfor <\"a;b\"@remote.test>;\n") != std::string::npos);
}

TEST_CASE("smtpd: over TLS without AUTH the Received header says ESMTPS") {
  Fixture f;
  f.config.queue_argv = keeping_queue(f.dir.path() / "message");
  Dialogue d(f.config, tls_client());
  ehlo_mail(d);
  CHECK(d.cmd("RCPT TO:<alice@example.test>") == "250 2.1.5 Ok");
  CHECK(d.cmd("DATA").starts_with("354 "));
  d.send("hello\r\n.\r\n");
  CHECK(d.reply().starts_with("250 "));
  std::string message = f.dir.read("message");
  CHECK(message.find(" with ESMTPS id ") != std::string::npos);
  CHECK(message.find("authenticated") == std::string::npos);
}

TEST_CASE("smtpd: DATA after only refused recipients is answered, not counted as an error") {
  Fixture f;
  Dialogue d(f.config);
  d.cmd("EHLO client.test");
  for (int i = 0; i < kMaxBadCommands + 2; ++i) {
    CHECK(d.cmd("MAIL FROM:<a@b.test>") == "250 2.1.0 Ok");
    CHECK(d.cmd("RCPT TO:<nosuch@example.test>") == "550 5.1.1 No such user here");
    CHECK(d.cmd("DATA") == "554 5.5.1 No valid recipients");
    CHECK(d.cmd("RSET") == "250 2.0.0 Ok");
  }
}

TEST_CASE("smtpd: MAIL may exceed 512 octets by what SIZE and AUTH add; other commands may not") {
  Fixture f;
  Dialogue d(f.config);
  d.cmd("EHLO client.test");
  std::string long_param = " X-PAD=" + std::string(560, 'p');  // 600-odd octets in all
  CHECK(d.cmd("MAIL FROM:<a@b.test>" + long_param) == "555 5.5.4 Unsupported parameter");
  CHECK(d.cmd("NOOP " + std::string(600, 'n')) == "500 5.5.2 Line too long");
  CHECK(d.cmd("MAIL FROM:<a@b.test> X-PAD=" + std::string(1100, 'p')) == "500 5.5.2 Line too long");
}

TEST_CASE("smtpd: an empty reverse path, a bad BODY value and a bare VRFY are syntax errors") {
  Fixture f;
  Dialogue d(f.config);
  d.cmd("EHLO client.test");
  CHECK(d.cmd("MAIL FROM:") == "501 5.1.7 Bad sender address syntax");
  CHECK(d.cmd("MAIL FROM:<a@b.test> BODY=7BITXXXX") == "501 5.5.4 Syntax error in parameters");
  CHECK(d.cmd("MAIL FROM:<a@b.test> BODY=8bitmime") == "250 2.1.0 Ok");
  CHECK(d.cmd("VRFY") == "501 5.5.4 Syntax error in parameters");
}
