// tlsd/serve_test.cpp: whole connections through serve(), in a child process as tcpserver would
// run tlsd: when the certificate is read in each mode, what a broken one does, TCP_NODELAY.
#include "tlsd/serve.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "common/starttls.h"

#include "common/test_util.h"
#include "tlsd/handoff.h"
#include "tlsd/test_tls.h"

using namespace tikimail;
using tikimail::testing::TempDir;
using tikimail::testing::TestClient;
using tikimail::testing::TestPair;

namespace {

// The program as tlsd runs it: /bin/sh -c `script`, as nobody when the tests run as root.
Options program(const std::string& script, bool implicit = false) {
  Options options;
  options.implicit = implicit;
  options.argv = {"/bin/sh", "-c", script};
  if (::geteuid() == 0) options.program = Ids{65534, 65534};
  return options;
}

// Forks a tlsd for one connection: `dir` is the prefix, the pair's server end is on fds 0 and
// 1. The test keeps the client end (with a 10 s read limit, so that a bug fails, not hangs).
pid_t start_tlsd(const std::filesystem::path& dir, TestPair& pair, const Options& options) {
  timeval limit{10, 0};
  ::setsockopt(pair.client.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  pid_t pid = ::fork();
  if (pid == 0) {
    (void)pair.client.close();  // tlsd must see the client's EOF
    if (::chdir(dir.c_str()) != 0 || ::dup2(pair.server.get(), 0) < 0 || ::dup2(pair.server.get(), 1) < 0)
      ::_exit(99);
    (void)pair.server.close();
    ::_exit(serve(options, "192.0.2.1", Log("tlsd")));
  }
  (void)pair.server.close();  // only tlsd and its program hold the server end
  return pid;
}

int exit_status(pid_t pid) {
  int status = 0;
  if (pid <= 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// Plaintext from the client's end: `n` bytes, or everything up to EOF when n is 0.
std::string read_plain(int fd, size_t n = 0) {
  std::string out;
  char buf[512];
  while (n == 0 || out.size() < n) {
    ssize_t got = ::read(fd, buf, n == 0 ? sizeof buf : std::min(sizeof buf, n - out.size()));
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

}  // namespace

TEST_CASE("tlsd serve: on request, the certificate is read at the request, then the handoff completes") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "old.test"));
  TestPair pair;
  // Like smtpd: greet, read the client's STARTTLS, ask tlsd; exit 0 only on a TLS 1.3 answer.
  pid_t tlsd = start_tlsd(dir.path(), pair,
                          program("echo ready; read line; printf S >&$TLSCTL; answer=$(cat <&$TLSCTL);"
                                  " case $answer in 'YTLSv1.3 '*) exit 0 ;; esac; exit 4"));
  CHECK(read_plain(pair.client.get(), 6) == "ready\n");
  // The program runs and tlsd waits: a pair replaced now is the one served, since tlsd has
  // read nothing of control/tls/ yet but checked that the files are there.
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "new.test"));
  REQUIRE(write_all(pair.client.get(), "STARTTLS\n").is_ok());
  TestClient client(pair.client.get(), "new.test");
  CHECK(client.connect());
  CHECK(client.peer_name() == "new.test");
  int end = 0;
  CHECK(client.read(1, &end).empty());
  CHECK(end == SSL_ERROR_ZERO_RETURN);  // the program closed the new socket: close_notify
  CHECK(exit_status(tlsd) == 0);
}

TEST_CASE("tlsd serve: on request, a certificate that does not load fails that STARTTLS with N naming the file") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  dir.write("control/tls/cert.pem", "not a certificate\n");
  TestPair pair;
  // The program runs (the file is there); it prints tlsd's answer to the client and exits 3.
  pid_t tlsd = start_tlsd(dir.path(), pair, program("printf S >&$TLSCTL; cat <&$TLSCTL; exit 3"));
  std::string said = read_plain(pair.client.get());
  CHECK(exit_status(tlsd) == 3);  // the program's status: it decides
  CHECK(said.rfind("N", 0) == 0);  // nothing from tlsd itself reached the client
  CHECK_THAT(said, Catch::Contains("control/tls/cert.pem"));
}

TEST_CASE("tlsd serve: on request, a missing key stops tlsd with 111 before the program runs") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  std::filesystem::remove(dir.path() / "control/tls/key.pem");
  TestPair pair;
  pid_t tlsd = start_tlsd(dir.path(), pair, program("echo ran"));
  CHECK(read_plain(pair.client.get()).empty());
  CHECK(exit_status(tlsd) == 111);
}

TEST_CASE("tlsd serve: implicit mode loads the certificate at start: broken, the program never runs") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  SECTION("a good pair: handshake, then the program's bytes over TLS") {
    TestPair pair;
    pid_t tlsd = start_tlsd(dir.path(), pair, program("echo \"hello $TLS\"", true));
    TestClient client(pair.client.get(), "mx.test");
    CHECK(client.connect());
    CHECK(client.read(14) == "hello TLSv1.3\n");
    CHECK(exit_status(tlsd) == 0);
  }
  SECTION("a certificate that does not load: 111 before the handshake") {
    dir.write("control/tls/cert.pem", "not a certificate\n");
    TestPair pair;
    pid_t tlsd = start_tlsd(dir.path(), pair, program("echo ran", true));
    CHECK(read_plain(pair.client.get()).empty());
    CHECK(exit_status(tlsd) == 111);
  }
}

namespace {

// `tlsd -s` as smtpd starts it: the client's socket on 0 and 1, the control socket on fd 3.
// The test keeps the client end of `pair` and the program's end of the control socket.
struct StartedTlsd {
  pid_t pid;
  Fd control;
};

StartedTlsd start_started_tlsd(const std::filesystem::path& dir, TestPair& pair) {
  auto control = make_socket_pair();
  REQUIRE(control.has_value());
  timeval limit{10, 0};
  ::setsockopt(pair.client.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  pid_t pid = ::fork();
  if (pid == 0) {
    (void)pair.client.close();
    (void)control->ours.close();  // tlsd must see the program's EOF
    if (::chdir(dir.c_str()) != 0 || ::dup2(pair.server.get(), 0) < 0 || ::dup2(pair.server.get(), 1) < 0 ||
        ::dup2(control->theirs.get(), kStartedControlFd) < 0)
      ::_exit(99);
    Options options;
    options.started = true;
    ::_exit(serve(options, "192.0.2.1", Log("tlsd")));
  }
  (void)pair.server.close();
  (void)control->theirs.close();
  return StartedTlsd{pid, std::move(control->ours)};
}

// The program's side of the answer: its text, and the fd attached (or an invalid Fd).
std::string receive_answer(int control, Fd* passed) {
  char bytes[600];
  iovec iov{bytes, sizeof bytes};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n = ::recvmsg(control, &msg, MSG_CMSG_CLOEXEC);
  if (n <= 0) return "";
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      *passed = Fd(fd);
    }
  }
  return std::string(bytes, static_cast<size_t>(n));
}

}  // namespace

TEST_CASE("tlsd serve: -s handshakes on request, hands the connection over and relays until the program closes") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  TestPair pair;
  auto [tlsd, control] = start_started_tlsd(dir.path(), pair);
  REQUIRE(write_all(control.get(), std::string(1, kStartTlsRequest)).is_ok());
  TestClient client(pair.client.get(), "mx.test");
  REQUIRE(client.connect());
  Fd app;
  std::string answer = receive_answer(control.get(), &app);
  CHECK(answer.rfind("YTLSv1.3 ", 0) == 0);
  REQUIRE(app.valid());
  REQUIRE(write_all(app.get(), "250 hello\r\n").is_ok());
  CHECK(client.read(11) == "250 hello\r\n");
  (void)app.close();
  int end = 0;
  CHECK(client.read(1, &end).empty());
  CHECK(end == SSL_ERROR_ZERO_RETURN);
  CHECK(exit_status(tlsd) == 0);
}

TEST_CASE("tlsd serve: -s whose program closes without asking exits 0 and sends nothing") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  TestPair pair;
  auto [tlsd, control] = start_started_tlsd(dir.path(), pair);
  (void)control.close();
  CHECK(exit_status(tlsd) == 0);
  CHECK(read_plain(pair.client.get()).empty());
}

TEST_CASE("tlsd serve: -s with a key that does not load answers N and exits 1") {
  TempDir dir;
  REQUIRE(testing::make_test_cert(dir.path() / "control/tls", "mx.test"));
  dir.write("control/tls/key.pem", "not a key\n");
  TestPair pair;
  auto [tlsd, control] = start_started_tlsd(dir.path(), pair);
  REQUIRE(write_all(control.get(), std::string(1, kStartTlsRequest)).is_ok());
  Fd app;
  std::string answer = receive_answer(control.get(), &app);
  CHECK(answer.rfind("N", 0) == 0);
  CHECK_THAT(answer, Catch::Contains("control/tls/key.pem"));
  CHECK_FALSE(app.valid());
  CHECK(exit_status(tlsd) == 1);
}

TEST_CASE("tlsd serve: TCP_NODELAY is set on a TCP socket; a unix socket or a pipe is no error") {
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(listener.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener.get(), 1) == 0);
  REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  Fd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(accepted.valid());
  REQUIRE(set_no_delay(accepted.get()).is_ok());
  int on = 0;
  socklen_t on_len = sizeof on;
  REQUIRE(::getsockopt(accepted.get(), IPPROTO_TCP, TCP_NODELAY, &on, &on_len) == 0);
  CHECK(on != 0);

  TestPair unix_pair;
  CHECK(set_no_delay(unix_pair.server.get()).is_ok());
  auto pipe = make_pipe();
  REQUIRE(pipe.has_value());
  CHECK(set_no_delay(pipe->read.get()).is_ok());
}
