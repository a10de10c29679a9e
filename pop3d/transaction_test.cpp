// pop3d/transaction_test.cpp: pop3d-session's dialogue as a client sees it, over a socketpair,
// on a real Maildir.
#include "pop3d/transaction.h"

#include <signal.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include "common/fd.h"
#include "common/maildir.h"
#include "common/test_util.h"
#include "pop3d/pop3_replies.h"

using namespace tikimail;
using tikimail::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// A session served on one end of a socketpair by a thread; the test is the client.
class Dialogue {
 public:
  Dialogue(const Pop3SessionConfig& config, const std::string& maildir, bool tls = false) : config_(config) {
    ::signal(SIGPIPE, SIG_IGN);
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    server_ = Fd(fds[0]);
    client_ = Fd(fds[1]);
    REQUIRE(set_nonblocking(server_.get()));
    Pop3Login login;
    login.account = "alice@example.test";
    login.ip = "192.0.2.7";
    login.tls = tls;
    thread_ = std::thread([this, login, maildir] {
      {
        Pop3Session s(config_, login, maildir, server_.get(), server_.get(), log_);
        exit_code_ = s.run();
      }  // the lock goes with the session, before the client sees the end
      ::shutdown(server_.get(), SHUT_RDWR);
    });
    reader_ = std::make_unique<LineReader>(client_.get());
    greeting = line();
  }
  ~Dialogue() {
    ::shutdown(client_.get(), SHUT_RDWR);
    thread_.join();
  }
  void send(std::string_view bytes) { REQUIRE(write_all(client_.get(), bytes)); }
  // One line without its CRLF; "<eof>" or "<timeout>" when there is none.
  std::string line(long seconds = 10) {
    Line l = reader_->read_line(Deadline::after_seconds(seconds), 1 << 20);
    if (l.code == IoCode::kEof) return "<eof>";
    if (l.code != IoCode::kOk) return "<timeout>";
    return std::string(l.text);
  }
  std::string cmd(std::string_view text) {
    send(std::string(text) + "\r\n");
    return line();
  }
  // The lines of a multi-line answer after its +OK, up to (not with) the ".", raw: still
  // byte-stuffed, each with "\r\n" put back.
  std::string body() {
    std::string all;
    for (;;) {
      Line l = reader_->read_line(Deadline::after_seconds(10), 1 << 20);
      REQUIRE(l.code == IoCode::kOk);
      if (l.text == ".") return all;
      all += l.text;
      all += "\r\n";
    }
  }
  bool closed(long seconds = 10) { return line(seconds) == "<eof>"; }
  // Waits for the session to end (after QUIT, or after the client's EOF if not yet over).
  int exit_code(bool send_eof = true) {
    if (send_eof) ::shutdown(client_.get(), SHUT_WR);
    thread_.join();
    thread_ = std::thread([] {});
    return exit_code_;
  }
  std::string greeting;

 private:
  const Pop3SessionConfig& config_;
  Log log_{"pop3d-session-test"};
  Fd server_, client_;
  std::thread thread_;
  std::unique_ptr<LineReader> reader_;
  int exit_code_ = -1;
};

// What a client keeps of a multi-line body: un-stuffed lines with their CRLFs.
std::string unstuff(const std::string& raw) {
  std::string out;
  size_t at = 0;
  while (at < raw.size()) {
    size_t end = raw.find("\r\n", at) + 2;
    std::string_view l(raw.data() + at, end - at);
    if (l.starts_with("..")) l.remove_prefix(1);
    out += l;
    at = end;
  }
  return out;
}

struct Fixture {
  TempDir dir;
  std::string maildir;
  Pop3SessionConfig config;
  Fixture() {
    maildir = (dir.path() / "Maildir").string();
    for (const char* sub : {"tmp", "new", "cur"}) fs::create_directories(dir.path() / "Maildir" / sub);
    config.timeout = 10;
  }
  void deliver(const std::string& name, const std::string& content, const char* sub = "new") {
    dir.write(std::string("Maildir/") + sub + "/" + name, content);
  }
  bool exists(const std::string& cur_name) const { return fs::exists(dir.path() / "Maildir/cur" / cur_name); }
};

const std::string kFirst = "From: a@example.test\nSubject: one\n\nHello.\n.leading dot\n..two dots\n.\nend\n";
const std::string kSecond = "Subject: two\r\n\r\nCRLF body\r\nno final newline";
const std::string kThird = "Subject: three\n\nbody\n";

// Three messages: two in new/ (one named with W=), one already in cur/.
void three_messages(Fixture& f) {
  f.deliver("1700000001.M1P1Q1.mx", kFirst);
  f.deliver("1700000002.M1P1Q2.mx,S=43,W=45", kSecond);
  f.deliver("1700000003.M1P1Q3.mx:2,S", kThird, "cur");
}

}  // namespace

TEST_CASE("pop3d-session: the login answer counts the messages; STAT and LIST agree with RETR") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  uint64_t one = kFirst.size() + 8, two = kSecond.size() + 2, three = kThird.size() + 3;
  CHECK(d.greeting == fmt::format("+OK 3 messages ({} octets)", one + two + three));
  CHECK(d.cmd("STAT") == fmt::format("+OK 3 {}", one + two + three));
  CHECK(d.cmd("LIST") == fmt::format("+OK 3 messages ({} octets)", one + two + three));
  CHECK(d.body() == fmt::format("1 {}\r\n2 {}\r\n3 {}\r\n", one, two, three));
  CHECK(d.cmd("LIST 2") == fmt::format("+OK 2 {}", two));
  for (uint64_t n : {1, 2, 3}) {
    uint64_t octets = n == 1 ? one : n == 2 ? two : three;
    CHECK(d.cmd(fmt::format("RETR {}", n)) == fmt::format("+OK {} octets", octets));
    CHECK(unstuff(d.body()).size() == octets);
  }
  CHECK(d.cmd("QUIT") == "+OK bye");
  CHECK(d.exit_code() == session_exit::kQuit);
}

TEST_CASE("pop3d-session: RETR sends CRLF lines, byte-stuffs dots and ends the last line") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  d.cmd("RETR 1");
  CHECK(d.body() ==
        "From: a@example.test\r\nSubject: one\r\n\r\nHello.\r\n..leading dot\r\n...two dots\r\n..\r\nend\r\n");
  d.cmd("RETR 2");
  CHECK(d.body() == "Subject: two\r\n\r\nCRLF body\r\nno final newline\r\n");
}

TEST_CASE("pop3d-session: new mail moves to cur/, in delivery order, with stable UIDLs") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  CHECK(f.exists("1700000001.M1P1Q1.mx:2,"));
  CHECK(f.exists("1700000002.M1P1Q2.mx,S=43,W=45:2,"));
  CHECK(d.cmd("UIDL") == "+OK unique-id listing follows");
  CHECK(d.body() == "1 1700000001.M1P1Q1.mx\r\n2 1700000002.M1P1Q2.mx,S=43,W=45\r\n3 1700000003.M1P1Q3.mx\r\n");
  CHECK(d.cmd("UIDL 3") == "+OK 3 1700000003.M1P1Q3.mx");
}

TEST_CASE("pop3d-session: TOP sends the header, the blank line and n body lines") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  CHECK(d.cmd("TOP 1 0") == "+OK top of message follows");
  CHECK(d.body() == "From: a@example.test\r\nSubject: one\r\n\r\n");
  CHECK(d.cmd("TOP 1 2") == "+OK top of message follows");
  CHECK(d.body() == "From: a@example.test\r\nSubject: one\r\n\r\nHello.\r\n..leading dot\r\n");
  CHECK(d.cmd("TOP 1") == "-ERR syntax error");
  CHECK(d.cmd("TOP 9 1") == "-ERR no such message");
  // Numbers beyond any mailbox: the whole message for TOP, no such message for RETR.
  CHECK(d.cmd("TOP 1 2147483647") == "+OK top of message follows");
  std::string whole_by_top = d.body();
  CHECK(d.cmd("RETR 1").starts_with("+OK "));
  CHECK(whole_by_top == d.body());
  CHECK(d.cmd("RETR 4294967297") == "-ERR no such message");
  CHECK(d.cmd("TOP 00000000001 0") == "+OK top of message follows");
  CHECK(d.body() == "From: a@example.test\r\nSubject: one\r\n\r\n");
}

TEST_CASE("pop3d-session: DELE hides a message until RSET") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  uint64_t two = kSecond.size() + 2, three = kThird.size() + 3;
  CHECK(d.cmd("DELE 1") == "+OK message 1 deleted");
  CHECK(d.cmd("DELE 1") == "-ERR message 1 already deleted");
  CHECK(d.cmd("RETR 1") == "-ERR message 1 already deleted");
  CHECK(d.cmd("TOP 1 0") == "-ERR message 1 already deleted");
  CHECK(d.cmd("LIST 1") == "-ERR message 1 already deleted");
  CHECK(d.cmd("UIDL 1") == "-ERR message 1 already deleted");
  CHECK(d.cmd("STAT") == fmt::format("+OK 2 {}", two + three));
  CHECK(d.cmd("LIST 02") == fmt::format("+OK 2 {}", two));  // numbers are answered as numbers
  CHECK(d.cmd("LIST").starts_with("+OK 2 messages"));
  CHECK(d.body() == fmt::format("2 {}\r\n3 {}\r\n", two, three));
  d.cmd("UIDL");
  CHECK(d.body() == "2 1700000002.M1P1Q2.mx,S=43,W=45\r\n3 1700000003.M1P1Q3.mx\r\n");
  CHECK(d.cmd("RSET").starts_with("+OK maildrop has 3 messages"));
  CHECK(d.cmd("RETR 1").starts_with("+OK "));
}

TEST_CASE("pop3d-session: DELE then QUIT removes the files") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  d.cmd("DELE 1");
  d.cmd("DELE 3");
  CHECK(d.cmd("QUIT") == "+OK bye");
  CHECK(d.closed());
  CHECK(d.exit_code() == session_exit::kQuit);
  CHECK_FALSE(f.exists("1700000001.M1P1Q1.mx:2,"));
  CHECK(f.exists("1700000002.M1P1Q2.mx,S=43,W=45:2,"));
  CHECK_FALSE(f.exists("1700000003.M1P1Q3.mx:2,S"));
}

TEST_CASE("pop3d-session: DELE then a dropped connection removes nothing") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  d.cmd("DELE 1");
  d.cmd("DELE 2");
  CHECK(d.exit_code() == session_exit::kGone);
  CHECK(f.exists("1700000001.M1P1Q1.mx:2,"));
  CHECK(f.exists("1700000002.M1P1Q2.mx,S=43,W=45:2,"));
}

TEST_CASE("pop3d-session: a second session on the mailbox gets IN-USE") {
  Fixture f;
  three_messages(f);
  Dialogue first(f.config, f.maildir);
  REQUIRE(first.greeting.starts_with("+OK 3 messages"));
  Dialogue second(f.config, f.maildir);
  CHECK(second.greeting == pop3_session::kInUse);
  CHECK(second.closed());
  CHECK(second.exit_code() == session_exit::kRefused);
  CHECK(first.cmd("QUIT") == "+OK bye");
  CHECK(first.exit_code() == session_exit::kQuit);
  Dialogue third(f.config, f.maildir);  // the lock went with the first session
  CHECK(third.greeting.starts_with("+OK 3 messages"));
}

TEST_CASE("pop3d-session: the idle timeout closes the connection silently and deletes nothing") {
  Fixture f;
  three_messages(f);
  f.config.timeout = 1;
  Dialogue d(f.config, f.maildir);
  CHECK(d.cmd("DELE 1") == "+OK message 1 deleted");
  auto start = std::chrono::steady_clock::now();
  CHECK(d.line(5) == "<eof>");  // no response before the close (RFC 1939 autologout)
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(900));
  CHECK(d.exit_code(false) == session_exit::kGone);
  CHECK(f.exists("1700000001.M1P1Q1.mx:2,"));
}

TEST_CASE("pop3d-session: CAPA lists the capabilities, LOGIN-DELAY only when a rule applies") {
  Fixture f;
  Dialogue d(f.config, f.maildir);
  CHECK(d.greeting == "+OK 0 messages (0 octets)");
  CHECK(d.cmd("CAPA") == "+OK capability list follows");
  CHECK(d.body() ==
        "TOP\r\nUIDL\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\n"
        "IMPLEMENTATION tikimail\r\n");
}

TEST_CASE("pop3d-session: a login within the policy's interval gets LOGIN-DELAY") {
  Fixture f;
  three_messages(f);
  auto policy = LoginPolicy::parse({"plain 0 300", "tls 0 0"});
  REQUIRE(policy);
  f.config.policy = *policy;
  {
    Dialogue first(f.config, f.maildir);
    CHECK(first.greeting.starts_with("+OK 3 messages"));
    first.cmd("CAPA");
    CHECK(first.body().find("LOGIN-DELAY 300\r\n") != std::string::npos);
    first.cmd("QUIT");
  }
  Dialogue again(f.config, f.maildir);
  CHECK(again.greeting.starts_with("-ERR [LOGIN-DELAY] wait "));
  CHECK(again.greeting.ends_with(" more seconds"));
  CHECK(again.closed());
  CHECK(again.exit_code() == session_exit::kRefused);
  Dialogue over_tls(f.config, f.maildir, /*tls=*/true);  // the tls rule has no interval
  CHECK(over_tls.greeting.starts_with("+OK 3 messages"));
}

TEST_CASE("pop3d-session: a message gone from disk is a temporary error") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  fs::remove(f.dir.path() / "Maildir/cur/1700000001.M1P1Q1.mx:2,");
  CHECK(d.cmd("RETR 1") == "-ERR [SYS/TEMP] message 1 is gone");
  CHECK(d.cmd("TOP 1 1") == "-ERR [SYS/TEMP] message 1 is gone");
  CHECK(d.cmd("DELE 1") == "+OK message 1 deleted");
  CHECK(d.cmd("QUIT") == "+OK bye");  // already gone counts as removed
}

TEST_CASE("pop3d-session: bad commands, long lines, and too many errors") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  CHECK(d.cmd("LIST 0") == "-ERR no such message");
  CHECK(d.cmd("LIST 4") == "-ERR no such message");
  CHECK(d.cmd("noop") == "+OK");
  CHECK(d.cmd("XYZZY") == "-ERR unknown command");                          // 1
  CHECK(d.cmd("LIST x") == "-ERR syntax error");                            // 2
  CHECK(d.cmd("USER alice") == "-ERR command not valid in this state");     // 3
  CHECK(d.cmd("NOOP " + std::string(250, 'x')) == "-ERR line too long");    // 4
  CHECK(d.cmd("NOOP " + std::string(248, 'x')) == "-ERR syntax error");     // 5: 255 with CRLF fits
  for (int i = 6; i < 10; ++i) CHECK(d.cmd("BAD") == "-ERR unknown command");
  CHECK(d.cmd("BAD") == "-ERR unknown command");
  CHECK(d.line() == "-ERR too many errors");
  CHECK(d.closed());
  CHECK(d.exit_code() == session_exit::kGone);
}

TEST_CASE("pop3d-session: pipelined commands are answered in order") {
  Fixture f;
  three_messages(f);
  Dialogue d(f.config, f.maildir);
  d.send("STAT\r\nDELE 1\r\nRETR 3\r\nNOOP\r\nQUIT\r\n");
  CHECK(d.line().starts_with("+OK 3 "));
  CHECK(d.line() == "+OK message 1 deleted");
  CHECK(d.line().starts_with("+OK "));
  CHECK(d.body() == "Subject: three\r\n\r\nbody\r\n");
  CHECK(d.line() == "+OK");
  CHECK(d.line() == "+OK bye");
  CHECK(d.exit_code() == session_exit::kQuit);
  CHECK_FALSE(f.exists("1700000001.M1P1Q1.mx:2,"));
}

TEST_CASE("pop3d-session: a large message streams through whole") {
  Fixture f;
  std::string big = "Subject: big\n\n";
  for (int i = 0; big.size() < 3 * 1024 * 1024; ++i)
    big += fmt::format("{}line {:07d} of the big message\n", i % 50 == 0 ? "." : "", i);
  f.deliver("1700000001.M1P1Q1.mx", big);
  Dialogue d(f.config, f.maildir);
  CrlfSize size;
  size.feed(big);
  CHECK(d.cmd("RETR 1") == fmt::format("+OK {} octets", size.octets()));
  std::string got = unstuff(d.body());
  CHECK(got.size() == size.octets());
  std::string expected;
  for (char c : big) {
    if (c == '\n') expected += '\r';
    expected += c;
  }
  CHECK(got == expected);
}
