// pop3d/prelogin_test.cpp: the pre-login dialogue as a client sees it, over a socketpair,
// with the checkpassword chain replaced by a function that records what it was given.
#include "pop3d/prelogin.h"

#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "common/fd.h"
#include "common/test_util.h"
#include "pop3d/prelogin_replies.h"

using namespace tikimail;
using namespace tikimail::pop3;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

constexpr std::string_view kStamp = "<77.1700000000@mx.example.test>";

struct Attempt {
  std::string user, password, timestamp;
};

// The fake chain: accepts bob/"right pw" (then, like pop3d-session, it speaks and the stage
// is done), answers `outcome` otherwise, and remembers every attempt. `after` is what the
// fake session reads from the socket: the bytes pop3d left there.
struct FakeChain {
  std::mutex mu;
  std::vector<Attempt> attempts;
  AuthOutcome outcome = AuthOutcome::kWrong;
  int fd = -1;
  std::string after;
  Authenticate fn() {
    return [this](std::string_view u, std::string_view p, std::string_view t) {
      std::lock_guard<std::mutex> lock(mu);
      attempts.push_back({std::string(u), std::string(p), std::string(t)});
      if (u == "bob@example.test" && (p == "right pw" || !t.empty())) {
        char buf[256];
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) after.assign(buf, static_cast<size_t>(n));
        (void)write_all(fd, "+OK session\r\n");
        return AuthOutcome::kSessionDone;
      }
      return outcome;
    };
  }
};

// The fake tlsd: `start` records the bytes the client had sent after STLS (pop3d must have
// left them in the socket, for tlsd to read as the handshake) and then succeeds or fails;
// on success it sends kHandshake, standing for the server's half of the handshake, which a
// client waits for before it sends anything more, and the "TLS" connection is the same socket.
constexpr std::string_view kHandshake = "<fake handshake done>";

struct FakeTls {
  bool on = false;      // implicit TLS
  bool offered = true;  // a control fd exists
  bool succeed = true;
  std::atomic<int> starts = 0;
  int fd = -1;
  std::string left;  // read it only after the dialogue's thread has ended
  PreloginTls make() {
    PreloginTls tls;
    tls.on = on;
    if (offered) {
      tls.start = [this]() -> Result<TlsInfo> {
        ++starts;
        char buf[256];
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) left.assign(buf, static_cast<size_t>(n));
        if (!succeed) return Status::permanent("handshake failed");
        if (!write_all(fd, std::string(kHandshake) + "\r\n")) return Status::permanent("client gone");
        return TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};
      };
    }
    return tls;
  }
};

class Dialogue {
 public:
  explicit Dialogue(PreloginConfig config, FakeChain& chain, FakeTls* tls = nullptr) : config_(std::move(config)) {
    ::signal(SIGPIPE, SIG_IGN);
    config_.failure_delay = std::chrono::milliseconds(0);
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    server_ = Fd(fds[0]);
    client_ = Fd(fds[1]);
    chain.fd = server_.get();
    if (tls != nullptr) tls->fd = server_.get();
    prelogin_ = std::make_unique<Prelogin>(config_, server_.get(), server_.get(), chain.fn(), std::string(kStamp),
                                           "192.0.2.7", log_, tls != nullptr ? tls->make() : PreloginTls{});
    thread_ = std::thread([this] {
      exit_code_ = prelogin_->run();
      ::shutdown(server_.get(), SHUT_RDWR);
    });
    reader_ = std::make_unique<LineReader>(client_.get());
    greeting = line();
  }
  ~Dialogue() {
    ::shutdown(client_.get(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }
  void send(std::string_view bytes) { REQUIRE(write_all(client_.get(), bytes)); }
  std::string line() {
    Line l = reader_->read_line(Deadline::after_seconds(10), 4096);
    return l.code == IoCode::kOk ? std::string(l.text) : "<eof>";
  }
  std::string cmd(std::string_view text) {
    send(std::string(text) + "\r\n");
    return line();
  }
  // A multi-line reply after its first line, up to the "." line, joined with '\n'.
  std::string body() {
    std::string all;
    for (std::string l = line(); l != "." && l != "<eof>"; l = line()) all += l + "\n";
    return all;
  }
  bool closed() { return line() == "<eof>"; }
  int exit_code() {
    thread_.join();
    return exit_code_;
  }
  std::string greeting;

 private:
  PreloginConfig config_;
  Log log_{"pop3d-test"};
  Fd server_, client_;
  std::unique_ptr<Prelogin> prelogin_;
  std::thread thread_;
  std::unique_ptr<LineReader> reader_;
  int exit_code_ = -1;
};

PreloginConfig config(bool apop = false) {
  PreloginConfig c;
  c.me = "mx.example.test";
  c.apop = apop;
  c.timeout = 5;
  return c;
}

}  // namespace

TEST_CASE("pop3d: the greeting carries the APOP timestamp only when APOP can be used") {
  FakeChain chain;
  Dialogue plain(config(false), chain);
  CHECK(plain.greeting == "+OK tikimail POP3 server ready");
  Dialogue apop(config(true), chain);
  CHECK(apop.greeting == "+OK tikimail POP3 server ready <77.1700000000@mx.example.test>");
}

TEST_CASE("pop3d: CAPA lists the capabilities, LOGIN-DELAY only under a policy") {
  FakeChain chain;
  Dialogue d(config(), chain);
  CHECK(d.cmd("CAPA") == kCapaHead);
  CHECK(d.body() ==
        "TOP\nUIDL\nUSER\nRESP-CODES\nAUTH-RESP-CODE\nPIPELINING\nEXPIRE NEVER\nIMPLEMENTATION tikimail\n");
  auto c = config();
  c.login_delay = 300;
  Dialogue delayed(c, chain);
  CHECK(delayed.cmd("capa") == kCapaHead);
  CHECK(delayed.body().find("LOGIN-DELAY 300 USER\n") != std::string::npos);
  CHECK(delayed.cmd("QUIT") == kBye);
  CHECK(delayed.exit_code() == 0);
}

TEST_CASE("pop3d: USER then PASS hands user, password and an empty timestamp to the chain") {
  FakeChain chain;
  Dialogue d(config(), chain);
  CHECK(d.cmd("USER bob@example.test") == kUserOk);
  CHECK(d.cmd("PASS right pw") == "+OK session");  // spaces belong to the password
  CHECK(d.exit_code() == 0);
  REQUIRE(chain.attempts.size() == 1);
  CHECK(chain.attempts[0].user == "bob@example.test");
  CHECK(chain.attempts[0].password == "right pw");
  CHECK(chain.attempts[0].timestamp.empty());
}

TEST_CASE("pop3d: commands pipelined behind PASS stay in the socket for the session") {
  FakeChain chain;
  Dialogue d(config(), chain);
  d.send("USER bob@example.test\r\nPASS right pw\r\nSTAT\r\nQUIT\r\n");
  CHECK(d.line() == kUserOk);
  CHECK(d.line() == "+OK session");
  CHECK(d.exit_code() == 0);
  CHECK(chain.after == "STAT\r\nQUIT\r\n");
}

TEST_CASE("pop3d: APOP hands the digest and the greeting's timestamp; refused when unavailable") {
  FakeChain chain;
  Dialogue off(config(false), chain);
  CHECK(off.cmd("APOP bob@example.test c4c9334bac560ecc979e58001b3e22fb") == kNoApop);
  CHECK(chain.attempts.empty());
  Dialogue on(config(true), chain);
  CHECK(on.cmd("APOP bob@example.test c4c9334bac560ecc979e58001b3e22fb") == "+OK session");
  REQUIRE(chain.attempts.size() == 1);
  CHECK(chain.attempts[0].password == "c4c9334bac560ecc979e58001b3e22fb");
  CHECK(chain.attempts[0].timestamp == kStamp);
}

TEST_CASE("pop3d: a failed login is answered [AUTH]; the third closes the connection") {
  FakeChain chain;
  Dialogue d(config(true), chain);
  CHECK(d.cmd("USER bob@example.test") == kUserOk);
  CHECK(d.cmd("PASS wrong") == kAuthFailed);
  CHECK(d.cmd("PASS wrong") == kNeedUser);  // PASS consumed the USER
  CHECK(d.cmd("APOP alice@example.test 00000000000000000000000000000000") == kAuthFailed);
  CHECK(d.cmd("USER carol@example.test") == kUserOk);
  CHECK(d.cmd("PASS x") == kTooManyFailures);
  CHECK(d.closed());
  CHECK(d.exit_code() == 1);
  CHECK(chain.attempts.size() == 3);
}

TEST_CASE("pop3d: misuse counts as a failure, temporary trouble does not") {
  FakeChain chain;
  chain.outcome = AuthOutcome::kTemporary;
  Dialogue d(config(), chain);
  for (int i = 0; i < 4; ++i) {
    CHECK(d.cmd("USER bob@example.test") == kUserOk);
    CHECK(d.cmd("PASS wrong") == kTemporary);
  }
  chain.outcome = AuthOutcome::kMisuse;
  CHECK(d.cmd("USER bob@example.test") == kUserOk);
  CHECK(d.cmd("PASS wrong") == kAuthFailed);
  CHECK(d.cmd("QUIT") == kBye);
  CHECK(d.exit_code() == 0);
}

TEST_CASE("pop3d: before login, transaction commands and unknown ones are -ERR") {
  FakeChain chain;
  Dialogue d(config(), chain);
  CHECK(d.cmd("NOOP") == kNotYet);  // RFC 1939: NOOP only in the TRANSACTION state
  CHECK(d.cmd("STAT") == kNotYet);
  CHECK(d.cmd("RETR 1") == kNotYet);
  CHECK(d.cmd("HELO x") == kUnknownCommand);
  CHECK(d.cmd("STLS") == kNoStls);  // no tlsd control fd
  CHECK(d.cmd("PASS x") == kNeedUser);
  CHECK(d.cmd("USER") == kUserSyntax);
  CHECK(d.cmd("USER a b") == kUserSyntax);
  CHECK(d.cmd("quit") == kBye);
  CHECK(d.exit_code() == 0);
  CHECK(chain.attempts.empty());
}

TEST_CASE("pop3d: CAPA lists STLS only with tlsd's control fd and before TLS is on") {
  FakeChain chain;
  Dialogue plain(config(), chain);
  CHECK(plain.cmd("CAPA") == kCapaHead);
  CHECK(plain.body().find("STLS") == std::string::npos);

  FakeTls offered;
  Dialogue on_request(config(), chain, &offered);
  CHECK(on_request.cmd("CAPA") == kCapaHead);
  CHECK(on_request.body() ==
        "TOP\nUIDL\nUSER\nRESP-CODES\nAUTH-RESP-CODE\nPIPELINING\nEXPIRE NEVER\nSTLS\nIMPLEMENTATION tikimail\n");

  FakeTls implicit;
  implicit.on = true;  // 995: even with a control fd (which tlsd does not give) no STLS
  Dialogue pop3s(config(), chain, &implicit);
  CHECK(pop3s.cmd("CAPA") == kCapaHead);
  CHECK(pop3s.body().find("STLS") == std::string::npos);
  CHECK(pop3s.cmd("STLS") == kTlsActive);
  CHECK(implicit.starts == 0);
}

TEST_CASE("pop3d: STLS starts TLS, then the dialogue goes on in AUTHORIZATION without STLS") {
  FakeChain chain;
  FakeTls tls;
  auto c = config();
  c.login_delay = 300;
  c.tls_login_delay = 600;
  Dialogue d(c, chain, &tls);
  CHECK(d.cmd("STLS extra") == kStlsSyntax);
  CHECK(d.cmd("STLS") == kStlsGo);
  CHECK(d.line() == kHandshake);  // as a client does, wait for the handshake before speaking
  CHECK(tls.starts == 1);
  CHECK(d.cmd("CAPA") == kCapaHead);
  std::string capa = d.body();
  CHECK(capa.find("STLS") == std::string::npos);
  CHECK(capa.find("LOGIN-DELAY 600 USER\n") != std::string::npos);  // now a TLS session: tls rules
  CHECK(d.cmd("STLS") == kTlsActive);
  CHECK(tls.starts == 1);
  CHECK(d.cmd("USER bob@example.test") == kUserOk);
  CHECK(d.cmd("PASS right pw") == "+OK session");
  CHECK(d.exit_code() == 0);
}

TEST_CASE("pop3d: STLS after USER is refused, and the USER still needs its PASS") {
  FakeChain chain;
  FakeTls tls;
  Dialogue d(config(), chain, &tls);
  CHECK(d.cmd("USER bob@example.test") == kUserOk);
  CHECK(d.cmd("STLS") == kStlsAfterUser);
  CHECK(tls.starts == 0);
  CHECK(d.cmd("PASS right pw") == "+OK session");
  CHECK(d.exit_code() == 0);
}

TEST_CASE("pop3d: bytes pipelined behind STLS are left to tlsd, never answered in plaintext") {
  FakeChain chain;
  FakeTls tls;
  tls.succeed = false;  // tlsd reads "CAPA\r\n" as a ClientHello: the handshake fails
  Dialogue d(config(), chain, &tls);
  d.send("STLS\r\nCAPA\r\n");
  CHECK(d.line() == kStlsGo);
  CHECK(d.closed());  // no capability list, nothing at all after the go-ahead
  CHECK(d.exit_code() == 1);
  CHECK(tls.starts == 1);
  CHECK(tls.left == "CAPA\r\n");
}

TEST_CASE("pop3d: a line over 255 octets is refused; ten bad commands close the connection") {
  FakeChain chain;
  Dialogue d(config(), chain);
  CHECK(d.cmd("USER " + std::string(248, 'a')) == kUserOk);  // 255 octets with CRLF
  CHECK(d.cmd("USER " + std::string(249, 'a')) == kLineTooLong);
  CHECK(d.cmd("CAPA") == kCapaHead);  // the long line was consumed to its end
  d.body();
  for (int i = 2; i < kMaxBadCommands; ++i) CHECK(d.cmd("BOGUS") == kUnknownCommand);
  CHECK(d.cmd("BOGUS") == kTooManyBad);
  CHECK(d.closed());
  CHECK(d.exit_code() == 1);
}

TEST_CASE("pop3d: a silent client is dropped after the idle timeout, without a word") {
  FakeChain chain;
  auto c = config();
  c.timeout = 1;
  Dialogue d(c, chain);
  CHECK(d.closed());
  CHECK(d.exit_code() == 1);
}

TEST_CASE("pop3d: the command reader takes one byte at a time from a pipe") {
  auto pipe = make_pipe();
  REQUIRE(pipe);
  REQUIRE(write_all(pipe->write.get(), "USER a\r\nPASS b\nrest"));
  REQUIRE(pipe->write.close());
  CommandReader reader(pipe->read.get());
  Line first = reader.read(Deadline::after_seconds(5), kMaxPop3Command);
  CHECK(first.code == IoCode::kOk);
  CHECK(first.text == "USER a");
  CHECK(first.crlf);
  Line second = reader.read(Deadline::after_seconds(5), kMaxPop3Command);
  CHECK(second.text == "PASS b");
  CHECK_FALSE(second.crlf);
  char rest[8] = {};
  CHECK(::read(pipe->read.get(), rest, sizeof rest) == 4);  // nothing after the line was taken
  CHECK(std::string(rest) == "rest");
}

TEST_CASE("pop3d: configuration defaults, and LOGIN-DELAY from the policy's smallest interval") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  auto c = PreloginConfig::load();
  REQUIRE(c);
  CHECK(c->timeout == 120);
  CHECK_FALSE(c->apop);
  CHECK_FALSE(c->login_delay);
  CHECK_FALSE(c->tls_login_delay);
  dir.write("control/timeoutpop3d", "30\n");
  dir.write("users/apop-enabled", "");
  dir.write("control/pop3loginpolicy", "# seed S11\nplain 0 300\nplain 50M 900\ntls 0 600\n");
  auto d = PreloginConfig::load();
  REQUIRE(d);
  CHECK(d->timeout == 30);
  CHECK(d->apop);
  CHECK(d->login_delay == 300);
  CHECK(d->tls_login_delay == 600);
}
