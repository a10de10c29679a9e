// common/starttls_test.cpp: where a STARTTLS goes (TLSCTL, TLSD, neither), and that the
// variables never outlive the first look; start_tls through a tlsd that is not there.
#include "common/starttls.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "common/fd.h"

using namespace tikimail;

namespace {

void clear_tls_environment() {
  for (const char* name : {"TLS", "TLSCIPHER", "TLSCTL", "TLSD"}) ::unsetenv(name);
}

}  // namespace

TEST_CASE("tls_route: TLSD names the tlsd to start, and is then gone from the environment") {
  clear_tls_environment();
  ::setenv("TLSD", "bin/tlsd", 1);
  auto route = tls_route();
  REQUIRE(route.has_value());
  CHECK(route->control_fd == -1);
  CHECK(route->tlsd == "bin/tlsd");
  CHECK(std::getenv("TLSD") == nullptr);
  CHECK_FALSE(tls_route().has_value());  // once
}

TEST_CASE("tls_route: TLSCTL wins over TLSD and becomes close-on-exec") {
  clear_tls_environment();
  auto file = open_file("/dev/null", O_RDONLY);
  REQUIRE(file.has_value());
  int fd = ::fcntl(file->get(), F_DUPFD, 10);  // without close-on-exec, as tlsd hands it over
  REQUIRE(fd >= 10);
  ::setenv("TLSCTL", std::to_string(fd).c_str(), 1);
  ::setenv("TLSD", "bin/tlsd", 1);
  auto route = tls_route();
  REQUIRE(route.has_value());
  CHECK(route->control_fd == fd);
  CHECK(route->tlsd.empty());
  CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(std::getenv("TLSCTL") == nullptr);
  CHECK(std::getenv("TLSD") == nullptr);
  ::close(fd);
}

TEST_CASE("tls_route: nothing when TLS is on already, or TLSCTL is not a usable fd") {
  clear_tls_environment();
  ::setenv("TLS", "TLSv1.3", 1);
  ::setenv("TLSD", "bin/tlsd", 1);
  CHECK_FALSE(tls_route().has_value());
  CHECK(std::getenv("TLSD") == nullptr);  // cleared all the same: the queue must not see it
  clear_tls_environment();
  for (const char* bad : {"2", "x", "7x", "987654"}) {
    ::setenv("TLSCTL", bad, 1);
    CHECK_FALSE(tls_route().has_value());
  }
  clear_tls_environment();
}

TEST_CASE("start_tls: a tlsd that cannot be started fails the STARTTLS with its name") {
  clear_tls_environment();
  auto info = start_tls(TlsRoute{-1, "/nonexistent/tlsd"}, 5);
  REQUIRE_FALSE(info.has_value());
  CHECK(info.error().message().find("/nonexistent/tlsd") != std::string::npos);
}
