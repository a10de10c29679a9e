// tlsd/handoff_test.cpp: both sides of the STARTTLS handoff: tlsd's (handoff.h) against the
// program's (common/starttls.h).
#include "tlsd/handoff.h"

#include <fcntl.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <thread>

#include "common/starttls.h"

using namespace tikimail;

namespace {

// start_tls puts the new connection on fds 0 and 1: the test keeps its own and puts them back.
class SavedStdio {
 public:
  SavedStdio() : in_(::dup(0)), out_(::dup(1)) { ::signal(SIGPIPE, SIG_IGN); }
  ~SavedStdio() {
    ::dup2(in_, 0);
    ::dup2(out_, 1);
    ::close(in_);
    ::close(out_);
    ::unsetenv("TLS");
    ::unsetenv("TLSCIPHER");
    ::unsetenv("TLSCTL");
  }

 private:
  int in_, out_;
};

// A child that waits for a byte on a pipe (or for EOF) and exits with `status`.
struct Child {
  pid_t pid = -1;
  Fd release;
  explicit Child(int status) {
    auto pipe = make_pipe();
    REQUIRE(pipe.has_value());
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      (void)pipe->write.close();
      char byte;
      (void)!::read(pipe->read.get(), &byte, 1);
      ::_exit(status);
    }
    release = std::move(pipe->write);
  }
  ~Child() {
    (void)release.close();
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
};

}  // namespace

TEST_CASE("tlsd handoff: start_tls receives the connection on fds 0 and 1 with version and cipher") {
  SavedStdio saved;
  Child child(0);  // first: a child forked later would hold copies of the sockets, and no EOF would come
  auto control = make_socket_pair();
  REQUIRE(control.has_value());
  auto app = make_socket_pair();
  REQUIRE(app.has_value());
  auto pidfd = open_pidfd(child.pid);
  REQUIRE(pidfd.has_value());
  Result<Request> request = Status::temporary("not run");
  Status sent;
  std::string program_said;
  std::thread tlsd([&] {
    request = wait_for_request(control->ours.get(), pidfd->get());
    sent = send_accepted(control->ours.get(), app->theirs.get(), "TLSv1.3", "TLS_AES_128_GCM_SHA256");
    (void)control->ours.close();
    (void)app->theirs.close();
    (void)write_all(app->ours.get(), "ping");
    char buf[4];
    if (::read(app->ours.get(), buf, 4) == 4) program_said.assign(buf, 4);
  });
  ::setenv("TLSCTL", std::to_string(control->theirs.get()).c_str(), 1);
  auto info = start_tls(control->theirs.release(), 5);
  std::string got(4, '\0');
  bool read_ok = false;
  if (info) {
    // fds 0 and 1 are the new socket now (non-blocking): wait for the bytes.
    for (int tries = 0; tries < 500 && !read_ok; ++tries) {
      read_ok = ::read(0, got.data(), 4) == 4;
      if (!read_ok) ::usleep(2000);
    }
    (void)write_all(1, "pong");
  }
  tlsd.join();
  REQUIRE(info.has_value());
  CHECK(info->version == "TLSv1.3");
  CHECK(info->cipher == "TLS_AES_128_GCM_SHA256");
  CHECK(read_ok);
  CHECK(got == "ping");
  CHECK(program_said == "pong");
  REQUIRE(request.has_value());
  CHECK(*request == Request::kStartTls);
  CHECK(sent.is_ok());
  CHECK(std::getenv("TLSCTL") == nullptr);
  CHECK(std::string(std::getenv("TLS")) == "TLSv1.3");
  CHECK(std::string(std::getenv("TLSCIPHER")) == "TLS_AES_128_GCM_SHA256");
  auto env = tls_from_environment();
  REQUIRE(env.has_value());
  CHECK(env->version == "TLSv1.3");
}

TEST_CASE("tlsd handoff: a failed handshake reaches the program as a permanent error with the reason") {
  auto control = make_socket_pair();
  REQUIRE(control.has_value());
  std::thread tlsd([&] {
    char byte;
    (void)!::read(control->ours.get(), &byte, 1);
    (void)send_refused(control->ours.get(), "error:0A000102:SSL routines::unsupported protocol");
    (void)control->ours.close();
  });
  auto info = start_tls(control->theirs.release(), 5);
  tlsd.join();
  REQUIRE_FALSE(info.has_value());
  CHECK(info.error().permanent_failure());
  CHECK_THAT(info.error().message(), Catch::Contains("unsupported protocol"));
}

TEST_CASE("tlsd handoff: start_tls gives up at its deadline when tlsd does not answer") {
  auto control = make_socket_pair();
  REQUIRE(control.has_value());
  auto info = start_tls(control->theirs.release(), 1);
  REQUIRE_FALSE(info.has_value());
  CHECK(info.error().permanent_failure());
}

TEST_CASE("tlsd handoff: an answer without an fd is malformed") {
  auto control = make_socket_pair();
  REQUIRE(control.has_value());
  REQUIRE(write_all(control->ours.get(), "YTLSv1.3 X").is_ok());
  ::shutdown(control->ours.get(), SHUT_WR);  // the answer ends; the request can still arrive
  auto info = start_tls(control->theirs.release(), 1);
  REQUIRE_FALSE(info.has_value());
  CHECK_THAT(info.error().message(), Catch::Contains("malformed"));
}

TEST_CASE("tlsd handoff: a program that exits without asking is seen as exited") {
  Child child(7);
  auto control = make_socket_pair();
  REQUIRE(control.has_value());
  auto pidfd = open_pidfd(child.pid);
  REQUIRE(pidfd.has_value());
  (void)child.release.close();  // the child exits now
  auto request = wait_for_request(control->ours.get(), pidfd->get());
  REQUIRE(request.has_value());
  CHECK(*request == Request::kExited);
  int status = 0;
  REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
  child.pid = -1;
  CHECK(WEXITSTATUS(status) == 7);
}

TEST_CASE("tlsd handoff: a closed control socket and a stray byte are told apart from a request") {
  Child child(0);
  auto pidfd = open_pidfd(child.pid);
  REQUIRE(pidfd.has_value());
  auto closed = make_socket_pair();
  REQUIRE(closed.has_value());
  (void)closed->theirs.close();
  auto request = wait_for_request(closed->ours.get(), pidfd->get());
  REQUIRE(request.has_value());
  CHECK(*request == Request::kClosed);

  auto stray = make_socket_pair();
  REQUIRE(stray.has_value());
  REQUIRE(write_all(stray->theirs.get(), "Q").is_ok());
  CHECK_FALSE(wait_for_request(stray->ours.get(), pidfd->get()).has_value());
}

TEST_CASE("starttls: TLSCTL names the control fd only while TLS is off") {
  auto control = make_socket_pair();
  REQUIRE(control.has_value());
  std::string fd = std::to_string(control->theirs.get());
  ::unsetenv("TLS");
  ::unsetenv("TLSD");
  ::setenv("TLSCTL", fd.c_str(), 1);
  auto route = tls_route();
  REQUIRE(route.has_value());
  CHECK(route->control_fd == control->theirs.get());
  CHECK(std::getenv("TLSCTL") == nullptr);                     // taken: not passed on by exec
  CHECK((::fcntl(control->theirs.get(), F_GETFD) & FD_CLOEXEC) != 0);
  ::setenv("TLSCTL", "12x", 1);
  CHECK_FALSE(tls_route());
  ::setenv("TLSCTL", "1", 1);
  CHECK_FALSE(tls_route());
  ::setenv("TLSCTL", fd.c_str(), 1);
  ::setenv("TLS", "TLSv1.3", 1);
  CHECK_FALSE(tls_route());
  ::unsetenv("TLS");
  ::unsetenv("TLSCTL");
  CHECK_FALSE(tls_from_environment());
}
